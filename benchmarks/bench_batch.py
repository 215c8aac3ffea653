"""Throughput of `restore_batch` on a local Ray instance: images/s with 1 and 2 workers, and what
starting Ray and an engine actor costs.

    python benchmarks/bench_batch.py [--images 16] [--size 128] [--model irflow-denoise-s] [--steps 1]

Prints one table; record it in docs/PERF.md with the date, machine, commit and command.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np


def make_images(folder: Path, count: int, size: int) -> None:
    import skimage.data

    from irflow_engine.images import write_image

    photo = skimage.data.astronaut()
    g = np.random.default_rng(0)
    for i in range(count):
        y, x = g.integers(0, photo.shape[0] - size), g.integers(0, photo.shape[1] - size)
        write_image(folder / f"img{i:03d}.png", photo[y:y + size, x:x + size])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--images", type=int, default=16)
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--model", default="irflow-denoise-s")
    p.add_argument("--steps", type=int, default=1)
    p.add_argument("--workers", default="1,2")
    p.add_argument("--repeats", type=int, default=2, help="runs per worker count, alternating; best kept")
    args = p.parse_args()

    import ray

    from irflow_engine.batch import BatchJob, restore_batch

    work = Path(tempfile.mkdtemp(prefix="bench_batch_"))
    try:
        (work / "in").mkdir()
        make_images(work / "in", args.images, args.size)
        t0 = time.perf_counter()
        ray.init(num_cpus=os.cpu_count(), include_dashboard=False, configure_logging=False)
        ray_start = time.perf_counter() - t0

        @ray.remote(num_cpus=0.1)
        class Probe:
            def __init__(self, model, steps):
                from irflow_engine import Engine

                self.engine = Engine.from_checkpoint(model, steps=steps)

            def ready(self):
                return True

        t0 = time.perf_counter()
        ray.get(Probe.remote(args.model, args.steps).ready.remote())
        actor_start = time.perf_counter() - t0

        best = {}
        for r in range(args.repeats):
            for workers in (int(w) for w in args.workers.split(",")):
                out = work / f"out{workers}-{r}"
                job = BatchJob(out_dir=str(out), model=args.model, steps=args.steps, workers=workers, batch_size=2)
                t0 = time.perf_counter()
                summary = restore_batch(job, [str(work / "in")], progress=False)
                seconds = time.perf_counter() - t0
                if workers not in best or seconds < best[workers][2]:
                    best[workers] = (workers, summary.done, seconds, summary.done / seconds)
        rows = list(best.values())
        ray.shutdown()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"\nrestore_batch: {args.images} images {args.size}x{args.size}, {args.model}, K={args.steps}, "
          f"{os.cpu_count()} CPUs, best of {args.repeats} alternating runs (each with its actors' start-up); "
          f"Ray start {ray_start:.1f}s, one engine actor start {actor_start:.1f}s")
    print(f"{'workers':>7} {'images':>6} {'seconds':>8} {'images/s':>9}")
    for w, n, s, rate in rows:
        print(f"{w:7d} {n:6d} {s:8.1f} {rate:9.2f}")


if __name__ == "__main__":
    main()
