"""Calibration inputs for INT8: frames from image folders (or any iterable of frames), degraded as
the model's task expects, and turned into the feeds of the graph being quantised.

Frames are uint8 H×W×3 arrays. `sample_evenly` picks N of them spread evenly over a sequence of
unknown length in O(N) memory, which is what a video needs: a video reader only has to yield
frames (`video_frames` decodes a video file with PyAV).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Union

import numpy as np
import torch

from ..degrade import degrade
from ..flow import Schedule, sample
from ..images import is_image_path, list_images, read_image
from ..models import ConditionalUNet

FrameSource = Union[str, os.PathLike, Sequence[os.PathLike], Iterable[np.ndarray]]
Feed = Dict[str, np.ndarray]



def video_frames(path: Path) -> Iterator[np.ndarray]:
    """Every frame of `path`'s first video stream as uint8 H×W×3 RGB (PyAV, threaded decoding)."""
    from ..video.decode import open_input

    with open_input(path) as container:
        if not container.streams.video:
            raise ValueError(f"{path} has no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for frame in container.decode(stream):
            yield frame.to_ndarray(format="rgb24")


def sample_evenly(items: Iterable, count: int) -> list:
    """`count` items spread evenly over `items` (all of them when there are fewer), in order.

    With a length (a list, a range) the picks are exact: first, last and evenly between. Without
    one (a generator, a video) every s-th item is kept, s doubling whenever 2·count are kept, so
    memory stays O(count) for sequences of any length; the picks are then even to within s.
    """
    if count < 1:
        raise ValueError(f"need at least one calibration frame, asked for {count}")
    if hasattr(items, "__len__") and hasattr(items, "__getitem__"):
        kept = list(items) if len(items) <= count else [
            items[int(i)] for i in np.linspace(0, len(items) - 1, count).round()]
        return kept
    kept, stride = [], 1
    for i, item in enumerate(items):
        if i % stride == 0:
            kept.append(item)
            if len(kept) >= 2 * count:
                kept, stride = kept[::2], stride * 2
    if len(kept) <= count:
        return kept
    picks = np.linspace(0, len(kept) - 1, count).round().astype(int)
    return [kept[i] for i in picks]


def _frames_from_path(path: Path) -> Iterator[np.ndarray]:
    if path.is_dir():
        files = list_images(path)
        if not files:
            raise ValueError(f"calibration folder {path} holds no images (png, jpg, tif, bmp, webp)")
        return (read_image(f)[0] for f in files)
    if not path.exists():
        raise ValueError(f"calibration input {path} does not exist")
    if is_image_path(path):
        return iter([read_image(path)[0]])
    from ..video.cli import VIDEO_SUFFIXES

    if path.suffix.lower() not in VIDEO_SUFFIXES:
        raise ValueError(f"calibration input {path} is neither an image folder, an image nor a video "
                         f"({', '.join(VIDEO_SUFFIXES)})")
    return video_frames(path)


def read_frames(source: FrameSource, count: int) -> List[np.ndarray]:
    """`count` uint8 H×W×3 frames spread evenly over a folder, image file(s), video or iterable."""
    if isinstance(source, (str, os.PathLike)):
        frames: Iterable = _frames_from_path(Path(source))
    elif isinstance(source, (list, tuple)) and source and isinstance(source[0], (str, os.PathLike)):
        frames = (read_image(p)[0] for p in source)
    else:
        frames = source
    picked = sample_evenly(frames, count)
    if not picked:
        raise ValueError("the calibration source yielded no frames")
    for f in picked:
        if not (isinstance(f, np.ndarray) and f.ndim == 3 and f.shape[2] == 3 and f.dtype == np.uint8):
            raise ValueError(f"calibration frames must be uint8 H×W×3 arrays, got {getattr(f, 'dtype', type(f))} "
                             f"{getattr(f, 'shape', '')}")
    return picked


def center_crop(frame: np.ndarray, size: Optional[int]) -> np.ndarray:
    """The central size×size part (each side capped at the frame's own)."""
    if size is None:
        return frame
    h, w = frame.shape[:2]
    top, left = max(0, (h - size) // 2), max(0, (w - size) // 2)
    return frame[top:top + size, left:left + size]


def degraded_batches(frames: Sequence[np.ndarray], degradation: Optional[dict], seed: int = 0,
                     crop: Optional[int] = None) -> List[np.ndarray]:
    """Each frame as a 1×3×H×W float32 array in [0, 1], degraded as the task expects.

    `degradation` is a checkpoint's {"name": "noise"|"rain", "level_range": [lo, hi]}: levels are
    spread evenly over the range, one per frame. None: the frames are degraded already.
    """
    rng = np.random.default_rng(seed)
    if degradation is not None:
        lo, hi = degradation.get("level_range", (0.0, 0.0))
        levels = np.linspace(lo, hi, len(frames)) if len(frames) > 1 else [0.5 * (lo + hi)]
    out = []
    for i, frame in enumerate(frames):
        image = center_crop(frame, crop).astype(np.float32) / 255.0
        if degradation is not None:
            image = degrade(degradation["name"], image, float(levels[i]), rng)
            image = np.round(image * 255.0) / 255.0  # as a stored 8-bit frame
        out.append(np.ascontiguousarray(image.transpose(2, 0, 1)[None], dtype=np.float32))
    return out


def sampler_feeds(batches: Sequence[np.ndarray], input_name: str = "degraded") -> List[Feed]:
    return [{input_name: b} for b in batches]


def network_feeds(model: ConditionalUNet, schedule: Schedule, batches: Sequence[np.ndarray]) -> List[Feed]:
    """Feeds {x, t} for the network graph: every state the eager sampler evaluates D at."""
    feeds: List[Feed] = []

    def recording(x: torch.Tensor, t: int) -> torch.Tensor:
        feeds.append({"x": x.numpy().copy(), "t": np.full((x.shape[0],), t, np.float32)})
        return model(x, t)

    with torch.inference_mode():
        for b in batches:
            sample(recording, torch.from_numpy(b), schedule)
    return feeds
