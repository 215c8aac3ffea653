"""Velocity head + sampler update: the network's last 3×3 convolution and the step x ← x − w·D.

    D   = conv3×3(features, weight) + bias, cropped to the image's H×W   (nf → 3 channels)
    out = x − w · (D [+ prev])            (optional, in out's dtype)
    d   = D                                (optional, fp32, for Heun / paired steps)

`features` are the last ResBlock's output, channels-last N×Hp×Wp×C (the padded map, fp32, fp16
or bf16); `x`, `prev`, `out` and `d` are NCHW N×O×H×W with H ≤ Hp, W ≤ Wp (the unpadded image).
`x` and `prev` are fp32, `d` is fp32, `out` may be fp32/fp16/bf16 and may alias `x`. The
convolution sees zero padding outside the padded map, as `Conv2d(padding=1)` on it does; pixels
beyond H×W are never computed. Products in the features' dtype with fp32 accumulation (exact
fp32 for fp32 features); the update in fp32.

Why a kernel: with cuDNN the velocity head writes an N×O×Hp×Wp map, PyTorch crops and copies it,
multiplies by w, subtracts from x and writes the new state — four more passes over the state and
three launches, and for O = 3 output channels cuDNN's tensor-core kernels are poorly used. Here
the features are read once (the 3×3 neighbourhood comes from cache) and the new state written
once, straight into the caller's buffer: on the last step that buffer is the engine's output.

Tiles: a program computes BLOCK_P pixels of one image × all O (≤ 16) output channels, looping
over the 9 taps and over C in BLOCK_C chunks, each chunk one (BLOCK_P × BLOCK_C)·(BLOCK_C × 16)
product.
"""

from __future__ import annotations

from typing import Optional, Tuple

import torch
import triton
import triton.language as tl

from .checks import check_shape, check_tensor, next_power_of_2

MAX_OUT_CHANNELS = 16


