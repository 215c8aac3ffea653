"""Linear attention core: from the qkv projection to the per-head outputs, in three launches.

The network's LinearAttention, for each image and head (D = 32 channels per head, P = H·W pixels
of the padded feature map):

    q = softmax over the D channels of each pixel, times D^-0.5
    k = softmax over the P pixels of each channel
    v = v / P
    context = k · vᵀ             (D × D)
    out     = contextᵀ · q       (D × P)

Input: the 1×1 qkv projection, channels-last N×H×W×(3·heads·D), channel index
`which·heads·D + head·D + d` with which = 0, 1, 2 for q, k, v (the reference's reshape). Output:
N×H×W×(heads·D), channel `head·D + e`, ready for the output projection. fp32, fp16 or bf16
storage; softmax statistics and the D×D contexts are fp32; the two products run on tensor cores
in the storage dtype with fp32 accumulation (exactly in fp32 for fp32 storage).

The softmax of k runs over the whole image, so the work splits in two passes:

1. `_linear_attention_context_kernel`, grid (N·heads, S): each program streams one slice of the
   pixels once, keeping an online softmax (running max m and sum l per channel d, rescaling the
   accumulated Σ exp(k − m)·vᵀ whenever m grows), and writes its partial (m, l, acc).
2. `_linear_attention_combine_kernel`, grid (N·heads): merges the S partials into the normalised
   context, folding in both scales (D^-0.5 and 1/P) — D×D numbers per head.
3. `_linear_attention_output_kernel`, grid (N·heads, pixel blocks): softmax of q over its 32
   channels in registers and one (pixels × D)·(D × D) product.

DRAM traffic: q, k and v are each read exactly once and the output written once
(4·heads·D values per pixel); the partials are S·D·(D+2) fp32 per head, negligible. PyTorch's
version materialises the two softmaxes, the scaled q and v and the products (about 12 passes over
heads·D values per pixel) and stores k's softmax statistics at full size.
"""

from __future__ import annotations

from typing import Optional

import torch
import triton
import triton.language as tl

from .checks import check_shape, check_tensor, next_power_of_2

DIM_HEAD = 32
# Running-max start value: finite, so exp(m_old − m_new) never sees −inf − (−inf).
_NEG_BIG = tl.constexpr(-1.0e30)


@triton.jit
def _linear_attention_context_kernel(
    qkv_ptr,          # *T [N, P, 3·heads·D]
    part_m_ptr,       # *f32 [N·heads, S, D]    running max of k per channel
    part_l_ptr,       # *f32 [N·heads, S, D]    Σ exp(k − m)
    part_acc_ptr,     # *f32 [N·heads, S, D, D] Σ exp(k − m)·vᵀ
    P,                # pixels per image
    heads,            # attention heads
    pixels_per_split, # pixels each program streams (a multiple of BLOCK_P)
    D: tl.constexpr,
    BLOCK_P: tl.constexpr,
    EXACT_F32: tl.constexpr,   # fp32 storage: products in full fp32 rather than TF32
):
    nh = tl.program_id(0)
    split = tl.program_id(1)
    n = nh // heads
    head = nh % heads
    row_stride = 3 * heads * D
    d = tl.arange(0, D)
    k_cols = heads * D + head * D + d
    v_cols = 2 * heads * D + head * D + d
    p_begin = split * pixels_per_split
    p_end = tl.minimum(p_begin + pixels_per_split, P)

    m = tl.full((D,), _NEG_BIG, tl.float32)
    l = tl.zeros((D,), tl.float32)
    acc = tl.zeros((D, D), tl.float32)
    for p0 in range(p_begin, p_end, BLOCK_P):
        p = p0 + tl.arange(0, BLOCK_P)
        p_mask = (p < p_end)[:, None]
        rows = (n * P + p).to(tl.int64)[:, None] * row_stride
        k = tl.load(qkv_ptr + rows + k_cols[None, :], mask=p_mask, other=float("-inf")).to(tl.float32)
        v = tl.load(qkv_ptr + rows + v_cols[None, :], mask=p_mask, other=0.0)
        m_new = tl.maximum(m, tl.max(k, axis=0))
        alpha = tl.exp(m - m_new)
        e = tl.exp(k - m_new[None, :])          # [BLOCK_P, D], 0 at masked pixels
        l = l * alpha + tl.sum(e, axis=0)
        if EXACT_F32:
            prod = tl.dot(tl.trans(e), v.to(tl.float32), input_precision="ieee")
        else:
            prod = tl.dot(tl.trans(e.to(v.dtype)), v)
        acc = acc * alpha[:, None] + prod
        m = m_new

    part = nh * tl.num_programs(1) + split
    tl.store(part_m_ptr + part * D + d, m)
    tl.store(part_l_ptr + part * D + d, l)
    tl.store(part_acc_ptr + part * D * D + d[:, None] * D + d[None, :], acc)


