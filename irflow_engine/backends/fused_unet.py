"""The ConditionalUNet rebuilt for the fast path, and the sampler loop that drives it.

Built once per (model, schedule, precision, device) by the "triton" backend:

- **Folding.** Every evaluation time of the schedule is a constant, so each ResBlock's FiLM
  (scale, shift) for each evaluation is computed once here, in fp32, from the reference time MLP
  (`FiLMTable`); the time MLP never runs in the loop. The step weights are Python constants
  passed to the update kernel.
- **Layout and precision.** Activations are channels-last N×C×H×W tensors (N×H×W×C in memory)
  in the storage dtype (fp32, fp16 or bf16); weights are cast and laid out once. The sampler
  state x stays fp32 NCHW in every precision, as in the eager backend.
- **Kernels.** Convolutions run on cuDNN (PyTorch) by default; the glue between them is the
  Triton ops of `irflow_engine.kernels`: FiLM+SiLU after each ResBlock's first conv,
  SiLU+residual after its second, channel LayerNorm (the output norm fused with the attention
  block's residual add), the linear-attention core, and the velocity head fused with the
  Euler/Heun update; PyTorch's own glue between the convolutions is replaced too: the skip
  concatenations (`concat_channels`) and the attention output projection's bias add (folded into
  the output norm's kernel).
  With `conv="triton"` every 3×3 stride-1 convolution runs on the Triton
  implicit-GEMM kernel instead, with the ResBlock epilogues (FiLM+SiLU, SiLU+residual) fused
  into it; the other convolutions (7×7 stem, 4×4 stride-2 downsamples, 1×1) stay on cuDNN.
  It is off by default: on an H200 its pointer-gather kernel was 1.7× slower than cuDNN
  (docs/PERF.md); on Hopper `conv3x3` now picks a TMA kernel, not measured yet.
- **The decoder's upsampling, folded.** Nearest 2× upsampling followed by a 3×3 conv equals a 2×2
  conv of the low-resolution map with four output phases (`subpixel_concat.fold_upsample_conv`,
  2.25× fewer multiply-adds, no 4×-sized upsampled map); the next skip concatenation interleaves
  the phases and adds the bias as it copies (`subpixel_concat`). `upsample="nearest"` keeps the
  literal upsample (`upsample_nearest2x`) → 3×3 conv → concatenation instead (not measured
  against each other on a GPU yet; `benchmarks/conv_bench.py` times both).

`FusedSampler.run(y, out)` performs the whole K-step loop with no host synchronisation and no
allocation outside PyTorch's allocator, which is what makes it capturable as one CUDA graph.
"""

from __future__ import annotations

from typing import Sequence, Tuple

import torch
import torch.nn.functional as F

from ..flow import EulerStep, HeunStep, PairStep, Schedule
from ..kernels.channel_layernorm import channel_layernorm
from ..kernels.concat_channels import concat_channels
from ..kernels.conv3x3 import conv3x3, pack_conv3x3_weight
from ..kernels.film_silu import film_silu
from ..kernels.linear_attention import linear_attention
from ..kernels.silu_residual import silu_residual
from ..kernels.subpixel_concat import fold_upsample_conv, subpixel_concat
from ..kernels.upsample_nearest import upsample_nearest2x
from ..kernels.velocity_euler import pack_velocity_weight, velocity_euler
from ..models.unet import ConditionalUNet, ResBlock, reflect_pad, unet_walk

CHANNELS_LAST = torch.channels_last


def _nhwc(t: torch.Tensor) -> torch.Tensor:
    """The N×H×W×C view of a channels-last N×C×H×W tensor (contiguous, no copy)."""
    return t.permute(0, 2, 3, 1)


def _channels_last(t: torch.Tensor) -> torch.Tensor:
    return t.contiguous(memory_format=CHANNELS_LAST)


class SubpixelPhases:
    """An upsampling conv's output not yet interleaved: N×4C×(H+1)×(W+1) channels-last phases of
    the 2×2 folded conv, and the fp32 bias still to add (see `subpixel_concat`)."""

    def __init__(self, phases: torch.Tensor, bias: torch.Tensor):
        self.phases, self.bias = phases, bias


