"""`irflow-bench-latency`: latency/throughput tables for backends, precisions and shapes.

Each configuration is built once, prepared for its shape (compilation / graph capture, timed
separately as "prep s"), warmed up, then timed per call: CUDA events on a GPU,
`time.perf_counter` on the CPU. FLOPs come from `torch.utils.flop_counter` on one network
evaluation (run on the meta device, so counting costs nothing) times the schedule's evaluations.
They are the reference network's for every backend: one that folds work away (the triton
backend's sub-pixel upsampling) shows an effective rate.
The ceiling is a measured dense-matmul rate in the same precision on the same device, or the
value given with --ceiling-tflops.
"""

from __future__ import annotations

import argparse
import datetime
import itertools
import json
import logging
import os
import platform
import resource
import sys
import time
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from ._version import __version__
from .atomic import atomic_path
from .backends import BACKENDS, BackendUnavailable
from .config import PRECISIONS, SOLVERS, ModelConfig

MATMUL_DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def parse_resolution(text: str):
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"resolution must look like WIDTHxHEIGHT, got {text!r}") from None
    if w < 1 or h < 1:
        raise argparse.ArgumentTypeError(f"resolution must be positive, got {text!r}")
    return w, h


def _csv(kind):
    def parse(text: str):
        return [kind(v) for v in text.split(",") if v]
    return parse


def flops_per_evaluation(config: ModelConfig, batch: int, height: int, width: int) -> int:
    """FLOPs of one network evaluation on an N×3×H×W input (counted on the meta device)."""
    from torch.utils.flop_counter import FlopCounterMode

    from .models import ConditionalUNet

    with torch.device("meta"):
        model = ConditionalUNet.from_config(config)
        x = torch.empty(batch, config.in_nc, height, width)
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(x, 1000)
    return int(counter.get_total_flops())


def measure_ceiling_tflops(device: torch.device, precision: str) -> float:
    """Best dense-matmul rate (TFLOP/s) of a few square matmuls in `precision` on `device`."""
    n = 8192 if device.type == "cuda" else 1024
    dtype = MATMUL_DTYPES[precision]
    a = torch.randn(n, n, device=device).to(dtype)
    b = torch.randn(n, n, device=device).to(dtype)
    best = float("inf")
    for i in range(6 if device.type == "cuda" else 3):
        t = _time_call(lambda: torch.matmul(a, b), device)
        if i > 0:  # the first call pays for library start-up
            best = min(best, t)
    return 2 * n ** 3 / best / 1e12


