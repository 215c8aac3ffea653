"""Roofline model of one network evaluation: where the time must go, before profiling it.

Runs the eager network once on the `meta` device (no memory, no compute, any resolution) and
records every aten op it dispatches: FLOPs (torch's FLOP formulas) and bytes (inputs read plus
outputs written, in the chosen dtype). Each op's lower-bound time is max(FLOPs / peak, bytes /
bandwidth); ops are grouped into classes (3×3 conv, 1×1 conv, ...). The result is a *model*: a
floor no implementation of the same ops can beat on that card, and the split a measured profile
(`triton_check.py --profile-only` on a GPU) should be compared with. Not a measurement.

    python benchmarks/roofline.py --model irflow-unet64 --resolution 1280x720 \
        --peak-tflops 747.5 --bandwidth-tbs 4.8 --measured-ms 28.63

(`--peak-tflops`: the fp16 matmul rate measured on the card, docs/PERF.md; `--measured-ms`: a
measured time per evaluation to compare the floor with, optional.)
"""

from __future__ import annotations

import argparse
from collections import defaultdict

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry

from irflow_engine.config import ModelConfig
from irflow_engine.models import ConditionalUNet

aten = torch.ops.aten
VIEWS = {aten.view, aten._unsafe_view, aten.reshape, aten.permute, aten.transpose, aten.t, aten.expand,
         aten.slice, aten.select, aten.unsqueeze, aten.squeeze, aten.split, aten.split_with_sizes,
         aten.chunk, aten.unbind, aten.alias, aten.detach, aten.as_strided, aten.lift_fresh}


def op_class(func, args) -> str:
    name = func.overloadpacket.__name__
    if name == "convolution":
        k = tuple(args[1].shape[-2:])
        stride = args[3][0] if isinstance(args[3], (list, tuple)) else args[3]
        return f"conv {k[0]}x{k[1]}" + (" stride 2" if stride == 2 else "")
    if name in ("bmm", "mm", "addmm", "baddbmm"):
        return "attention matmul"
    if name in ("_softmax", "softmax"):
        return "softmax"
    if name in ("var", "var_mean", "mean", "sum", "rsqrt", "sqrt"):
        return "normalisation"
    if name in ("cat", "constant_pad_nd", "reflection_pad2d", "index", "clone", "copy_", "_to_copy",
                "upsample_nearest2d", "contiguous"):
        return "copies (cat/pad/upsample/cast)"
    return "element-wise"


class Recorder(TorchDispatchMode):
    def __init__(self, itemsize: int):
        super().__init__()
        self.itemsize = itemsize
        self.rows = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if func.overloadpacket in VIEWS:
            return out
        flops = 0
        if func.overloadpacket in flop_registry:
            flops = flop_registry[func.overloadpacket](*args, **kwargs, out_val=out)
        tensors = [a for a in torch.utils._pytree.tree_leaves((args, kwargs, out)) if isinstance(a, torch.Tensor)]
        moved = sum(t.numel() for t in tensors) * self.itemsize
        self.rows.append((op_class(func, args), flops, moved))
        return out


def record(model_name: str, width: int, height: int, itemsize: int = 2) -> list:
    """[(op class, FLOPs, bytes moved)] for one evaluation of the preset at width×height."""
    model = ConditionalUNet.from_config(ModelConfig.from_name(model_name)).to("meta").eval()
    rec = Recorder(itemsize)
    with torch.no_grad(), rec:
        model(torch.empty(1, 3, height, width, device="meta"), 500)
    return rec.rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="irflow-unet64", help="preset name (default: irflow-unet64)")
    p.add_argument("--resolution", default="1280x720", help="WxH (default: 1280x720)")
    p.add_argument("--bytes-per-element", type=int, default=2, help="2 for fp16/bf16 storage (default)")
    p.add_argument("--peak-tflops", type=float, default=747.5,
                   help="matmul rate of the card (default: the H200's measured fp16 rate, docs/PERF.md)")
    p.add_argument("--bandwidth-tbs", type=float, default=4.8, help="memory bandwidth TB/s (default: H200 4.8)")
    p.add_argument("--measured-ms", type=float, default=None, help="a measured time per evaluation to compare")
    args = p.parse_args(argv)
    w, h = (int(v) for v in args.resolution.lower().split("x"))
    rows = record(args.model, w, h, args.bytes_per_element)
    peak, bw = args.peak_tflops * 1e12, args.bandwidth_tbs * 1e12
    by_class = defaultdict(lambda: [0, 0.0, 0.0, 0.0])   # ops, flops, bytes, floor seconds
    for cls, flops, moved in rows:
        row = by_class[cls]
        row[0] += 1
        row[1] += flops
        row[2] += moved
        row[3] += max(flops / peak, moved / bw)
    total_flops = sum(r[1] for r in by_class.values())
    total_floor = sum(r[3] for r in by_class.values())
    print(f"{args.model} {w}x{h}, one evaluation, {args.bytes_per_element}-byte storage, "
          f"{args.peak_tflops:g} TFLOP/s, {args.bandwidth_tbs:g} TB/s")
    print(f"| op class | ops | GFLOP | MB moved | floor ms | share of floor | bound |")
    print("|---|---|---|---|---|---|---|")
    for cls, (n, flops, moved, floor) in sorted(by_class.items(), key=lambda kv: -kv[1][3]):
        bound = "compute" if flops / peak >= moved / bw else "memory"
        print(f"| {cls} | {n} | {flops / 1e9:.1f} | {moved / 1e6:.1f} | {floor * 1e3:.2f} | "
              f"{100 * floor / total_floor:.1f} % | {bound} |")
    print(f"| **total** | {len(rows)} | {total_flops / 1e9:.1f} | "
          f"{sum(r[2] for r in by_class.values()) / 1e6:.1f} | **{total_floor * 1e3:.2f}** | 100 % | |")
    if args.measured_ms:
        print(f"measured {args.measured_ms:.2f} ms per evaluation = {total_floor * 1e3 / args.measured_ms:.0%} "
              f"of the floor's speed; {total_flops / args.measured_ms / 1e9:.0f} TFLOP/s achieved")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