def _cat_channels_last(a, b: torch.Tensor) -> torch.Tensor:
    """torch.cat([a, b], dim=1) of channels-last maps, on the Triton copy kernels; `a` may be
    `SubpixelPhases`, interleaved (and its bias added) on the way."""
    n, cb, h, w = b.shape
    b = _nhwc(_channels_last(b))
    if isinstance(a, SubpixelPhases):
        ca = a.phases.shape[1] // 4
        out = torch.empty((n, ca + cb, h, w), dtype=b.dtype, device=b.device, memory_format=CHANNELS_LAST)
        subpixel_concat(_nhwc(a.phases), b, a.bias, out=_nhwc(out))
        return out
    out = torch.empty((n, a.shape[1] + cb, h, w), dtype=a.dtype, device=a.device, memory_format=CHANNELS_LAST)
    concat_channels(_nhwc(_channels_last(a)), b, out=_nhwc(out))
    return out


class _Conv:
    """A Conv2d's parameters cast to the storage dtype and laid out channels-last."""

    def __init__(self, conv: torch.nn.Conv2d, dtype: torch.dtype):
        self.weight = _channels_last(conv.weight.detach().to(dtype))
        self.bias = None if conv.bias is None else conv.bias.detach().to(dtype)
        self.stride, self.padding = conv.stride, conv.padding

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return _channels_last(F.conv2d(x, self.weight, self.bias, self.stride, self.padding))


class _TritonConv3x3:
    """A 3×3, stride-1, padding-1 Conv2d on the Triton kernel; `epilogue` as in `conv3x3`."""

    def __init__(self, conv: torch.nn.Conv2d, dtype: torch.dtype):
        self.weight = pack_conv3x3_weight(conv.weight, dtype)
        self.bias = None if conv.bias is None else conv.bias.detach().float().contiguous()
        self.c_out = conv.out_channels

    def __call__(self, x: torch.Tensor, **epilogue) -> torch.Tensor:
        n, _, h, w = x.shape
        y = torch.empty((n, self.c_out, h, w), dtype=x.dtype, device=x.device, memory_format=CHANNELS_LAST)
        if "residual" in epilogue:
            epilogue["residual"] = _nhwc(epilogue["residual"])
        conv3x3(_nhwc(x), self.weight, self.bias, out=_nhwc(y), **epilogue)
        return y


CONV_IMPLS = ("cudnn", "triton")


def _is_conv3x3(conv: torch.nn.Conv2d) -> bool:
    return (tuple(conv.kernel_size) == (3, 3) and tuple(conv.stride) == (1, 1) and tuple(conv.padding) == (1, 1)
            and tuple(conv.dilation) == (1, 1) and conv.groups == 1)


def make_conv(conv: torch.nn.Conv2d, dtype: torch.dtype, impl: str):
    """The Triton kernel for 3×3 stride-1 convs when `impl == "triton"`, else cuDNN."""
    if impl == "triton" and _is_conv3x3(conv):
        return _TritonConv3x3(conv, dtype)
    return _Conv(conv, dtype)


class FiLMTable:
    """A ResBlock's folded FiLM parameters: fp32 [evaluations, 2, C] (scale row, shift row)."""

    def __init__(self, block: ResBlock, embeddings: Sequence[torch.Tensor]):
        # One time at a time, with the [1, 4nf] shape the eager model uses, so fp32 matches it.
        rows = [block.mlp(emb)[0] for emb in embeddings]
        c = rows[0].numel() // 2
        self.table = torch.stack(rows).reshape(len(rows), 2, c).float().contiguous()

    def scale_shift(self, evaluation: int) -> Tuple[torch.Tensor, torch.Tensor]:
        return self.table[evaluation, 0], self.table[evaluation, 1]


