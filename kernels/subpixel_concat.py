"""The decoder's upsampling convolution, finished: sub-pixel phases interleaved, bias, skip concatenated.

The network's Upsample is a nearest 2× upsampling followed by a 3×3 convolution (padding 1). On
the upsampled map every output pixel (2i + a, 2j + b) sees only a 2×2 window of the low-resolution
input, so the pair equals one 2×2 convolution (padding 1) of the low-resolution map with 4·C
output channels, one group of C per phase p = 2a + b, whose weights are sums of the 3×3 taps
(`fold_upsample_conv`, done once at build time). Phase (a, b) of low-resolution pixel (i, j) is
that convolution's output at (i + a, j + b). This op reads those phases and writes, into the next
decoder stage's input,

    out[n, 2i + a, 2j + b, :C] = phases[n, i + a, j + b, (2a + b)·C : (2a + b + 1)·C] + bias
    out[n, 2i + a, 2j + b, C:] = skip[n, 2i + a, 2j + b, :]

`phases` is the N×(H+1)×(W+1)×4C view of a channels-last map, `skip` N×2H×2W×Cs, `out`
N×2H×2W×(C+Cs), one storage dtype (fp32, fp16 or bf16); `bias` fp32 [C] or None, added in fp32
and rounded once.

What it saves against upsample → 3×3 conv → bias add → concatenation (each a pass over memory):
the 2×2 convolution does 16·Cin·C multiply-adds per low-resolution pixel where the 3×3 one did
36 (2.25× fewer), the 4×-sized upsampled map is never written or read, and the bias add and the
pixel interleave ride on the concatenation's copy, which had to happen anyway. A program copies
BLOCK_P whole output rows (pixels) as one masked (BLOCK_P × BLOCK_C) tile, as `concat_channels`.
"""

from __future__ import annotations

from typing import Optional

import torch
import triton
import triton.language as tl

from .checks import check_shape, check_tensor, next_power_of_2, row_block

MAX_CHANNELS = 8192

# For output phase a ∈ {0, 1} along one axis, the 3×3 taps (0, 1, 2) that land on each of the two
# low-resolution rows the 2×2 kernel covers: phase 0 reads rows (i−1, i), phase 1 rows (i, i+1).
_TAPS = (((0,), (1, 2)), ((0, 1), (2,)))


def fold_upsample_conv(weight: torch.Tensor) -> torch.Tensor:
    """[C, Cin, 3, 3] weights of the 3×3 conv after a nearest 2× upsampling → [4·C, Cin, 2, 2] (fp32)
    weights of the equivalent 2×2 conv (padding 1) on the low-resolution map, phases 2a + b in order."""
    if weight.dim() != 4 or tuple(weight.shape[2:]) != (3, 3):
        raise ValueError(f"expected a [C, Cin, 3, 3] convolution weight, got shape {tuple(weight.shape)}")
    w = weight.detach().float()
    phases = []
    for a in (0, 1):
        for b in (0, 1):
            k = w.new_zeros(w.shape[0], w.shape[1], 2, 2)
            for s, rows in enumerate(_TAPS[a]):
                for t, cols in enumerate(_TAPS[b]):
                    k[:, :, s, t] = w[:, :, list(rows)][:, :, :, list(cols)].sum(dim=(2, 3))
            phases.append(k)
    return torch.cat(phases)


