"""Raw frame pipes: fixed-size frames in (e.g. stdin), restored frames of the same format out.

    ffmpeg -i in.mp4 -f rawvideo -pix_fmt yuv420p - \\
      | irflow restore - -o - --raw-size 1280x720 --pix-fmt yuv420p --model irflow-denoise-s \\
      | ffmpeg -f rawvideo -pix_fmt yuv420p -s 1280x720 -r 25 -i - out.mp4

Frames are FFmpeg rawvideo of one `pixfmt` format; YUV frames use the given matrix and range.
The run ends at the end of the input; a partial last frame is dropped and reported, and a reader
that closes the output early stops the run; both end cleanly (`RawPipeReport.ended` says how).
"""

from __future__ import annotations

import errno
from contextlib import closing
from dataclasses import dataclass
from functools import partial
from typing import BinaryIO, Iterator, Optional, Tuple

import torch

from .. import pixfmt
from ..tiling import DEFAULT_OVERLAP
from .errors import UnsupportedPixelFormatError, VideoError
from .formats import RGB48
from .layouts import PixfmtLayout, RGB48Layout
from .pipeline import StageClock, StopFlag, run_ordered
from .report import Progress, VideoReport
from .transfer import make_io


@dataclass
class RawPipeReport(VideoReport):
    """A `VideoReport` plus how the stream ended: "eof", "short-frame" or "output-closed"."""

    ended: str = "eof"
    short_bytes: int = 0     # bytes of the dropped partial frame
    frame_bytes: int = 0

    def ending(self) -> Optional[str]:
        """A sentence for the user when the stream did not end at a frame boundary, else None."""
        if self.ended == "short-frame":
            return (f"the input ended inside frame {self.frames + 1} ({self.short_bytes} of {self.frame_bytes} "
                    f"bytes); that partial frame was dropped, {self.frames} frames were written")
        if self.ended == "output-closed":
            return f"the output pipe was closed by its reader after {self.frames} frames; stopped"
        return None


def parse_size(text: str) -> Tuple[int, int]:
    """'WxH' -> (width, height)."""
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise VideoError(f"raw frame size must look like 1280x720 (WxH), got {text!r}") from None
    if w < 1 or h < 1:
        raise VideoError(f"raw frame size must be positive, got {text!r}")
    return w, h


def raw_layout(width: int, height: int, pix_fmt: str, matrix: str = "bt709", range: str = "limited"):
    """The layout of raw frames, with the format and colour names checked: `pixfmt`'s formats, or
    rgb48le (16-bit R'G'B', `RGB48Layout`)."""
    if pix_fmt == RGB48:
        return RGB48Layout(height, width)
    fmt = {"p010le": "p010"}.get(pix_fmt, pix_fmt)
    if fmt not in pixfmt.FORMATS:
        raise UnsupportedPixelFormatError(f"raw pipes take {', '.join(pixfmt.FORMATS)} or {RGB48}, not {pix_fmt!r}")
    if pixfmt.FORMATS[fmt].yuv and (width % 2 or height % 2):
        raise VideoError(f"{fmt} frames need an even width and height, got {width}x{height}")
    if matrix not in pixfmt.MATRICES or range not in pixfmt.RANGES:
        raise VideoError(f"matrix must be one of {pixfmt.MATRICES} and range one of {pixfmt.RANGES}, "
                         f"got {matrix!r}, {range!r}")
    return PixfmtLayout(fmt, height, width, matrix, range)


def _read_into(reader: BinaryIO, view: memoryview) -> int:
    """Fill `view` from `reader`; the bytes read (fewer only at the end of the input)."""
    got = 0
    while got < len(view):
        n = reader.readinto(view[got:])
        if not n:
            break
        got += n
    return got


def _frames(reader: BinaryIO, layout, batch: int, alloc, clock: StageClock,
            report: RawPipeReport) -> Iterator[Tuple[torch.Tensor, int]]:
    size = layout.frame_bytes
    while True:
        buf = alloc(batch)
        data = memoryview(buf.numpy()).cast("B")
        n = 0
        with clock.timed():
            while n < batch:
                got = _read_into(reader, data[n * size:(n + 1) * size])
                if got < size:
                    if got:
                        report.ended, report.short_bytes = "short-frame", got
                    break
                n += 1
        clock.add(0.0, n)
        if n:
            yield buf, n
        if n < batch:
            return


def run_raw_pipe(engine, reader: BinaryIO, writer: BinaryIO, layout, *, batch: Optional[int] = None,
                 queue_depth: int = 2, tile: Optional[int] = None, tile_overlap: int = DEFAULT_OVERLAP,
                 progress: bool = True) -> RawPipeReport:
    """Restore raw frames from `reader` to `writer` until the input ends or the output closes."""
    batch = batch or engine.config.max_batch
    stop = StopFlag()
    clocks = {name: StageClock(name) for name in ("read", "convert", "restore", "write")}
    restore = partial(engine.restore_batch, tile=tile, tile_overlap=tile_overlap)
    io = make_io(layout, restore, engine.device, clocks["restore"], batch=batch, depth=queue_depth, stop=stop,
                 convert_clock=clocks["convert"])
    report = RawPipeReport(width=layout.width, height=layout.height, stages=clocks, frame_bytes=layout.frame_bytes)
    bar = Progress(None, progress)
    try:
        source = _frames(reader, layout, batch, io.alloc, clocks["read"], report)
        with closing(run_ordered(source, lambda item: io.work(*item), queue_depth, stop)) as results:
            for pending in results:
                out = io.collect(pending)
                try:
                    with clocks["write"].timed(pending.n):
                        writer.write(memoryview(out.numpy()).cast("B"))
                        writer.flush()
                except OSError as e:
                    if isinstance(e, BrokenPipeError) or e.errno in (errno.EPIPE, errno.ECONNRESET):
                        report.ended = "output-closed"
                        break
                    raise
                io.recycle(pending)
                report.frames += pending.n
                bar.update(pending.n)
    finally:
        report.seconds = bar.close()
    return report