class _FusedResBlock:
    def __init__(self, block: ResBlock, embeddings, dtype, conv_impl: str = "cudnn"):
        self.conv1 = make_conv(block.block1.proj, dtype, conv_impl)
        self.conv2 = make_conv(block.block2.proj, dtype, conv_impl)
        self.res_conv = None if isinstance(block.res_conv, torch.nn.Identity) else _Conv(block.res_conv, dtype)
        self.film = FiLMTable(block, embeddings)

    def __call__(self, x: torch.Tensor, evaluation: int) -> torch.Tensor:
        scale, shift = self.film.scale_shift(evaluation)
        # The residual is made just before its use, so it is not held across the convolutions.
        if isinstance(self.conv1, _TritonConv3x3):  # the epilogues run inside the convolutions
            h = self.conv1(x, epilogue="film_silu", scale=scale, shift=shift)
            return self.conv2(h, epilogue="silu_residual", residual=self._residual(x))
        h = self.conv1(x)
        film_silu(_nhwc(h), scale, shift, out=_nhwc(h))
        h = self.conv2(h)
        silu_residual(_nhwc(h), _nhwc(self._residual(x)), out=_nhwc(h))
        return h

    def _residual(self, x: torch.Tensor) -> torch.Tensor:
        return x if self.res_conv is None else self.res_conv(x)


class _FusedAttention:
    """x + LayerNorm(to_out(LinearAttention(LayerNorm(x)))), the network's attention block."""

    def __init__(self, block, dtype):
        prenorm = block.fn
        attn = prenorm.fn
        self.heads, self.dim_head = attn.heads, attn.dim_head
        self.norm_g = prenorm.norm.g.detach().reshape(-1).float().contiguous()
        self.to_qkv = _Conv(attn.to_qkv, dtype)
        self.to_out = _Conv(attn.to_out[0], dtype)
        # The projection's bias is added inside the output norm's kernel (no separate pass).
        self.to_out.bias = None
        self.to_out_bias = attn.to_out[0].bias.detach().float().contiguous()
        self.out_norm_g = attn.to_out[1].g.detach().reshape(-1).float().contiguous()

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        normed = torch.empty_like(x, memory_format=CHANNELS_LAST)
        channel_layernorm(_nhwc(x), self.norm_g, out=_nhwc(normed))
        qkv = self.to_qkv(normed)
        n, _, h, w = x.shape
        att = torch.empty((n, self.heads * self.dim_head, h, w), dtype=x.dtype, device=x.device,
                          memory_format=CHANNELS_LAST)
        linear_attention(_nhwc(qkv), self.heads, self.dim_head, out=_nhwc(att))
        y = self.to_out(att)
        channel_layernorm(_nhwc(y), self.out_norm_g, residual=_nhwc(x), out=_nhwc(y), bias=self.to_out_bias)
        return y


UPSAMPLE_IMPLS = ("subpixel", "nearest")


class _Upsample:
    """Nearest 2× upsampling + 3×3 conv: "subpixel" returns the folded 2×2 conv's `SubpixelPhases`
    (the next concatenation interleaves them); "nearest" upsamples, then convolves."""

    def __init__(self, seq, dtype, conv_impl: str = "cudnn", impl: str = "subpixel"):
        conv = seq[1]
        self.impl = impl
        if impl == "subpixel":
            self.weight = _channels_last(fold_upsample_conv(conv.weight).to(dtype))
            self.bias = conv.bias.detach().float().contiguous()
        else:
            self.conv = make_conv(conv, dtype, conv_impl)

    def __call__(self, x):
        if self.impl == "subpixel":
            return SubpixelPhases(_channels_last(F.conv2d(x, self.weight, None, 1, 1)), self.bias)
        n, c, h, w = x.shape
        up = torch.empty((n, c, 2 * h, 2 * w), dtype=x.dtype, device=x.device, memory_format=CHANNELS_LAST)
        upsample_nearest2x(_nhwc(x), out=_nhwc(up))
        return self.conv(up)


