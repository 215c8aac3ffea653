"""End-to-end speed of `irflow restore in.mp4 -o out.mp4`, stage by stage, against the engine alone.

Writes a clip (a pan across a photograph with noise σ = 25 and a sine track, libx264 4:2:0 8-bit,
`irflow_engine.video.synth`), then in one process:
  1. the engine's own throughput on the same batch shape (`Engine.restore_batch` on a decoded-
     size float tensor in a worker thread, warm-up first, median of --repeats; CUDA synchronised),
  2. `Engine.restore_video` - the code path of `irflow restore` - with its per-stage busy times,
and prints one table: end-to-end frames/s, engine frames/s, the share lost to I/O, and each
stage's frames/s. Model loading and the engine's warm-up are excluded from both.

    python benchmarks/bench_video.py                          # 720p, 3 frames, CPU: a few minutes
    python benchmarks/bench_video.py --device cuda --frames 96 --batch 8 --precision fp16
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import torch

from irflow_engine import Engine
from irflow_engine.video.synth import write_noisy_pan


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def engine_fps(engine: Engine, batch: int, height: int, width: int, repeats: int) -> float:
    """Frames/s of restore_batch alone on batch×3×H×W (median of `repeats` after one warm-up).

    Timed in a worker thread, as the pipeline's restore stage runs: on a busy CPU, PyTorch's
    OpenMP threads behave differently in the main thread.
    """
    x = torch.rand(batch, 3, height, width, device=engine.device)
    times = []

    def run():
        for i in range(repeats + 1):
            t0 = time.perf_counter()
            engine.restore_batch(x)
            _sync(engine.device)
            if i:
                times.append(time.perf_counter() - t0)

    t = threading.Thread(target=run)
    t.start()
    t.join()
    return batch / statistics.median(times)


def _commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              cwd=Path(__file__).parent, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", default="1280x720", help="WxH (default 1280x720)")
    p.add_argument("--frames", type=int, default=3)
    p.add_argument("--model", default="irflow-denoise-s")
    p.add_argument("--steps", type=int, default=1)
    p.add_argument("--device", default="cpu")
    p.add_argument("--backend", default="eager")
    p.add_argument("--precision", default="fp32")
    p.add_argument("--batch", type=int, default=1, help="frames per network call")
    p.add_argument("--repeats", type=int, default=1, help="timed engine-only calls (median)")
    p.add_argument("--codec", default=None, help="output encoder (default: like the input, libx264)")
    p.add_argument("--preset", default=None)
    p.add_argument("--json", default=None, help="also write the results here")
    args = p.parse_args(argv)
    w, h = (int(v) for v in args.size.lower().split("x"))

    engine = Engine.from_checkpoint(args.model, backend=args.backend, device=args.device,
                                    precision=args.precision, steps=args.steps, max_batch=args.batch)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        clip = write_noisy_pan(Path(tmp) / "clip.mp4", size=(w, h), frames=args.frames, sigma=25.0,
                               options={"crf": "18", "preset": "veryfast"}).path
        made = time.perf_counter() - t0
        alone = engine_fps(engine, args.batch, h, w, args.repeats)
        report = engine.restore_video(clip, Path(tmp) / "out.mp4", batch=args.batch, codec=args.codec,
                                      preset=args.preset, progress=False)
    lost = 1.0 - report.fps / alone
    device = torch.cuda.get_device_name(engine.device) if engine.device.type == "cuda" else _cpu()
    rows = [("end to end (restore_video)", report.fps, report.seconds / max(report.frames, 1) * 1e3),
            ("engine alone (restore_batch)", alone, 1e3 / alone)]
    rows += [(f"stage: {name}", c.fps, 1e3 * c.seconds / c.frames) for name, c in report.stages.items() if c.frames]
    print(f"# {datetime.date.today()} | {device} | commit {_commit()} | torch {torch.__version__} | "
          f"threads {torch.get_num_threads()}")
    print(f"# {engine!r}; clip {w}x{h}, {report.frames} frames (written in {made:.1f}s); batch {args.batch}")
    print(f"# command: python benchmarks/bench_video.py {' '.join(sys.argv[1:] if argv is None else argv)}")
    print("| what | frames/s | ms/frame |")
    print("|---|---|---|")
    for name, fps, ms in rows:
        print(f"| {name} | {fps:.3f} | {ms:.1f} |")
    print(f"lost to I/O and conversion: {100 * lost:.1f} % of the engine's throughput")
    if args.json:
        Path(args.json).write_text(json.dumps({"date": str(datetime.date.today()), "device": device,
                                               "commit": _commit(), "engine": repr(engine), "size": [w, h],
                                               "batch": args.batch, "engine_fps": alone,
                                               "report": report.as_dict(), "lost_fraction": lost}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
