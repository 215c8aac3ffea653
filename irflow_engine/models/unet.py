"""The reference IR-Flow velocity network, `ConditionalUNet`, in plain PyTorch.

Parameter names and shapes equal the reference implementation's, so its state dicts load
unchanged. This module is the numerical reference every fast backend is tested against: it
favours the reference's exact order of operations over speed.

Layout NCHW. The network predicts the cumulative velocity D(x_t, t) = x_t - x0.
"""

from __future__ import annotations

import math
from typing import Union

import torch
import torch.nn.functional as F
from torch import nn

from ..config import ModelConfig

TimeLike = Union[int, float, torch.Tensor]

ATTN_HEADS = 4
ATTN_DIM_HEAD = 32
# The channel LayerNorm's epsilon. The reference uses 1e-3 for low-precision inputs; we always
# compute the statistics in fp32 with 1e-5 (DESIGN.md §3).
LAYERNORM_EPS = 1e-5


def conv(c_in: int, c_out: int, kernel: int = 3, bias: bool = False) -> nn.Conv2d:
    """'Same'-padded convolution, bias-free by default (as the reference's default conv)."""
    return nn.Conv2d(c_in, c_out, kernel, padding=kernel // 2, bias=bias)


def sinusoidal_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """[B] times -> [B, dim] features: sin(t·f) then cos(t·f), f_i = 10000^(-i/(dim/2 - 1))."""
    half = dim // 2
    scale = math.log(10000) / (half - 1)
    freqs = torch.exp(torch.arange(half, device=t.device) * -scale)
    args = t.to(freqs.dtype)[:, None] * freqs[None, :]
    return torch.cat((args.sin(), args.cos()), dim=-1)


class SinusoidalEmbedding(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.dim = dim

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return sinusoidal_embedding(t, self.dim)


class ChannelLayerNorm(nn.Module):
    """LayerNorm over the channel axis of NCHW: gain `g`, no bias, biased variance.

    Statistics are computed in fp32 (eps 1e-5) whatever the input dtype; the result has the
    input's dtype.
    """

    def __init__(self, channels: int):
        super().__init__()
        self.g = nn.Parameter(torch.ones(1, channels, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xf = x.float()
        var = torch.var(xf, dim=1, unbiased=False, keepdim=True)
        mean = torch.mean(xf, dim=1, keepdim=True)
        y = (xf - mean) * (var + LAYERNORM_EPS).rsqrt() * self.g.float()
        return y.to(x.dtype)


class ConvBlock(nn.Module):
    """3×3 conv, optional FiLM `x·(scale+1)+shift`, SiLU."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.proj = conv(c_in, c_out)
        self.act = nn.SiLU()

    def forward(self, x, scale_shift=None):
        x = self.proj(x)
        if scale_shift is not None:
            scale, shift = scale_shift
            x = x * (scale + 1) + shift
        return self.act(x)


class ResBlock(nn.Module):
    """Two ConvBlocks (the first modulated by the time embedding) plus a residual path."""

    def __init__(self, c_in: int, c_out: int, time_dim: int):
        super().__init__()
        self.mlp = nn.Sequential(nn.SiLU(), nn.Linear(time_dim, 2 * c_out))
        self.block1 = ConvBlock(c_in, c_out)
        self.block2 = ConvBlock(c_out, c_out)
        self.res_conv = conv(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def film(self, emb: torch.Tensor):
        """Time embedding [B, 4nf] -> (scale, shift), each [B, C, 1, 1]."""
        ss = self.mlp(emb)[:, :, None, None]
        return ss.chunk(2, dim=1)

    def forward(self, x, emb):
        h = self.block1(x, scale_shift=self.film(emb))
        h = self.block2(h)
        return h + self.res_conv(x)


def softmax_over_channels(q: torch.Tensor) -> torch.Tensor:
    """softmax(q, dim=-2). In an exported ONNX graph it is written out as max, exp, sum and divide:
    ONNX Runtime's CPU Softmax moves a non-last axis last and back (two transposes of the
    full-resolution q), which made it ~17 % of an evaluation (docs/PERF.md)."""
    if torch.onnx.is_in_onnx_export():
        e = (q - q.amax(dim=-2, keepdim=True)).exp()
        return e / e.sum(dim=-2, keepdim=True)
    return q.softmax(dim=-2)


class LinearAttention(nn.Module):
    """Linear attention: q softmax over channels, k softmax over pixels, 4 heads × 32."""

    def __init__(self, dim: int, heads: int = ATTN_HEADS, dim_head: int = ATTN_DIM_HEAD):
        super().__init__()
        self.heads = heads
        self.dim_head = dim_head
        self.scale = dim_head ** -0.5
        hidden = heads * dim_head
        self.to_qkv = nn.Conv2d(dim, 3 * hidden, 1, bias=False)
        self.to_out = nn.Sequential(nn.Conv2d(hidden, dim, 1), ChannelLayerNorm(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.onnx.is_in_onnx_export():
            return self._factored(x)
        return self._reference_order(x)

    def _reference_order(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        n = h * w
        # The softmaxes and the sums over pixels run in fp32 whatever the weights' dtype: an fp16
        # network (an exported fp16 graph) keeps them as an fp32 island; under autocast the
        # matmuls still run in low precision. A no-op in fp32.
        # Without autograd, q, k and v are projected one at a time (each a third of `to_qkv`'s
        # output channels: the same dot products), k and v first, so that at most two are alive at
        # once: at full resolution they are 128 channels each against the network's 16–64, and
        # holding all three plus their softmaxes was most of the ~5 KiB per pixel a frame took on
        # the CPU (docs/PERF.md).
        project = self._projector(x)
        k = project(1).softmax(dim=-1)      # [b, heads, dim_head, pixels]
        v = project(2) / n
        context = torch.matmul(k, v.transpose(-1, -2))  # [b, heads, d, e]
        del k, v
        q = softmax_over_channels(project(0)) * self.scale
        out = torch.matmul(context.transpose(-1, -2), q)  # [b, heads, e, pixels]
        del q
        out = out.to(x.dtype).reshape(b, self.heads * self.dim_head, h, w)
        projection, norm = self.to_out
        return norm(F.conv2d(out, projection.weight, projection.bias))

    def _factored(self, x: torch.Tensor) -> torch.Tensor:
        """The same attention with v and the output projection folded into pixel-free matrices
        (what an exported graph computes; see `forward`'s export branch).

        k·vᵀ/n = (softmax(k)·xᵀ)·W_vᵀ/n: the sum over pixels runs on x's C channels instead of
        v's heads·dim_head, and v is never made. The attention's output goes only through the
        1×1 `to_out`, so W_o·(contextᵀ·q) = (W_o·contextᵀ)·q: one C×(heads·dim_head) matrix
        per image applied to q, and the heads·dim_head-channel output is never made either.
        Per pixel, those steps take 2·hd·C multiply-adds instead of 2·hd·(C + d) (hd =
        heads·dim_head, d = dim_head), and two hd-channel maps (v, the output) are never written:
        on the CPU, 6–12 % of a whole evaluation of irflow-denoise-s in ONNX Runtime (docs/PERF.md).
        Equal to `_reference_order` up to rounding (tests/test_model.py).
        """
        b, c, h, w = x.shape
        n = h * w
        heads, d = self.heads, self.dim_head
        hidden = heads * d
        # The q and k projections in x's dtype (as in `_reference_order`), as MatMuls over the
        # flattened pixels (ONNX Runtime's CPU provider wraps a 1×1 Conv next to a reshape in layout
        # reorders, docs/PERF.md); everything after them, and the sum over pixels, in fp32 (an fp16
        # graph's fp32 island).
        x = x.reshape(b, c, n)
        w_q, w_k, w_v = self.to_qkv.weight.reshape(3, hidden, c).unbind(0)
        k = torch.matmul(w_k, x).float().reshape(b, heads, d, n).softmax(dim=-1)
        kx = torch.matmul(k, x.float().transpose(1, 2).unsqueeze(1))                       # [b, heads, d, C]
        context = torch.matmul(kx, w_v.float().reshape(heads, d, c).transpose(1, 2)) / n   # [b, heads, d, e]
        q = softmax_over_channels(torch.matmul(w_q, x).float().reshape(b, heads, d, n))
        projection, norm = self.to_out
        w_o = projection.weight.float().reshape(c, heads, d).transpose(0, 1) * self.scale  # [heads, C, e]
        mix = torch.matmul(w_o, context.transpose(-1, -2))                          # [b, heads, C, d]
        mix = mix.transpose(1, 2).reshape(b, c, hidden)
        y = torch.matmul(mix, q.reshape(b, hidden, n)) + projection.bias.float().reshape(1, c, 1)
        return norm(y.to(x.dtype).reshape(b, c, h, w))

    def _projector(self, x: torch.Tensor):
        """i -> q (0), k (1) or v (2) of `x`, [b, heads, dim_head, pixels] in fp32.

        With autograd (training) one convolution computes all three: backward keeps those
        activations anyway, and every extra operator call costs host time in a training step that
        already makes ~21,000 of them. On a GPU, too: one convolution is the faster kernel, and
        the eager/compile baselines the fused backend is timed against stay as measured. Inference
        on the CPU projects one third at a time, so at most two of q, k, v are alive at once
        (peak memory, docs/PERF.md "CPU memory per pixel").
        """
        b, _, h, w = x.shape
        shape = (b, self.heads, self.dim_head, h * w)
        if torch.is_grad_enabled() or x.device.type != "cpu":
            qkv = self.to_qkv(x).float().reshape(b, 3, *shape[1:]).unbind(1)
            return qkv.__getitem__
        hidden = self.heads * self.dim_head
        weight = self.to_qkv.weight
        return lambda i: F.conv2d(x, weight[i * hidden:(i + 1) * hidden]).float().reshape(shape)


class PreNorm(nn.Module):
    def __init__(self, dim: int, fn: nn.Module):
        super().__init__()
        self.fn = fn
        self.norm = ChannelLayerNorm(dim)

    def forward(self, x):
        return self.fn(self.norm(x))


class Residual(nn.Module):
    def __init__(self, fn: nn.Module):
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x) + x


def attention_block(dim: int) -> Residual:
    """x + LinearAttention(LayerNorm(x)), named as the reference (`fn.fn`, `fn.norm`)."""
    return Residual(PreNorm(dim, LinearAttention(dim)))


def upsample(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), conv(c_in, c_out, 3, bias=True))


def reflect_pad(x: torch.Tensor, pad_h: int, pad_w: int) -> torch.Tensor:
    """Reflect-pad the bottom/right of NCHW `x`.

    Equals `F.pad(x, (0, pad_w, 0, pad_h), "reflect")` wherever that is defined (pad < size);
    for smaller inputs it keeps reflecting (period 2·(n−1)), and a size-1 axis repeats its pixel.
    """
    if pad_h == 0 and pad_w == 0:
        return x
    h, w = x.shape[-2:]
    if pad_h < h and pad_w < w:
        return F.pad(x, (0, pad_w, 0, pad_h), mode="reflect")
    return x.index_select(-2, _reflect_index(h, pad_h, x.device)).index_select(
        -1, _reflect_index(w, pad_w, x.device))


def _reflect_index(n: int, pad: int, device) -> torch.Tensor:
    idx = torch.arange(n + pad, device=device)
    if n == 1:
        return torch.zeros_like(idx)
    period = 2 * (n - 1)
    m = idx % period
    return torch.where(m < n, m, period - m)


class ConditionalUNet(nn.Module):
    """The IR-Flow velocity network D(x_t, t), checkpoint-compatible with the reference."""

    def __init__(self, in_nc: int = 3, out_nc: int = 3, nf: int = 64, depth: int = 4):
        super().__init__()
        self.config = ModelConfig(nf=nf, depth=depth, in_nc=in_nc, out_nc=out_nc)
        self.depth = depth
        time_dim = 4 * nf
        self.init_conv = conv(in_nc, nf, 7)
        self.time_mlp = nn.Sequential(
            SinusoidalEmbedding(nf), nn.Linear(nf, time_dim), nn.GELU(), nn.Linear(time_dim, time_dim))

        self.downs = nn.ModuleList()
        self.ups = nn.ModuleList()
        for i in range(depth):
            c_in, c_out = nf * 2 ** i, nf * 2 ** (i + 1)
            last = i == depth - 1
            self.downs.append(nn.ModuleList([
                ResBlock(c_in, c_in, time_dim),
                ResBlock(c_in, c_in, time_dim),
                attention_block(c_in),
                conv(c_in, c_out) if last else nn.Conv2d(c_in, c_out, 4, 2, 1),
            ]))
            # The up path mirrors the down path, deepest level first.
            self.ups.insert(0, nn.ModuleList([
                ResBlock(c_out + c_in, c_out, time_dim),
                ResBlock(c_out + c_in, c_out, time_dim),
                attention_block(c_out),
                conv(c_out, c_in) if i == 0 else upsample(c_out, c_in),
            ]))

        mid = nf * 2 ** depth
        self.mid_block1 = ResBlock(mid, mid, time_dim)
        self.mid_attn = attention_block(mid)
        self.mid_block2 = ResBlock(mid, mid, time_dim)
        self.final_res_block = ResBlock(2 * nf, nf, time_dim)
        self.final_conv = nn.Conv2d(nf, out_nc, 3, 1, 1)

    @classmethod
    def from_config(cls, config: ModelConfig) -> "ConditionalUNet":
        return cls(in_nc=config.in_nc, out_nc=config.out_nc, nf=config.nf, depth=config.depth)

    def time_embedding(self, t: TimeLike, device=None) -> torch.Tensor:
        """Integer time(s) -> the time MLP's output [B, 4nf] (B = 1 for a scalar t)."""
        if device is None:
            device = self.init_conv.weight.device
        if not isinstance(t, torch.Tensor):
            t = torch.tensor([t])
        t = t.to(device).reshape(-1)
        return self.time_mlp(t)

    def forward(self, x: torch.Tensor, t: TimeLike) -> torch.Tensor:
        return self.forward_emb(x, self.time_embedding(t, x.device))

    def pad_input(self, x: torch.Tensor) -> torch.Tensor:
        """Reflect-pad H, W (bottom/right) to a multiple of 2**depth; the export overrides it."""
        H, W = x.shape[-2:]
        s = self.config.pad_multiple
        return reflect_pad(x, (s - H % s) % s, (s - W % s) % s)

    def forward_emb(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        """Forward with a precomputed time embedding (see `time_embedding`)."""
        H, W = x.shape[-2:]
        x = self.pad_input(x)

        x = unet_walk(self, x, emb)
        return self.final_conv(x)[..., :H, :W]


def _cat(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.cat([a, b], dim=1)


def unet_walk(net, x: torch.Tensor, cond, cat=_cat) -> torch.Tensor:
    """The U-Net topology, shared by the eager network and the fused backend.

    `net` has the ConditionalUNet's parts (`init_conv`, `downs`, `mid_block1`, `mid_attn`,
    `mid_block2`, `ups`, `final_res_block`); ResBlocks are called as `block(x, cond)` (a time
    embedding here, an evaluation index in the fused backend), the others as `op(x)`; `cat`
    joins the skip connections along channels. Returns the last ResBlock's output on the padded
    map (the velocity head is the caller's).
    """
    x = net.init_conv(x)
    first = x
    skips = []
    for block1, block2, attn, down in net.downs:
        x = block1(x, cond)
        skips.append(x)
        x = attn(block2(x, cond))
        skips.append(x)
        x = down(x)

    x = net.mid_block2(net.mid_attn(net.mid_block1(x, cond)), cond)

    for block1, block2, attn, up in net.ups:
        x = block1(cat(x, skips.pop()), cond)
        x = block2(cat(x, skips.pop()), cond)
        x = up(attn(x))

    return net.final_res_block(cat(x, first), cond)
