"""PyAV video frames <-> FFmpeg rawvideo arrays (the layout `pixfmt.empty_frame` makes).

Decoded frames are copied plane by plane, row pitch dropped, straight into a slot of a batch
buffer (pinned on CUDA), and encoder frames are filled from such a slot: one copy each way, no
swscale.
"""

from __future__ import annotations

from typing import List

import numpy as np

from .. import pixfmt
from .formats import AV_TO_PIXFMT, RGB48


def _slot_planes(slot: np.ndarray, av_fmt: str) -> List[np.ndarray]:
    """2-D (rows × row elements) views of the planes of one rawvideo frame."""
    if av_fmt == RGB48:   # packed, 16-bit samples in an int16 slot
        return [slot.reshape(slot.shape[0], -1)]
    fmt = AV_TO_PIXFMT[av_fmt]
    if pixfmt.FORMATS[fmt].yuv:
        return [p if p.ndim == 2 else p.reshape(p.shape[0], -1) for p in pixfmt.frame_planes(slot, fmt)]
    return [slot.reshape(slot.shape[0], -1)]


def plane_view(plane, dtype, rows: int, cols: int) -> np.ndarray:
    """A rows × cols view of one PyAV plane (row pitch skipped)."""
    flat = np.frombuffer(plane, dtype=dtype)
    pitch = plane.line_size // np.dtype(dtype).itemsize
    return flat[:rows * pitch].reshape(rows, pitch)[:, :cols]


def _frame_planes(frame, like: List[np.ndarray]) -> List[np.ndarray]:
    """Views of a PyAV frame's planes, shaped and typed like `like` (pitch skipped). A slot may be a
    row and a column larger than the frame (4:2:0 frames of odd size, `layouts.EvenPaddedLayout`):
    then the luma plane's view is the frame's own size, the others fit as they are."""
    shapes = [ref.shape for ref in like]
    if len(like) > 1:   # planar YUV: the luma plane is the frame's size
        shapes[0] = (frame.height, frame.width)
    return [plane_view(plane, ref.dtype, *shape) for plane, ref, shape in zip(frame.planes, like, shapes)]


def copy_to_slot(frame, slot: np.ndarray, av_fmt: str) -> None:
    """Copy a decoded PyAV frame (format `av_fmt`) into `slot`, one rawvideo frame. A slot larger
    than a 4:2:0 frame of odd size gets the frame's last luma row and column repeated."""
    dst = _slot_planes(slot, av_fmt)
    for d, s in zip(dst, _frame_planes(frame, dst)):
        d[:s.shape[0], :s.shape[1]] = s
        if s.shape[1] < d.shape[1]:
            d[:s.shape[0], s.shape[1]:] = s[:, -1:]
        if s.shape[0] < d.shape[0]:
            d[s.shape[0]:] = d[s.shape[0] - 1]


def frame_from_slot(slot: np.ndarray, av_fmt: str, width: int, height: int, carrier=None):
    """A new PyAV frame (format `av_fmt`, width × height) holding the rawvideo frame in `slot`
    (cropped when the slot is larger: a 4:2:0 frame of odd size); made from `carrier` when given,
    so that it keeps the carrier's side data (`captions.py`)."""
    import av

    if carrier is None:
        frame = av.VideoFrame(width, height, av_fmt)
    else:
        frame = carrier.reformat(width=width, height=height, format=av_fmt)
    src = _slot_planes(slot, av_fmt)
    for d, s in zip(_frame_planes(frame, src), src):
        np.copyto(d, s[:d.shape[0], :d.shape[1]])
    return frame
