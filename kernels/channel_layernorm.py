"""Channel LayerNorm, optionally fused with a bias before it and a residual add after it.

    x'  = x [+ bias]
    out = (x' − mean_c x') / sqrt(var_c x' + eps) · g  [+ residual]

over the channel axis of channels-last N×H×W×C activations (each pixel is one contiguous row of
C values): gain `g` (C,), no bias, biased variance, statistics in fp32 with eps 1e-5 whatever the
storage dtype (fp32, fp16, bf16) — the network's `ChannelLayerNorm`. The network uses it twice per
attention block: the PreNorm before the qkv projection (no residual) and the norm after the output
projection, whose result the attention block adds to its input (`residual`). That projection is a
1×1 convolution with a bias; cuDNN/cuBLAS add a bias in a separate element-wise pass over the map,
so the fused backend runs the projection without it and passes it here (`bias`, fp32, (C,)).

Why a kernel: PyTorch's version is a chain of reductions and element-wise ops (float cast, var,
mean, subtract, rsqrt, two multiplies, cast back, then the residual add), each a pass over the
map — about ten reads and writes of N·H·W·C elements, two more for the bias add. Here each row
is loaded once into registers, reduced twice there (mean, then the centred variance), and written
once: 1 read (2 with the residual) and 1 write.

Block sizes: a program normalises BLOCK_M rows of BLOCK_C = next_power_of_2(C) columns (masked
beyond C); C up to 8192 fits in one program's registers.
"""

from __future__ import annotations

from typing import Optional

import torch
import triton
import triton.language as tl

from .checks import check_out, check_shape, check_tensor, next_power_of_2

LAYERNORM_EPS = 1e-5
MAX_CHANNELS = 8192


@triton.jit
def _channel_layernorm_kernel(
    x_ptr,            # *T [M, C] rows = pixels, channels contiguous
    g_ptr,            # *G [C] gain
    bias_ptr,         # *f32 [C] added to x before the statistics (read only when HAS_BIAS)
    res_ptr,          # *T [M, C] residual (read only when HAS_RESIDUAL)
    out_ptr,          # *T [M, C] output, may alias x or residual
    M,                # rows (N·H·W)
    C,                # channels
    eps,              # added to the variance
    HAS_BIAS: tl.constexpr,
    HAS_RESIDUAL: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_C: tl.constexpr,
):
    rows = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    cols = tl.arange(0, BLOCK_C)
    col_mask = cols < C
    mask = (rows < M)[:, None] & col_mask[None, :]
    offs = rows.to(tl.int64)[:, None] * C + cols[None, :]
    x = tl.load(x_ptr + offs, mask=mask, other=0.0).to(tl.float32)
    if HAS_BIAS:
        x += tl.load(bias_ptr + cols, mask=col_mask, other=0.0).to(tl.float32)[None, :]
    mean = tl.sum(x, axis=1) / C
    centred = tl.where(mask, x - mean[:, None], 0.0)
    var = tl.sum(centred * centred, axis=1) / C
    rstd = 1.0 / tl.sqrt(var + eps)
    g = tl.load(g_ptr + cols, mask=col_mask, other=0.0).to(tl.float32)
    y = centred * rstd[:, None] * g[None, :]
    if HAS_RESIDUAL:
        y += tl.load(res_ptr + offs, mask=mask, other=0.0).to(tl.float32)
    tl.store(out_ptr + offs, y.to(out_ptr.dtype.element_ty), mask=mask)


def channel_layernorm(x: torch.Tensor, g: torch.Tensor, residual: Optional[torch.Tensor] = None,
                      out: Optional[torch.Tensor] = None, eps: float = LAYERNORM_EPS,
                      bias: Optional[torch.Tensor] = None) -> torch.Tensor:
    """LayerNorm over C of N×H×W×C `x` [+ `bias` (C,) first] with gain `g` (C,) [+ `residual`]."""
    check_tensor("x", x, ndim=4)
    c = x.shape[-1]
    if c > MAX_CHANNELS:
        raise ValueError(f"channel_layernorm handles at most {MAX_CHANNELS} channels in one program, got {c}")
    if not isinstance(g, torch.Tensor):
        raise TypeError(f"g must be a torch.Tensor, got {type(g).__name__}")
    g = g.reshape(-1)  # the model stores it as (1, C, 1, 1)
    check_tensor("g", g, ndim=1, device=x.device)
    check_shape("g", g, (c,), "x's channel count")
    if bias is not None:
        check_tensor("bias", bias, ndim=1, dtypes=(torch.float32,), device=x.device)
        check_shape("bias", bias, (c,), "x's channel count")
    if residual is not None:
        check_tensor("residual", residual, ndim=4, dtypes=(x.dtype,), device=x.device)
        check_shape("residual", residual, x.shape, "must match x")
    out = check_out("out", out, x)
    m = x.numel() // max(c, 1)
    if x.numel() == 0:
        return out
    block_c = next_power_of_2(c)
    # ~4096 elements per program on a GPU; the CPU interpreter pays per program, so it gets
    # fewer, larger ones.
    if x.is_cuda:
        block_m = max(1, min(64, 4096 // block_c))
    else:
        block_m = max(1, min(512, 32768 // block_c, next_power_of_2(m)))
    num_warps = 4 if block_c * block_m <= 4096 else 8
    grid = (triton.cdiv(m, block_m),)
    _channel_layernorm_kernel[grid](x, g, bias if bias is not None else g, residual if residual is not None else x,
                                    out, m, c, eps, HAS_BIAS=bias is not None, HAS_RESIDUAL=residual is not None,
                                    BLOCK_M=block_m, BLOCK_C=block_c, num_warps=num_warps)
    return out


def channel_layernorm_reference(x: torch.Tensor, g: torch.Tensor, residual: Optional[torch.Tensor] = None,
                                eps: float = LAYERNORM_EPS, bias: Optional[torch.Tensor] = None) -> torch.Tensor:
    """The network's ChannelLayerNorm on the last axis (fp32 statistics) of x [+ bias], then
    `+ residual` in fp32."""
    xf = x.float() if bias is None else x.float() + bias.float()
    var = torch.var(xf, dim=-1, unbiased=False, keepdim=True)
    mean = torch.mean(xf, dim=-1, keepdim=True)
    y = (xf - mean) * (var + eps).rsqrt() * g.reshape(-1).float()
    if residual is not None:
        y = y + residual.float()
    return y.to(x.dtype)
