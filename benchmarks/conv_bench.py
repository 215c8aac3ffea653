"""Do the 3×3 convolutions pay to move from cuDNN to the Triton implicit-GEMM kernel? (GPU only)

Two measurements in one process, on one card:

1. per layer: every distinct 3×3 stride-1 convolution of the model at the given resolution
   (found by running the eager model on the `meta` device with hooks), fp16 channels-last,
   timed as (a) cuDNN with its heuristic algorithm, (b) cuDNN after `cudnn.benchmark` picked one,
   (c) cuDNN + the fused backend's FiLM+SiLU kernel (today's ResBlock first conv), (d) the Triton
   pointer-gather conv, (e) the Triton conv as `conv3x3` picks it (TMA on Hopper) alone and (f)
   with FiLM+SiLU fused; times are medians of `triton.testing.do_bench`,
   weighted by how often the shape occurs in one network evaluation;
2. whole loop: the "triton" backend's captured K-step loop with conv = cudnn (benchmark off/on),
   conv = triton, and conv = cudnn with the decoder's literal nearest upsample instead of the
   folded sub-pixel 2×2 conv (upsample = nearest), median of timed graph replays after prepare().

    python benchmarks/conv_bench.py --model irflow-unet64 --resolution 1280x720 --steps 3 --json out.json
"""

from __future__ import annotations

import argparse
import collections
import json
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parent.parent


def conv_shapes(model, height: int, width: int):
    """{(Cin, Cout, H, W): calls per evaluation} for the model's 3×3 stride-1 convs (meta run)."""
    from irflow_engine.backends.fused_unet import _is_conv3x3

    counts = collections.Counter()
    hooks = []
    meta = model.to("meta")
    for m in meta.modules():
        if isinstance(m, torch.nn.Conv2d) and _is_conv3x3(m) and m.out_channels > 3:
            hooks.append(m.register_forward_hook(
                lambda mod, inp, out: counts.update([(mod.in_channels, mod.out_channels, *inp[0].shape[-2:])])))
    with torch.no_grad():
        meta(torch.empty(1, 3, height, width, device="meta"), 1)
    for h in hooks:
        h.remove()
    return counts


def per_layer(counts, device, dtype):
    from triton.testing import do_bench

    from irflow_engine.kernels.conv3x3 import conv3x3, pack_conv3x3_weight, tma_supported
    from irflow_engine.kernels.film_silu import film_silu

    rows = []
    for (c_in, c_out, h, w), calls in sorted(counts.items(), key=lambda kv: -kv[0][2]):
        x = torch.randn(1, c_in, h, w, device=device, dtype=dtype).contiguous(memory_format=torch.channels_last)
        w4 = (torch.randn(c_out, c_in, 3, 3, device=device) / (3 * c_in ** 0.5)).to(dtype)
        w4 = w4.contiguous(memory_format=torch.channels_last)
        packed = pack_conv3x3_weight(w4, dtype)
        scale, shift = torch.randn(c_out, device=device), torch.randn(c_out, device=device)
        xh = x.permute(0, 2, 3, 1)
        out = torch.empty(1, h, w, c_out, device=device, dtype=dtype)

        def cudnn():
            return F.conv2d(x, w4, padding=1)

        def cudnn_film():
            y = F.conv2d(x, w4, padding=1)
            film_silu(y.permute(0, 2, 3, 1), scale, shift, out=y.permute(0, 2, 3, 1))

        times = {}
        torch.backends.cudnn.benchmark = False
        times["cudnn"] = do_bench(cudnn)
        torch.backends.cudnn.benchmark = True
        cudnn()
        times["cudnn_bench"] = do_bench(cudnn)
        times["cudnn_bench+film"] = do_bench(cudnn_film)
        torch.backends.cudnn.benchmark = False
        times["triton_pointer"] = do_bench(lambda: conv3x3(xh, packed, out=out, impl="pointer"))
        times["triton"] = do_bench(lambda: conv3x3(xh, packed, out=out))  # TMA on Hopper
        times["triton_film"] = do_bench(lambda: conv3x3(xh, packed, epilogue="film_silu", scale=scale,
                                                         shift=shift, out=out))
        ref = F.conv2d(x.float(), w4.float(), padding=1).permute(0, 2, 3, 1)
        got = conv3x3(xh, packed, out=out).float()
        err = float((got - ref).abs().max() / ref.abs().max())
        flops = 2 * 9 * c_in * c_out * h * w
        tuned = "_conv3x3_tma_tuned" if tma_supported(xh, c_out) is None else "_conv3x3_tuned"
        best = getattr(conv3x3.__globals__[tuned], "best_config", None)
        rows.append({"c_in": c_in, "c_out": c_out, "h": h, "w": w, "calls": calls, "ms": times,
                     "tflops": {k: flops / (t * 1e-3) / 1e12 for k, t in times.items()},
                     "rel_err_triton": err, "triton_config": str(best)})
    return rows