@triton.jit
def _linear_attention_combine_kernel(
    part_m_ptr,       # *f32 [N·heads, S, D]
    part_l_ptr,       # *f32 [N·heads, S, D]
    part_acc_ptr,     # *f32 [N·heads, S, D, D]
    context_ptr,      # *f32 [N·heads, D, D] out: scale/P · softmax_P(k)·vᵀ
    S,                # splits
    out_scale,        # D^-0.5 / P
    D: tl.constexpr,
):
    nh = tl.program_id(0)
    d = tl.arange(0, D)
    m = tl.full((D,), _NEG_BIG, tl.float32)
    for s in range(0, S):
        m = tl.maximum(m, tl.load(part_m_ptr + (nh * S + s) * D + d))
    l = tl.zeros((D,), tl.float32)
    acc = tl.zeros((D, D), tl.float32)
    for s in range(0, S):
        part = nh * S + s
        f = tl.exp(tl.load(part_m_ptr + part * D + d) - m)
        l += tl.load(part_l_ptr + part * D + d) * f
        acc += tl.load(part_acc_ptr + part * D * D + d[:, None] * D + d[None, :]) * f[:, None]
    context = acc * (out_scale / l)[:, None]
    tl.store(context_ptr + nh * D * D + d[:, None] * D + d[None, :], context)


@triton.jit
def _linear_attention_output_kernel(
    qkv_ptr,          # *T [N, P, 3·heads·D]
    context_ptr,      # *f32 [N·heads, D, D]
    out_ptr,          # *T [N, P, heads·D]
    P,                # pixels per image
    heads,            # attention heads
    D: tl.constexpr,
    BLOCK_P: tl.constexpr,
    EXACT_F32: tl.constexpr,
):
    nh = tl.program_id(0)
    n = nh // heads
    head = nh % heads
    d = tl.arange(0, D)
    p = tl.program_id(1) * BLOCK_P + tl.arange(0, BLOCK_P)
    p_mask = (p < P)[:, None]
    pix = (n * P + p).to(tl.int64)[:, None]
    q = tl.load(qkv_ptr + pix * (3 * heads * D) + (head * D + d)[None, :], mask=p_mask, other=0.0)
    q = q.to(tl.float32)
    q = tl.exp(q - tl.max(q, axis=1)[:, None])
    q = q / tl.sum(q, axis=1)[:, None]
    context = tl.load(context_ptr + nh * D * D + d[:, None] * D + d[None, :])
    if EXACT_F32:
        y = tl.dot(q, context, input_precision="ieee")
    else:
        y = tl.dot(q.to(out_ptr.dtype.element_ty), context.to(out_ptr.dtype.element_ty))
    tl.store(out_ptr + pix * (heads * D) + (head * D + d)[None, :], y.to(out_ptr.dtype.element_ty),
             mask=p_mask)