class FusedUNet:
    """D(x, t_e) for the schedule's e-th evaluation, up to (not including) the velocity head.

    `features(x, e)` takes the fp32 N×3×H×W state and returns the last ResBlock's channels-last
    features on the padded map; the velocity head runs inside the update kernel.
    """

    def __init__(self, model: ConditionalUNet, times: Sequence[int], dtype: torch.dtype,
                 device: torch.device, conv_impl: str = "cudnn", upsample: str = "subpixel"):
        if conv_impl not in CONV_IMPLS:
            raise ValueError(f"unknown convolution implementation {conv_impl!r}; choose one of {CONV_IMPLS}")
        if upsample not in UPSAMPLE_IMPLS:
            raise ValueError(f"unknown upsampling implementation {upsample!r}; choose one of {UPSAMPLE_IMPLS}")
        model = model.to(device).eval().requires_grad_(False)
        self.dtype = dtype
        self.pad_multiple = model.config.pad_multiple
        self.out_nc = model.config.out_nc
        with torch.no_grad():
            embeddings = [model.time_embedding(t, device).float() for t in times]

            def res(block):
                return _FusedResBlock(block, embeddings, dtype, conv_impl)

            self.init_conv = _Conv(model.init_conv, dtype)
            self.downs = []
            for block1, block2, attn, down in model.downs:
                self.downs.append((res(block1), res(block2), _FusedAttention(attn, dtype),
                                   make_conv(down, dtype, conv_impl)))
            self.mid_block1 = res(model.mid_block1)
            self.mid_attn = _FusedAttention(model.mid_attn, dtype)
            self.mid_block2 = res(model.mid_block2)
            self.ups = []
            for block1, block2, attn, up in model.ups:
                up_op = (make_conv(up, dtype, conv_impl) if isinstance(up, torch.nn.Conv2d)
                         else _Upsample(up, dtype, conv_impl, upsample))
                self.ups.append((res(block1), res(block2), _FusedAttention(attn, dtype), up_op))
            self.final_res_block = res(model.final_res_block)
            self.head_weight = pack_velocity_weight(model.final_conv.weight, dtype)
            self.head_bias = model.final_conv.bias.detach().float().contiguous()

    def features(self, x: torch.Tensor, evaluation: int) -> torch.Tensor:
        h, w = x.shape[-2:]
        s = self.pad_multiple
        x = reflect_pad(x, (s - h % s) % s, (s - w % s) % s)
        return unet_walk(self, x.to(self.dtype, memory_format=CHANNELS_LAST), evaluation, cat=_cat_channels_last)

    def step(self, x: torch.Tensor, evaluation: int, base: torch.Tensor, w: float, *, out=None,
             prev=None, d_out=None) -> None:
        """Evaluate D(x, t_e) and write `out = base − w·(D [+ prev])` and/or `d_out = D`."""
        velocity_euler(_nhwc(self.features(x, evaluation)), self.head_weight, self.head_bias, base, w,
                       out=out, prev=prev, d_out=d_out)


class FusedSampler:
    """The schedule's K-step loop on a `FusedUNet`; evaluation e uses the e-th folded time."""

    def __init__(self, model: ConditionalUNet, schedule: Schedule, dtype: torch.dtype, device: torch.device,
                 conv_impl: str = "cudnn", upsample: str = "subpixel"):
        self.schedule = schedule
        self.net = FusedUNet(model, schedule.times, dtype, device, conv_impl, upsample)

    def run(self, y: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """x̂0 from fp32 contiguous N×3×H×W `y`, written into `out` (same shape, fp32); `y` is kept."""
        x, e = y, 0
        plan = self.schedule.plan
        for i, step in enumerate(plan):
            dst = out if i == len(plan) - 1 else torch.empty_like(y)
            if isinstance(step, EulerStep):
                self.net.step(x, e, x, step.w, out=dst)
                e += 1
            elif isinstance(step, HeunStep):
                d, x_hat = torch.empty_like(y), torch.empty_like(y)
                self.net.step(x, e, x, step.w, out=x_hat, d_out=d)
                self.net.step(x_hat, e + 1, x, step.w / 2, out=dst, prev=d)
                e += 2
            elif isinstance(step, PairStep):
                d = torch.empty_like(y)
                self.net.step(x, e, x, 0.0, d_out=d)
                self.net.step(x, e + 1, x, step.w, out=dst, prev=d)
                e += 2
            else:
                raise TypeError(f"unknown schedule step {step!r}")
            x = dst
        return out