@triton.jit
def _velocity_euler_kernel(
    feat_ptr,         # *T   [N, Hp, Wp, C] features, channels contiguous
    w_ptr,            # *T   [9, C, O] packed weight: tap-major, then input channel
    bias_ptr,         # *f32 [O]
    x_ptr,            # *f32 [N, O, H, W] state the step starts from
    prev_ptr,         # *f32 [N, O, H, W] earlier velocity added to D (HAS_PREV)
    out_ptr,          # *U   [N, O, H, W] x − w·(D + prev) (HAS_OUT), may alias x
    d_ptr,            # *f32 [N, O, H, W] D itself (HAS_D)
    step_w,           # the step weight w
    C, O, H, W, Hp, Wp,
    HAS_PREV: tl.constexpr,
    HAS_OUT: tl.constexpr,
    HAS_D: tl.constexpr,
    EXACT_F32: tl.constexpr,
    BLOCK_P: tl.constexpr,
    BLOCK_C: tl.constexpr,
    BLOCK_O: tl.constexpr,
):
    n = tl.program_id(0)
    p = tl.program_id(1) * BLOCK_P + tl.arange(0, BLOCK_P)
    p_mask = p < H * W
    row = p // W
    col = p % W
    o = tl.arange(0, BLOCK_O)
    o_mask = o < O

    acc = tl.zeros((BLOCK_P, BLOCK_O), tl.float32)
    for tap in range(9):
        src_r = row + (tap // 3 - 1)
        src_c = col + (tap % 3 - 1)
        valid = p_mask & (src_r >= 0) & (src_r < Hp) & (src_c >= 0) & (src_c < Wp)
        pix = ((n * Hp + src_r) * Wp + src_c).to(tl.int64) * C
        for c0 in range(0, C, BLOCK_C):
            c = c0 + tl.arange(0, BLOCK_C)
            c_mask = c < C
            f = tl.load(feat_ptr + pix[:, None] + c[None, :], mask=valid[:, None] & c_mask[None, :], other=0.0)
            wt = tl.load(w_ptr + (tap * C + c)[:, None] * O + o[None, :],
                         mask=c_mask[:, None] & o_mask[None, :], other=0.0)
            if EXACT_F32:
                acc += tl.dot(f.to(tl.float32), wt.to(tl.float32), input_precision="ieee")
            else:
                acc += tl.dot(f, wt)
    vel = acc + tl.load(bias_ptr + o, mask=o_mask, other=0.0)[None, :]

    idx = (n * O + o[None, :]).to(tl.int64) * (H * W) + p[:, None]
    mask = p_mask[:, None] & o_mask[None, :]
    if HAS_D:
        tl.store(d_ptr + idx, vel, mask=mask)
    if HAS_OUT:
        total = vel
        if HAS_PREV:
            total += tl.load(prev_ptr + idx, mask=mask, other=0.0)
        x = tl.load(x_ptr + idx, mask=mask, other=0.0)
        tl.store(out_ptr + idx, (x - step_w * total).to(out_ptr.dtype.element_ty), mask=mask)


def pack_velocity_weight(weight: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Conv weight O×C×3×3 -> the kernel's 9×C×O layout in `dtype` (done once per backend)."""
    o, c = weight.shape[:2]
    return weight.detach().permute(2, 3, 1, 0).reshape(9, c, o).to(dtype).contiguous()


def velocity_euler(features: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, x: torch.Tensor,
                   step_w: float, *, out: Optional[torch.Tensor] = None, prev: Optional[torch.Tensor] = None,
                   d_out: Optional[torch.Tensor] = None) -> Optional[torch.Tensor]:
    """Velocity head on N×Hp×Wp×C `features` and the update `out = x − w·(D [+ prev])`.

    `weight` is either the conv weight O×C×3×3 or its packed 9×C×O form (`pack_velocity_weight`,
    in the features' dtype); `bias` (O,). Writes `out` (allocated as fp32 when None and no `d_out`
    is given) and/or `d_out` (= D, fp32); returns `out`.
    """
    check_tensor("features", features, ndim=4)
    n, hp, wp, c = features.shape
    dev = features.device
    if weight.dim() == 4:
        o = weight.shape[0]
        check_shape("weight", weight, (o, c, 3, 3), "O×C×3×3 with C = features' channels")
        weight = pack_velocity_weight(weight, features.dtype)
    o = weight.shape[-1]
    check_tensor("weight", weight, ndim=3, dtypes=(features.dtype,), device=dev)
    check_shape("weight", weight, (9, c, o), "packed 9×C×O")
    if not 1 <= o <= MAX_OUT_CHANNELS:
        raise ValueError(f"velocity_euler supports 1..{MAX_OUT_CHANNELS} output channels, got {o}")
    check_tensor("bias", bias, ndim=1, dtypes=(torch.float32,), device=dev)
    check_shape("bias", bias, (o,), "one per output channel")
    check_tensor("x", x, ndim=4, dtypes=(torch.float32,), device=dev)
    h, w = x.shape[-2:]
    check_shape("x", x, (n, o, h, w), "N×O×H×W state")
    if h > hp or w > wp:
        raise ValueError(f"x is {h}×{w} but features are only {hp}×{wp}: features must cover the image")
    state_shape = (n, o, h, w)
    if prev is not None:
        check_tensor("prev", prev, ndim=4, dtypes=(torch.float32,), device=dev)
        check_shape("prev", prev, state_shape, "must match x")
    if d_out is not None:
        check_tensor("d_out", d_out, ndim=4, dtypes=(torch.float32,), device=dev)
        check_shape("d_out", d_out, state_shape, "must match x")
    if out is None and d_out is None:
        out = torch.empty(state_shape, dtype=torch.float32, device=dev)
    if out is not None:
        check_tensor("out", out, ndim=4, device=dev)
        check_shape("out", out, state_shape, "must match x")
    if n * h * w == 0:
        return out

    # The CPU interpreter pays per program and per tile element: few tiles, no bigger than needed.
    block_p = 64 if features.is_cuda else min(512, max(16, next_power_of_2(h * w)))
    block_c = max(16, min(64, next_power_of_2(c)))
    block_o = 16
    grid = (n, triton.cdiv(h * w, block_p))
    _velocity_euler_kernel[grid](
        features, weight, bias, x, prev if prev is not None else x, out if out is not None else x,
        d_out if d_out is not None else x, float(step_w), c, o, h, w, hp, wp,
        HAS_PREV=prev is not None, HAS_OUT=out is not None, HAS_D=d_out is not None,
        EXACT_F32=features.dtype == torch.float32, BLOCK_P=block_p, BLOCK_C=block_c, BLOCK_O=block_o,
        num_warps=4)
    return out


def velocity_euler_reference(features: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor,
                             x: torch.Tensor, step_w: float,
                             prev: Optional[torch.Tensor] = None) -> Tuple[torch.Tensor, torch.Tensor]:
    """(x − w·(D [+ prev]), D) in fp32 with PyTorch's conv2d on the NCHW view of `features`."""
    h, w = x.shape[-2:]
    feats = features.permute(0, 3, 1, 2).float()
    vel = torch.nn.functional.conv2d(feats, weight.float(), bias.float(), padding=1)[..., :h, :w]
    total = vel if prev is None else vel + prev
    return x - step_w * total, vel
