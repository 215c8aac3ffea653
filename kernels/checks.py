"""Argument checks shared by the launchers: errors name the argument and the mismatch.

Plain PyTorch only (no Triton), so the messages can be tested anywhere.
"""

from __future__ import annotations

from typing import Optional, Sequence

import torch

STORAGE_DTYPES = (torch.float32, torch.float16, torch.bfloat16)


def next_power_of_2(n: int) -> int:
    return 1 << max(0, int(n) - 1).bit_length()


def elementwise_block(numel: int, on_gpu: bool) -> int:
    """Elements per program for the flat element-wise kernels.

    GPU: 1024 (8 per thread at 4 warps). The CPU interpreter pays per program, so it gets fewer,
    larger ones.
    """
    return 1024 if on_gpu else min(8192, next_power_of_2(numel))


def row_block(pixels: int, block_c: int, on_gpu: bool) -> int:
    """Pixels per program for the row-copy kernels (a BLOCK_P × BLOCK_C tile of whole pixels).

    GPU: 4096 elements per program. The CPU interpreter pays per program, so it gets fewer,
    larger ones (up to 65536 elements).
    """
    if on_gpu:
        return max(1, 4096 // block_c)
    return max(1, min(next_power_of_2(pixels), 65536 // block_c))


def check_tensor(name: str, t, *, ndim: int, dtypes: Sequence[torch.dtype] = STORAGE_DTYPES,
                 device: Optional[torch.device] = None) -> None:
    """`t` is a contiguous tensor with `ndim` dimensions, one of `dtypes`, on `device`."""
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if t.dim() != ndim:
        raise ValueError(f"{name} must have {ndim} dimensions, got shape {tuple(t.shape)}")
    if t.dtype not in dtypes:
        names = ", ".join(str(d).replace("torch.", "") for d in dtypes)
        raise TypeError(f"{name} has dtype {str(t.dtype).replace('torch.', '')}; expected one of {names}")
    if device is not None and t.device != device:
        raise ValueError(f"{name} is on {t.device} but the other operands are on {device}")
    if not t.is_contiguous():
        raise ValueError(f"{name} (shape {tuple(t.shape)}, strides {t.stride()}) must be contiguous; for "
                         "activations pass the N×H×W×C view of a channels-last tensor "
                         "(x.permute(0, 2, 3, 1) of x.contiguous(memory_format=torch.channels_last))")


def check_shape(name: str, t: torch.Tensor, shape: Sequence[int], what: str = "") -> None:
    if tuple(t.shape) != tuple(shape):
        suffix = f" ({what})" if what else ""
        raise ValueError(f"{name} has shape {tuple(t.shape)}, expected {tuple(shape)}{suffix}")


def check_out(name: str, out: Optional[torch.Tensor], like: torch.Tensor) -> torch.Tensor:
    """`out` (or a fresh tensor) with `like`'s shape, dtype and device, contiguous."""
    if out is None:
        return torch.empty_like(like, memory_format=torch.contiguous_format)
    check_tensor(name, out, ndim=like.dim(), dtypes=(like.dtype,), device=like.device)
    check_shape(name, out, like.shape)
    return out