def _time_call(fn, device: torch.device) -> float:
    """Seconds one call of fn takes: CUDA events on a GPU, perf_counter on the CPU."""
    if device.type == "cuda":
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        return start.elapsed_time(end) / 1e3
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def _peak_memory_mib(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2 ** 20
    # ru_maxrss is KiB on Linux: the whole process's peak resident set, not this run alone.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bench_one(checkpoint, backend: str, precision: str, steps: int, solver: str, batch: int,
              resolution, device: torch.device, warmup: int, iters: int,
              ceilings: Dict[str, Optional[float]]) -> Tuple[dict, torch.Tensor]:
    """One configuration's timing row, and its output for `y` (fp32, on the CPU) to compare."""
    from .engine import Engine
    from .config import EngineConfig

    width, height = resolution
    engine = Engine(checkpoint, EngineConfig(backend=backend, device=str(device), precision=precision,
                                             steps=steps, solver=solver, max_batch=batch))
    shape = (batch, checkpoint.config.in_nc, height, width)
    y = torch.rand(shape, generator=torch.Generator().manual_seed(0)).to(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    t0 = time.perf_counter()
    engine.backend.prepare(shape)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    prepare_s = time.perf_counter() - t0
    for _ in range(warmup):
        engine.restore_batch(y)
    last = [None]   # the last timed call's output, kept for the comparison between configurations

    def call():
        last[0] = engine.restore_batch(y)

    times = np.array([_time_call(call, device) for _ in range(iters)])
    output = last[0].float().cpu()
    ms_per_frame = times * 1e3 / batch
    p50 = float(np.percentile(ms_per_frame, 50))
    flops = flops_per_evaluation(checkpoint.config, batch, height, width) * engine.schedule.evaluations
    tflops = flops / (p50 * batch / 1e3) / 1e12
    ceiling = ceilings.get(precision)
    return {
        "backend": engine.backend_name, "precision": precision, "solver": solver, "steps": steps,
        "evaluations": engine.schedule.evaluations, "batch": batch, "width": width, "height": height,
        "prepare_s": prepare_s, "iters": iters,
        "ms_per_frame_p50": p50,
        "ms_per_frame_p90": float(np.percentile(ms_per_frame, 90)),
        "ms_per_frame_p99": float(np.percentile(ms_per_frame, 99)),
        "frames_per_s": 1e3 / p50,
        "flop_per_frame": flops / batch,
        "tflops": tflops,
        "ceiling_tflops": ceiling,
        "pct_of_ceiling": 100.0 * tflops / ceiling if ceiling else None,
        "peak_memory_mib": _peak_memory_mib(device),
    }, output


def relative_error(output: torch.Tensor, reference: torch.Tensor) -> float:
    """max |output − reference| / max |reference|, computed in float64."""
    output, reference = output.double(), reference.double()
    return float((output - reference).abs().max() / reference.abs().max().clamp_min(1e-12))


COLUMNS = [
    ("backend", "backend", "{}"), ("precision", "prec", "{}"), ("steps", "K", "{}"),
    ("batch", "N", "{}"), ("res", "WxH", "{}"), ("prepare_s", "prep s", "{:.1f}"),
    ("ms_per_frame_p50", "p50 ms", "{:.2f}"), ("ms_per_frame_p90", "p90 ms", "{:.2f}"),
    ("ms_per_frame_p99", "p99 ms", "{:.2f}"), ("frames_per_s", "frames/s", "{:.2f}"),
    ("tflops", "TFLOP/s", "{:.3f}"), ("pct_of_ceiling", "% ceil", "{:.1f}"),
    ("peak_memory_mib", "peak MiB", "{:.0f}"), ("rel_err", "rel err", "{:.1e}"),
]


def format_table(rows: List[dict]) -> str:
    cells = [[title for _, title, _ in COLUMNS]]
    for r in rows:
        r = {**r, "res": f"{r['width']}x{r['height']}"}
        cells.append(["-" if r.get(k) is None else fmt.format(r[k]) for k, _, fmt in COLUMNS])
    widths = [max(len(row[i]) for row in cells) for i in range(len(COLUMNS))]
    lines = ["  ".join(c.rjust(w) for c, w in zip(row, widths)) for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def write_json(path: str, payload: dict) -> None:
    with atomic_path(path) as tmp, open(tmp, "w") as f:
        json.dump(payload, f, indent=2)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="irflow-bench-latency",
        description="Time IR-Flow restoration for every combination of the listed backends, precisions, "
                    "step counts, batch sizes and resolutions; print a table (per-frame latency "
                    "percentiles, frames/s, TFLOP/s, %% of a matmul ceiling, peak memory, and 'rel err': "
                    "max |out − ref| / max |ref| on the same input, where ref is the output of the first "
                    "configuration run with the same K, batch and resolution).",
        epilog="GPU example: irflow-bench-latency --model irflow-unet64 --resolution 1280x720 "
               "--steps 3 --backend eager,compile --precision fp32,fp16 --json perf.json")
    p.add_argument("--model", default="irflow-unet32-d3",
                   help="checkpoint, bundled model or preset (default: irflow-unet32-d3)")
    p.add_argument("--resolution", type=_csv(parse_resolution), default=[(64, 64)],
                   help="comma-separated WIDTHxHEIGHT list (default: 64x64)")
    p.add_argument("--batch", type=_csv(int), default=[1], help="comma-separated batch sizes (default: 1)")
    p.add_argument("--steps", type=_csv(int), default=[3], help="comma-separated step counts K (default: 3)")
    p.add_argument("--solver", choices=SOLVERS, default="euler", help="default: euler")
    p.add_argument("--backend", type=_csv(str), default=["eager"],
                   help=f"comma-separated backends from {sorted(BACKENDS)} (default: eager)")
    p.add_argument("--precision", type=_csv(str), default=["fp32"],
                   help=f"comma-separated precisions from {list(PRECISIONS)} (default: fp32)")
    p.add_argument("--runs", type=_csv(str), default=None, metavar="BACKEND:PRECISION,...",
                   help="explicit backend:precision pairs (e.g. eager:fp32,eager:fp16,compile:fp16) "
                        "instead of every --backend × --precision combination")
    p.add_argument("--device", default="auto", help="cpu | cuda | cuda:N | auto (default: auto)")
    p.add_argument("--warmup", type=int, default=1, help="untimed calls after prepare (default: 1)")
    p.add_argument("--iters", type=int, default=10, help="timed calls per configuration (default: 10)")
    p.add_argument("--ceiling-tflops", type=float, default=None,
                   help="the ceiling for %% of ceiling, in TFLOP/s (default: measure a matmul per precision)")
    p.add_argument("--no-ceiling", action="store_true", help="do not measure a ceiling")
    p.add_argument("--json", metavar="PATH", help="also write the results as JSON to PATH")
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="irflow-bench-latency: %(levelname)s: %(message)s")
    from .checkpoint import CheckpointError, resolve
    from .engine import resolve_device

    try:
        if args.runs:
            pairs = [tuple(run.split(":", 1)) if ":" in run else (run, "") for run in args.runs]
        else:
            pairs = list(itertools.product(args.backend, args.precision))
        for backend, precision in pairs:
            if backend not in BACKENDS and backend != "auto":
                raise ValueError(f"unknown backend {backend!r}; choose from {sorted(BACKENDS)}")
            if precision not in PRECISIONS:
                raise ValueError(f"unknown precision {precision!r}; choose from {list(PRECISIONS)}")
        if args.iters < 1 or args.warmup < 0:
            raise ValueError("--iters must be >= 1 and --warmup >= 0")
        device = resolve_device(args.device)
        checkpoint = resolve(args.model)
    except (ValueError, CheckpointError) as e:
        print(f"irflow-bench-latency: error: {e}", file=sys.stderr)
        return 1

    ceilings: Dict[str, Optional[float]] = {}
    for precision in dict.fromkeys(p for _, p in pairs):
        if args.ceiling_tflops is not None:
            ceilings[precision] = args.ceiling_tflops
        elif not args.no_ceiling:
            ceilings[precision] = measure_ceiling_tflops(device, precision)

    device_name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu"
    print(f"irflow-bench-latency {__version__}: model {args.model} "
          f"(nf {checkpoint.config.nf}, depth {checkpoint.config.depth}), device {device} ({device_name}), "
          f"torch {torch.__version__}, {os.cpu_count()} CPUs, {args.iters} timed calls each", file=sys.stderr)
    rows, skipped = [], []
    references: Dict[tuple, Tuple[str, torch.Tensor]] = {}   # (K, N, resolution) -> first run's output
    combos = [(b, p, k, n, r) for (b, p) in pairs
              for k, n, r in itertools.product(args.steps, args.batch, args.resolution)]
    for backend, precision, steps, batch, resolution in combos:
        print(f"  {backend} {precision} K={steps} N={batch} {resolution[0]}x{resolution[1]} …",
              file=sys.stderr, flush=True)
        try:
            row, output = bench_one(checkpoint, backend, precision, steps, args.solver, batch, resolution,
                                    device, args.warmup, args.iters, ceilings)
        except BackendUnavailable as e:
            skipped.append(f"{backend} {precision}: {e}")
            print(f"    skipped: {e}", file=sys.stderr)
            continue
        ref_name, ref = references.setdefault((steps, batch, resolution), (f"{backend}:{precision}", output))
        row["rel_err"] = None if ref is output else relative_error(output, ref)
        row["rel_err_vs"] = None if ref is output else ref_name
        rows.append(row)
    if not rows:
        print("irflow-bench-latency: error: no configuration could run", file=sys.stderr)
        return 1
    print(format_table(rows))
    if ceilings:
        print("ceiling (TFLOP/s): " + ", ".join(f"{p} {c:.2f}" for p, c in ceilings.items() if c))
    if args.json:
        write_json(args.json, {
            "tool": "irflow-bench-latency", "version": __version__,
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "device": str(device), "device_name": device_name, "torch": torch.__version__,
            "model": args.model, "model_config": checkpoint.config.to_dict(),
            "random_weights": checkpoint.random_weights, "ceilings_tflops": ceilings, "results": rows,
            "skipped": skipped,
        })
        print(f"wrote {args.json}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
