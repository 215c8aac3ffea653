"""Nearest-neighbour 2× upsampling of channels-last activations (the decoder's Upsample).

    out[n, 2i + a, 2j + b, c] = x[n, i, j, c]      for a, b ∈ {0, 1}

`x` is the N×H×W×C view of a channels-last map, `out` the N×2H×2W×C view of another, in the same
storage dtype (fp32, fp16 or bf16); a pure copy, so the result is exact.

Why a kernel: it moves only bytes — one read of x, one write of 4× as many elements — yet on an
H200 PyTorch's `upsample_nearest2d` for channels-last tensors took 7.9 ms of an 83 ms
irflow-unet64 loop (1280×720, K = 3, fp16; docs/PERF.md), about 10 % of the memory bandwidth,
where the bytes need ≈ 0.75 ms. Here each program copies BLOCK_P output pixels × BLOCK_C
channels with contiguous, vectorisable loads and stores along C; the integer index arithmetic is
per pixel, not per element, and the source rows are re-read from L2 (each feeds 4 outputs).
"""

from __future__ import annotations

from typing import Optional

import torch
import triton
import triton.language as tl

from .checks import check_shape, check_tensor, next_power_of_2, row_block


@triton.jit
def _upsample_nearest2x_kernel(
    x_ptr,            # *T [N·H·W, C] input pixels, channels contiguous
    out_ptr,          # *T [N·2H·2W, C] output pixels
    P,                # output pixels N·2H·2W
    H, W, C,
    BLOCK_P: tl.constexpr,
    BLOCK_C: tl.constexpr,
):
    p = tl.program_id(0) * BLOCK_P + tl.arange(0, BLOCK_P)
    c = tl.program_id(1) * BLOCK_C + tl.arange(0, BLOCK_C)
    ow = p % (2 * W)
    rest = p // (2 * W)
    oh = rest % (2 * H)
    n = rest // (2 * H)
    src = (n * H + oh // 2) * W + ow // 2
    mask = (p < P)[:, None] & (c < C)[None, :]
    v = tl.load(x_ptr + src.to(tl.int64)[:, None] * C + c[None, :], mask=mask)
    tl.store(out_ptr + p.to(tl.int64)[:, None] * C + c[None, :], v, mask=mask)


def upsample_nearest2x(x: torch.Tensor, out: Optional[torch.Tensor] = None) -> torch.Tensor:
    """N×H×W×C `x` → N×2H×2W×C, each pixel repeated 2×2 (into `out` if given; not aliasing x)."""
    check_tensor("x", x, ndim=4)
    n, h, w, c = x.shape
    shape = (n, 2 * h, 2 * w, c)
    if out is None:
        out = torch.empty(shape, dtype=x.dtype, device=x.device)
    else:
        check_tensor("out", out, ndim=4, dtypes=(x.dtype,), device=x.device)
        check_shape("out", out, shape, "twice x's height and width")
    p = n * 4 * h * w
    if p == 0 or c == 0:
        return out
    block_c = min(128, next_power_of_2(c))
    block_p = row_block(p, block_c, x.is_cuda)
    grid = (triton.cdiv(p, block_p), triton.cdiv(c, block_c))
    _upsample_nearest2x_kernel[grid](x, out, p, h, w, c, BLOCK_P=block_p, BLOCK_C=block_c, num_warps=4)
    return out


def upsample_nearest2x_reference(x: torch.Tensor) -> torch.Tensor:
    """The same in PyTorch: `F.interpolate(scale_factor=2, mode="nearest")` on the NCHW view."""
    y = torch.nn.functional.interpolate(x.permute(0, 3, 1, 2), scale_factor=2, mode="nearest")
    return y.permute(0, 2, 3, 1).contiguous()