def linear_attention(qkv: torch.Tensor, heads: int, dim_head: int = DIM_HEAD,
                     out: Optional[torch.Tensor] = None, splits: Optional[int] = None,
                     block_p: Optional[int] = None) -> torch.Tensor:
    """N×H×W×(3·heads·dim_head) qkv projection -> N×H×W×(heads·dim_head) attention output.

    `splits` (pixel slices per head in the first pass) and `block_p` (pixels per tile) default
    to sizes that fill a GPU; tests set them to exercise the multi-split merge.
    """
    check_tensor("qkv", qkv, ndim=4)
    n, h, w, c = qkv.shape
    if dim_head < 16 or dim_head & (dim_head - 1):
        raise ValueError(f"dim_head must be a power of two >= 16 (tensor-core tiles), got {dim_head}")
    if heads < 1 or c != 3 * heads * dim_head:
        raise ValueError(f"qkv has {c} channels, expected 3·heads·dim_head = 3·{heads}·{dim_head} "
                         f"= {3 * heads * dim_head}")
    out_shape = (n, h, w, heads * dim_head)
    if out is None:
        out = qkv.new_empty(out_shape)
    else:
        check_tensor("out", out, ndim=4, dtypes=(qkv.dtype,), device=qkv.device)
        check_shape("out", out, out_shape, "N×H×W×(heads·dim_head)")
    pixels = h * w
    if out.numel() == 0:
        return out

    on_gpu = qkv.is_cuda
    if block_p is None:
        # The CPU interpreter pays per program and per tile element: few tiles, no bigger than needed.
        block_p = 64 if on_gpu else min(512, max(16, next_power_of_2(pixels)))
    if block_p < 16 or block_p & (block_p - 1):
        raise ValueError(f"block_p must be a power of two >= 16, got {block_p}")
    blocks = triton.cdiv(pixels, block_p)
    if splits is None:
        # Enough programs in the first pass to fill the GPU (~4 per SM); few on the interpreter.
        target = 512 if on_gpu else 2
        splits = max(1, target // (n * heads))
    splits = max(1, min(int(splits), blocks))
    pixels_per_split = triton.cdiv(blocks, splits) * block_p
    splits = triton.cdiv(pixels, pixels_per_split)  # no empty slices

    nh = n * heads
    f32 = dict(dtype=torch.float32, device=qkv.device)
    part_m = torch.empty((nh, splits, dim_head), **f32)
    part_l = torch.empty((nh, splits, dim_head), **f32)
    part_acc = torch.empty((nh, splits, dim_head, dim_head), **f32)
    context = torch.empty((nh, dim_head, dim_head), **f32)
    exact = qkv.dtype == torch.float32
    _linear_attention_context_kernel[(nh, splits)](
        qkv, part_m, part_l, part_acc, pixels, heads, pixels_per_split,
        D=dim_head, BLOCK_P=block_p, EXACT_F32=exact, num_warps=4)
    _linear_attention_combine_kernel[(nh,)](
        part_m, part_l, part_acc, context, splits, dim_head ** -0.5 / pixels, D=dim_head, num_warps=4)
    _linear_attention_output_kernel[(nh, blocks)](
        qkv, context, out, pixels, heads, D=dim_head, BLOCK_P=block_p, EXACT_F32=exact, num_warps=4)
    return out


def linear_attention_reference(qkv: torch.Tensor, heads: int, dim_head: int = DIM_HEAD) -> torch.Tensor:
    """The network's LinearAttention between its two 1×1 convolutions, on N×H×W×C tensors
    (fp32 arithmetic, result in qkv's dtype), in the reference's order of operations."""
    n, h, w, _ = qkv.shape
    x = qkv.float().reshape(n, h * w, 3, heads, dim_head).permute(2, 0, 3, 4, 1)  # [3, n, heads, d, P]
    q, k, v = x.unbind(0)
    q = q.softmax(dim=-2) * dim_head ** -0.5
    k = k.softmax(dim=-1)
    v = v / (h * w)
    context = torch.matmul(k, v.transpose(-1, -2))
    y = torch.matmul(context.transpose(-1, -2), q)  # [n, heads, e, P]
    return y.permute(0, 3, 1, 2).reshape(n, h, w, heads * dim_head).to(qkv.dtype)
