"""User frames <-> the backends' N×3×H×W float32 tensors: validation and conversion.

Accepted inputs (returned in the same kind: type, dtype, rank, device):
- numpy uint8 H×W×3 or N×H×W×3 (0–255), uint16 (0–65535: 16-bit images); numpy float16/32/64 of
  those shapes (0–1);
- torch float (fp16/bf16/fp32/fp64) 3×H×W or N×3×H×W, values in [0, 1]; torch uint8 of those
  shapes (0–255); on any device.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Tuple, Union

import numpy as np
import torch

Frame = Union[np.ndarray, torch.Tensor]


class InputError(ValueError):
    """An input frame the engine cannot restore; the message names the problem."""


@dataclass(frozen=True)
class FrameKind:
    """How to give a result back in the caller's form."""

    is_numpy: bool
    batched: bool
    dtype: object
    device: torch.device


def to_batch(x: Frame, channels: int = 3) -> Tuple[torch.Tensor, FrameKind]:
    """Validate `x` and return (N×C×H×W float32 tensor on x's device in [0, 1], its kind)."""
    if isinstance(x, np.ndarray):
        return _numpy_to_batch(x, channels)
    if isinstance(x, torch.Tensor):
        return _torch_to_batch(x, channels)
    raise InputError(f"expected a numpy array or a torch tensor, got {type(x).__name__}")


def from_batch(y: torch.Tensor, kind: FrameKind, clamp: bool = True) -> Frame:
    """Inverse of `to_batch` for an N×C×H×W float32 result."""
    peak = {np.uint8: 255.0, torch.uint8: 255.0, np.uint16: 65535.0}.get(kind.dtype)
    if clamp or peak:
        y = y.clamp(0.0, 1.0)
    if peak:
        y = (y * peak).round()
    if kind.is_numpy:
        out = y.permute(0, 2, 3, 1).to("cpu", torch.float32).numpy().astype(kind.dtype)
        return out if kind.batched else out[0]
    out = y.to(device=kind.device, dtype=kind.dtype)
    return out if kind.batched else out[0]


def _check_dims(shape, layout: str, channels: int, channel_axis: int, what: str) -> None:
    if len(shape) not in (len(layout) - 1, len(layout)):
        raise InputError(f"{what} must be {layout[1:]} or {layout} (got shape {tuple(shape)})")
    if shape[channel_axis] != channels:
        hint = "; drop the alpha channel first" if shape[channel_axis] == 4 else ""
        raise InputError(f"{what} must have {channels} channels (RGB) on axis {channel_axis % len(shape)} "
                         f"of {layout[-len(shape):]}, got {shape[channel_axis]} (shape {tuple(shape)}){hint}")
    if any(s == 0 for s in shape):
        raise InputError(f"{what} is empty (shape {tuple(shape)})")


def _numpy_to_batch(x: np.ndarray, channels: int):
    _check_dims(x.shape, "NHWC", channels, -1, "a numpy image")
    batched = x.ndim == 4
    if x.dtype in (np.uint8, np.uint16):
        t = torch.from_numpy(x.astype(np.float32)).div_(255.0 if x.dtype == np.uint8 else 65535.0)
    elif x.dtype in (np.float16, np.float32, np.float64):
        if not np.isfinite(x).all():
            raise InputError("input contains NaN or Inf values")
        t = torch.from_numpy(np.array(x, dtype=np.float32))  # a copy: the caller's array stays theirs
    else:
        raise InputError(f"numpy images must be uint8 (0–255), uint16 (0–65535) or float (0–1), got dtype {x.dtype}")
    t = t if batched else t[None]
    return t.permute(0, 3, 1, 2).contiguous(), FrameKind(True, batched, x.dtype.type, torch.device("cpu"))


def _torch_to_batch(x: torch.Tensor, channels: int):
    _check_dims(x.shape, "NCHW", channels, -3, "a torch image")
    batched = x.dim() == 4
    if x.dtype == torch.uint8:
        t = x.float().div_(255.0)
    elif x.is_floating_point():
        if not torch.isfinite(x).all():
            raise InputError("input contains NaN or Inf values")
        t = x.float()
    else:
        raise InputError(f"torch images must be floating point (0–1) or uint8 (0–255), got dtype {x.dtype}")
    t = t if batched else t[None]
    return t.contiguous(), FrameKind(False, batched, x.dtype, x.device)
