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


def _frame_planes(frame, like: List[np.ndarray]) -> List[np.ndarray]:
    """Views of a PyAV frame's planes, shaped and typed like `like` (pitch skipped)."""
    views = []
    for plane, ref in zip(frame.planes, like):
        flat = np.frombuffer(plane, dtype=ref.dtype)
        pitch = plane.line_size // ref.itemsize
        views.append(flat[:ref.shape[0] * pitch].reshape(ref.shape[0], pitch)[:, :ref.shape[1]])
    return views


def copy_to_slot(frame, slot: np.ndarray, av_fmt: str) -> None:
    """Copy a decoded PyAV frame (format `av_fmt`) into `slot`, one rawvideo frame."""
    dst = _slot_planes(slot, av_fmt)
    for d, s in zip(dst, _frame_planes(frame, dst)):
        np.copyto(d, s)


def frame_from_slot(slot: np.ndarray, av_fmt: str, width: int, height: int):
    """A new PyAV frame (format `av_fmt`) holding the rawvideo frame in `slot`."""
    import av

    frame = av.VideoFrame(width, height, av_fmt)
    src = _slot_planes(slot, av_fmt)
    for d, s in zip(_frame_planes(frame, src), src):
        np.copyto(d, s)
    return frame
