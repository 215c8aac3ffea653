"""`stream`: restore an iterable of frames lazily, in order, with the video pipeline's overlap.

Consecutive frames of the same kind and size are grouped into batches of up to `batch` (a batch
is sent as soon as it is full, so `batch=1` gives the lowest latency); the source is read in one
thread and the network runs in another while the caller consumes. numpy uint8 H×W×3 frames travel
as uint8 (pinned, converted on the device); other frames go through `Engine.restore`'s
conversions. Each result equals `engine.restore(frame)` for that frame.
"""

from __future__ import annotations

import dataclasses
from contextlib import closing
from dataclasses import dataclass
from functools import partial
from typing import Iterable, Iterator, List, Optional

import numpy as np
import torch

from ..frames import Frame, FrameKind, InputError, from_batch, to_batch
from ..tiling import DEFAULT_OVERLAP
from .layouts import RGB8Layout
from .pipeline import StageClock, StopFlag, run_ordered
from .transfer import make_io


@dataclass
class _Batch:
    n: int
    raw: Optional[torch.Tensor] = None        # uint8 N×H×W×3 host buffer (numpy uint8 frames)
    floats: Optional[torch.Tensor] = None     # N×3×H×W float32 on the frames' device (other frames)
    kind: Optional[FrameKind] = None


def _key(frame: Frame):
    if isinstance(frame, np.ndarray) and frame.dtype == np.uint8 and frame.ndim == 3 and frame.shape[-1] == 3:
        return ("rgb8",) + frame.shape
    if isinstance(frame, (np.ndarray, torch.Tensor)):
        return ("other", type(frame), str(frame.dtype), tuple(frame.shape),
                str(getattr(frame, "device", "cpu")))
    raise InputError(f"stream() takes numpy arrays or torch tensors, got {type(frame).__name__}")


def stream(engine, frames: Iterable[Frame], *, batch: Optional[int] = None, queue_depth: int = 2,
           tile: Optional[int] = None, tile_overlap: int = DEFAULT_OVERLAP,
           clocks: Optional[dict] = None) -> Iterator[Frame]:
    """Yield `engine.restore(frame)` for each frame of `frames`, in order (see the module doc).

    Frames: numpy uint8/uint16/float H×W×3 or torch 3×H×W (float or uint8), host or device, as
    `Engine.restore` takes them; batched inputs are not accepted here. `clocks`: an optional dict
    that receives the stages' `StageClock`s.
    """
    batch = batch or engine.config.max_batch
    stop = StopFlag()
    clocks = clocks if clocks is not None else {}
    clocks.update({name: StageClock(name) for name in ("read", "convert", "restore")})
    restore = partial(engine.restore_batch, tile=tile, tile_overlap=tile_overlap)
    ios = {}

    def io_for(height: int, width: int):
        if (height, width) not in ios:
            ios[(height, width)] = make_io(RGB8Layout(height, width), restore, engine.device, clocks["restore"],
                                           batch=batch, depth=queue_depth, stop=stop,
                                           convert_clock=clocks["convert"])
        return ios[(height, width)]

    def batches() -> Iterator[_Batch]:
        group: List[Frame] = []
        key = None
        for frame in frames:
            k = _key(frame)
            if group and k != key:
                yield _make(group, key)
                group = []
            group.append(frame)
            key = k
            if len(group) == batch:
                yield _make(group, key)
                group = []
        if group:
            yield _make(group, key)

    def _make(group: List[Frame], key) -> _Batch:
        with clocks["read"].timed(len(group)):
            if key[0] == "rgb8":
                buf = io_for(*key[1:3]).alloc(batch)
                buf[:len(group)].numpy()[...] = np.stack(group)
                return _Batch(len(group), raw=buf)
            parts = [to_batch(f, engine.model_config.in_nc) for f in group]
            if parts[0][1].batched:
                raise InputError("stream() takes single frames (H×W×3 or 3×H×W), got a batch; iterate over it")
            return _Batch(len(group), floats=torch.cat([p[0] for p in parts]),
                          kind=dataclasses.replace(parts[0][1], batched=True))

    def work(b: _Batch):
        if b.raw is not None:
            return b, io_for(b.raw.shape[1], b.raw.shape[2]).work(b.raw, b.n)
        with clocks["restore"].timed(b.n):
            return b, restore(b.floats.to(engine.device))

    with closing(run_ordered(batches(), work, queue_depth, stop)) as results:
        for b, result in results:
            if b.raw is None:
                out = from_batch(result, b.kind, clamp=engine.config.clamp)
                yield from (out[i] for i in range(b.n))
                continue
            io = io_for(b.raw.shape[1], b.raw.shape[2])
            out = io.collect(result).numpy()
            frames_out = [out[i].copy() for i in range(b.n)]
            io.recycle(result)
            yield from frames_out
