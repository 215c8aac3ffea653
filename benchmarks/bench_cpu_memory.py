"""Peak host memory per pixel of a CPU restore (what `irflow_engine.memory` budgets), one process per row.

Each row runs in a fresh Python process: build the engine (memory budget off), restore an 8×8 frame
to warm it up, read the peak RSS, restore `--frames` random frames of the size in a row (as a video
would), and report the growth of the peak RSS per pixel of one frame plus the seconds per frame.
Prints a Markdown table last; --json writes the rows.

    python benchmarks/bench_cpu_memory.py [--models irflow-denoise-s,irflow-unet64]
        [--backends eager,onnxruntime] [--sizes 512x512,1280x720] [--steps 1] [--frames 1]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path


def measure(model: str, backend: str, width: int, height: int, steps: int, frames: int) -> dict:
    """Runs in the child process: one row."""
    import logging
    import resource
    import time

    import numpy as np

    from irflow_engine import Engine

    logging.disable(logging.WARNING)   # presets' "random weights" warning
    engine = Engine.from_checkpoint(model, backend=backend, steps=steps, memory_budget=0)
    engine.restore(np.zeros((8, 8, 3), np.uint8))
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024   # Linux: KiB
    x = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
    seconds = []
    for _ in range(frames):
        t0 = time.perf_counter()
        engine.restore(x)
        seconds.append(time.perf_counter() - t0)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {"model": model, "backend": backend, "width": width, "height": height, "steps": steps,
            "frames": frames, "peak_growth_bytes": peak - base, "bytes_per_pixel": (peak - base) / (width * height),
            "seconds_per_frame": sorted(seconds)[len(seconds) // 2]}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="irflow-denoise-s,irflow-unet32-d3,irflow-unet64")
    p.add_argument("--backends", default="eager,onnxruntime")
    p.add_argument("--sizes", default="512x512", help="comma-separated WxH")
    p.add_argument("--steps", type=int, default=1)
    p.add_argument("--frames", type=int, default=1, help="frames restored in a row per row (median time)")
    p.add_argument("--json", type=Path, default=None)
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:   # model,backend,W,H
        model, backend, w, h = args.child.split(",")
        print(json.dumps(measure(model, backend, int(w), int(h), args.steps, args.frames)))
        return 0

    rows = []
    for size in args.sizes.split(","):
        w, h = (int(v) for v in size.lower().split("x"))
        for model in args.models.split(","):
            for backend in args.backends.split(","):
                cmd = [sys.executable, __file__, "--child", f"{model},{backend},{w},{h}",
                       "--steps", str(args.steps), "--frames", str(args.frames)]
                done = subprocess.run(cmd, capture_output=True, text=True)
                if done.returncode != 0:
                    print(f"{model} {backend} {size}: FAILED\n{done.stderr[-2000:]}", file=sys.stderr)
                    continue
                rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
                r = rows[-1]
                print(f"{model} {backend} {size}: {r['bytes_per_pixel'] / 1024:.2f} KiB/px, "
                      f"{r['seconds_per_frame']:.1f} s/frame", file=sys.stderr)
    print(f"\nK = {args.steps}, {args.frames} frame(s) in a row, fp32; peak RSS growth per pixel of one frame")
    print("| model | backend | frame | KiB per pixel | peak growth | s per frame |\n|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['model']} | {r['backend']} | {r['width']}×{r['height']} | {r['bytes_per_pixel'] / 1024:.2f} | "
              f"{r['peak_growth_bytes'] / 2**30:.2f} GiB | {r['seconds_per_frame']:.1f} |")
    if args.json is not None:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
