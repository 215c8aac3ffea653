"""CPU latency: eager PyTorch vs ONNX Runtime fp32 vs ONNX Runtime INT8 (Q/DQ), one process.

Default: the bundled irflow-denoise-s, 512×512, K = 3, batch 1. The INT8 model is calibrated here
on scikit-image's training photographs (degraded as the model's task), unless --int8 names one.
Median (and min) of --iters timed runs after one warm-up; the output of each is compared with
eager fp32 (PSNR). Prints a table last; --json writes the rows.

    python benchmarks/bench_onnx_cpu.py [--size 512] [--steps 3] [--threads N] [--iters 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def timed(fn, iters: int):
    fn()  # warm-up: allocations, oneDNN/MLAS kernel selection
    times = []
    for _ in range(iters):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return out, statistics.median(times), min(times)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="irflow-denoise-s")
    p.add_argument("--size", type=int, default=512)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--threads", type=int, default=0, help="0: all cores (torch and ONNX Runtime defaults)")
    p.add_argument("--iters", type=int, default=5)
    p.add_argument("--int8", type=Path, default=None, help="an INT8 Q/DQ model to time instead of calibrating")
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)

    from irflow_engine import Engine
    from irflow_engine.bench import flops_per_evaluation
    from irflow_engine.export.calibrate import quantize_int8
    from irflow_engine.export.onnx import export_onnx, ort_session
    from irflow_engine.export.quant_report import psnr

    if args.threads:
        torch.set_num_threads(args.threads)
    engine = Engine.from_checkpoint(args.model, steps=args.steps)
    n = args.size
    y = torch.rand(1, 3, n, n, generator=torch.Generator().manual_seed(0))
    flop = flops_per_evaluation(engine.model_config, 1, n, n) * engine.schedule.evaluations
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        fp32_path = export_onnx(args.model, Path(tmp) / "fp32.onnx", steps=args.steps)
        int8_path = args.int8
        if int8_path is None:
            from irflow_engine.datasets import load_image_set

            t0 = time.perf_counter()
            train = [img for _, img in load_image_set("skimage:train")]
            int8_path = quantize_int8(args.model, Path(tmp) / "int8.onnx", train, steps=args.steps, count=8,
                                      crop=128, report_frames=0).path
            print(f"calibrated and quantised in {time.perf_counter() - t0:.1f}s", file=sys.stderr)
        with torch.inference_mode():
            ref, med, best = timed(lambda: engine.restore_batch(y), args.iters)
        ref = ref.numpy()
        rows.append(("eager PyTorch fp32", med, best, float("inf")))
        feed = {"degraded": y.numpy()}
        for label, path in (("ONNX Runtime fp32", fp32_path), ("ONNX Runtime INT8 (Q/DQ)", int8_path)):
            session = ort_session(path, threads=args.threads)
            out, med, best = timed(lambda: session.run(None, feed)[0], args.iters)
            rows.append((label, med, best, psnr(np.clip(out, 0, 1), np.clip(ref, 0, 1))))

    import onnxruntime

    cores = os.cpu_count()
    print(f"\n{args.model}, {n}x{n}, K = {args.steps}, batch 1, {flop / 1e9:.0f} GFLOP per frame; "
          f"torch {torch.__version__} ({torch.get_num_threads()} threads), onnxruntime {onnxruntime.__version__}, "
          f"{cores} CPUs")
    print("| run | ms per frame (min) | GFLOP/s | speed-up vs eager | PSNR vs eager fp32 |\n|---|---|---|---|---|")
    for label, med, best, q in rows:
        print(f"| {label} | {med * 1e3:.0f} ({best * 1e3:.0f}) | {flop / med / 1e9:.0f} | "
              f"{rows[0][1] / med:.2f}x | {'—' if q == float('inf') else f'{q:.1f} dB'} |")
    if args.json is not None:
        args.json.write_text(json.dumps([dict(zip(("run", "median_s", "min_s", "psnr_db"), r)) for r in rows],
                                        indent=1, allow_nan=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