def whole_loop(model_name, height, width, steps, device, precision, variants, iters):
    results = []
    for conv, bench, upsample in variants:
        try:
            results.append(_time_loop(model_name, height, width, steps, device, precision, conv, bench, upsample,
                                      iters))
        except Exception as e:  # one variant failing (e.g. a kernel that does not compile) is a result too
            results.append({"conv": conv, "cudnn_benchmark": bench, "upsample": upsample, "precision": precision,
                            "steps": steps, "error": f"{type(e).__name__}: {e}"})
            print(f"  loop conv={conv} cudnn.benchmark={bench} upsample={upsample}: FAILED "
                  f"{type(e).__name__}: {e}", flush=True)
        torch.cuda.empty_cache()
    return results


def _time_loop(model_name, height, width, steps, device, precision, conv, bench, upsample, iters):
    """Median ms of `iters` timed replays of one variant's captured loop, after prepare()."""
    from irflow_engine.backends.triton import TritonBackend
    from irflow_engine.checkpoint import resolve
    from irflow_engine.flow import make_schedule

    model = resolve(model_name).build_model().eval()
    backend = TritonBackend(model, make_schedule(steps, "euler"), precision, device, conv=conv,
                            cudnn_benchmark=bench, upsample=upsample)
    y = torch.rand(1, 3, height, width, device=device)
    t0 = time.perf_counter()
    backend.prepare(tuple(y.shape))
    torch.cuda.synchronize()
    prep = time.perf_counter() - t0
    for _ in range(3):
        backend.restore(y)
    ms = []
    for _ in range(iters):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        backend.restore(y)
        end.record()
        torch.cuda.synchronize()
        ms.append(start.elapsed_time(end))
    row = {"conv": conv, "cudnn_benchmark": bench, "upsample": upsample, "precision": precision, "steps": steps,
           "prep_s": prep, "ms_p50": statistics.median(ms), "ms_min": min(ms)}
    print(f"  loop conv={conv:6s} cudnn.benchmark={bench!s:5s} upsample={upsample:8s} {precision} K={steps}: "
          f"{row['ms_p50']:.2f} ms (min {min(ms):.2f}; prepare {prep:.1f} s)", flush=True)
    return row


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="irflow-unet64")
    p.add_argument("--resolution", default="1280x720")
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--iters", type=int, default=10)
    p.add_argument("--precisions", default="fp16,bf16")
    p.add_argument("--skip-layers", action="store_true", help="only the whole-loop timings")
    p.add_argument("--variants", default="cudnn,cudnn+nearest,cudnn+bench,triton",
                   help="whole-loop variants: cudnn (heuristic algorithms), cudnn+nearest (the same with the "
                        "literal nearest upsample + 3x3 conv instead of the folded sub-pixel 2x2 conv), "
                        "cudnn+bench (cudnn.benchmark before capture), triton (the Triton 3x3 conv with "
                        "fused epilogues)")
    p.add_argument("--json")
    args = p.parse_args(argv)
    known = {"cudnn": ("cudnn", False, "subpixel"), "cudnn+nearest": ("cudnn", False, "nearest"),
             "cudnn+bench": ("cudnn", True, "subpixel"), "triton": ("triton", True, "subpixel")}
    try:
        variants = [known[v] for v in args.variants.split(",")]
    except KeyError as e:
        p.error(f"unknown variant {e}; choose from {sorted(known)}")
    if not torch.cuda.is_available():
        print("conv_bench: needs a CUDA GPU", file=sys.stderr)
        return 1
    from irflow_engine.checkpoint import resolve

    width, height = (int(v) for v in args.resolution.lower().split("x"))
    device = torch.device("cuda")
    out = {"device": torch.cuda.get_device_name(device), "model": args.model, "resolution": args.resolution,
           "torch": torch.__version__}
    if not args.skip_layers:
        counts = conv_shapes(resolve(args.model).build_model(), height, width)
        out["layers"] = per_layer(counts, device, torch.float16)
        names = list(out["layers"][0]["ms"])
        print(f"== 3×3 convs of {args.model} at {args.resolution}, fp16, ms per call "
              f"(TFLOP/s of the best Triton column in brackets)")
        print(f"{'Cin':>5} {'Cout':>5} {'HxW':>10} {'n':>3} " + " ".join(f"{k:>16}" for k in names) + "  rel err")
        totals = collections.Counter()
        for r in out["layers"]:
            for k in names:
                totals[k] += r["ms"][k] * r["calls"]
            print(f"{r['c_in']:5d} {r['c_out']:5d} {r['w']:>5}x{r['h']:<4} {r['calls']:3d} "
                  + " ".join(f"{r['ms'][k]:16.3f}" for k in names)
                  + f"  {r['rel_err_triton']:.1e} ({r['tflops']['triton']:.0f} TF/s) {r['triton_config']}")
        print("per evaluation (weighted): " + ", ".join(f"{k} {v:.2f} ms" for k, v in totals.items()))
        out["per_evaluation_ms"] = dict(totals)
    out["loops"] = []
    print(f"== whole loop: {args.model} {args.resolution} K={args.steps}, one captured graph, "
          f"median of {args.iters}")
    for precision in args.precisions.split(","):
        out["loops"] += whole_loop(args.model, height, width, args.steps, device, precision, variants, args.iters)
        if args.json:  # keep what finished if a later precision runs out of time
            Path(args.json).write_text(json.dumps(out, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