@triton.jit
def _subpixel_concat_kernel(
    ph_ptr,           # *T [N, H+1, W+1, 4C]
    bias_ptr,         # *fp32 [C] (unused unless HAS_BIAS)
    skip_ptr,         # *T [N·2H·2W, CS]
    out_ptr,          # *T [N·2H·2W, C + CS]
    P,                # output pixels N·2H·2W
    H, W, C, CS,
    HAS_BIAS: tl.constexpr,
    BLOCK_P: tl.constexpr,
    BLOCK_C: tl.constexpr,
):
    p = tl.program_id(0) * BLOCK_P + tl.arange(0, BLOCK_P)
    c = tl.arange(0, BLOCK_C)
    ox = p % (2 * W)
    rest = p // (2 * W)
    oy = rest % (2 * H)
    n = rest // (2 * H)
    # Output (2i + a, 2j + b) reads phase 2a + b at phase-map pixel (i + a, j + b) = ((oy+1)//2, (ox+1)//2).
    phase = (oy % 2) * 2 + ox % 2
    src = ((n * (H + 1) + (oy + 1) // 2) * (W + 1) + (ox + 1) // 2).to(tl.int64) * (4 * C) + phase * C
    rows = (p < P)[:, None]
    from_ph = (c < C)[None, :]
    from_skip = ((c >= C) & (c < C + CS))[None, :]
    v = tl.load(ph_ptr + src[:, None] + c[None, :], mask=rows & from_ph, other=0.0).to(tl.float32)
    if HAS_BIAS:
        v += tl.load(bias_ptr + c, mask=c < C, other=0.0)[None, :]
    p64 = p.to(tl.int64)[:, None]
    vs = tl.load(skip_ptr + p64 * CS + (c - C)[None, :], mask=rows & from_skip, other=0.0)
    v = tl.where(from_ph, v.to(vs.dtype), vs)
    tl.store(out_ptr + p64 * (C + CS) + c[None, :], v, mask=rows & (from_ph | from_skip))


def subpixel_concat(phases: torch.Tensor, skip: torch.Tensor, bias: Optional[torch.Tensor] = None,
                    out: Optional[torch.Tensor] = None) -> torch.Tensor:
    """[interleaved `phases` (+ `bias`), `skip`] along C: N×(H+1)×(W+1)×4C and N×2H×2W×Cs →
    N×2H×2W×(C+Cs) (into `out` if given)."""
    check_tensor("phases", phases, ndim=4)
    n, h1, w1, c4 = phases.shape
    if c4 % 4 or h1 < 2 or w1 < 2:
        raise ValueError(f"phases must be N×(H+1)×(W+1)×4C with H, W ≥ 1, got shape {tuple(phases.shape)}")
    h, w, c = h1 - 1, w1 - 1, c4 // 4
    check_tensor("skip", skip, ndim=4, dtypes=(phases.dtype,), device=phases.device)
    check_shape("skip", skip, (n, 2 * h, 2 * w, skip.shape[3]), "twice the phases' low-resolution H×W")
    cs = skip.shape[3]
    if bias is not None:
        check_tensor("bias", bias, ndim=1, dtypes=(torch.float32,), device=phases.device)
        check_shape("bias", bias, (c,), "one per output channel of a phase")
    if c + cs > MAX_CHANNELS:
        raise ValueError(f"subpixel_concat handles at most {MAX_CHANNELS} output channels, got {c + cs}")
    shape = (n, 2 * h, 2 * w, c + cs)
    if out is None:
        out = torch.empty(shape, dtype=phases.dtype, device=phases.device)
    else:
        check_tensor("out", out, ndim=4, dtypes=(phases.dtype,), device=phases.device)
        check_shape("out", out, shape, "the phases' channels + skip's, at twice the low resolution")
    p = n * 4 * h * w
    if p == 0:
        return out
    block_c = next_power_of_2(c + cs)
    block_p = row_block(p, block_c, phases.is_cuda)
    _subpixel_concat_kernel[(triton.cdiv(p, block_p),)](
        phases, phases if bias is None else bias, skip, out, p, h, w, c, cs, HAS_BIAS=bias is not None,
        BLOCK_P=block_p, BLOCK_C=block_c, num_warps=4 if block_p * block_c <= 4096 else 8)
    return out


def subpixel_concat_reference(phases: torch.Tensor, skip: torch.Tensor,
                              bias: Optional[torch.Tensor] = None) -> torch.Tensor:
    """The same in PyTorch: slice each phase, interleave with a reshape, add bias in fp32, `torch.cat`."""
    n, h1, w1, c4 = phases.shape
    h, w, c = h1 - 1, w1 - 1, c4 // 4
    grid = torch.empty(n, h, 2, w, 2, c, dtype=torch.float32, device=phases.device)
    for a in (0, 1):
        for b in (0, 1):
            p = 2 * a + b
            grid[:, :, a, :, b] = phases[:, a:a + h, b:b + w, p * c:(p + 1) * c].float()
    up = grid.reshape(n, 2 * h, 2 * w, c)
    if bias is not None:
        up = up + bias.float()
    return torch.cat([up.to(phases.dtype), skip], dim=-1)
