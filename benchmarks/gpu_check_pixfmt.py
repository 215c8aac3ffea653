"""GPU check of irflow_engine.pixfmt: the CUDA path equals the CPU path, and how fast each is.

For every format: random frames (odd-ish small sizes with padding, and 1080p) through
frame -> tensor (float32/float16, nearest/bilinear, every matrix and range) and tensor -> frame,
compared element for element with the CPU path; then 1080p timings of both paths (frame ->
float16 tensor and back). Prints a short table last; exit status 1 on any mismatch, 0 when all
equal (or when there is no GPU: nothing to check).

Usage (from the repository root, after building): python benchmarks/gpu_check_pixfmt.py [--iters 20]
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_pixfmt import time_cpu, time_cuda  # noqa: E402

from irflow_engine import pixfmt as P  # noqa: E402

RGB = ("rgb24", "bgr24", "rgba")
YUV = ("yuv420p", "yuv420p10le", "nv12", "p010")


def random_frame(fmt: str, n: int, h: int, w: int, g: np.random.Generator) -> torch.Tensor:
    if fmt in RGB:
        return torch.from_numpy(g.integers(0, 256, (n, h, w, 4 if fmt == "rgba" else 3), dtype=np.uint8))
    if fmt in ("yuv420p", "nv12"):
        return torch.from_numpy(g.integers(0, 256, (n, h * 3 // 2, w), dtype=np.uint8))
    codes = g.integers(0, 1024, (n, h * 3 // 2, w), dtype=np.uint16)
    if fmt == "p010":
        codes = codes << 6
    return torch.from_numpy(codes.astype(np.uint16))


def _move(t: torch.Tensor, device: str) -> torch.Tensor:
    """Copy between devices; uint16 travels as int16 (same bits), whatever torch's uint16 support."""
    if t.dtype == torch.uint8 or t.is_floating_point():
        return t.to(device)
    return t.view(torch.int16).to(device).view(t.dtype)


def _same(a: torch.Tensor, b: torch.Tensor) -> int:
    """Number of differing bytes (0: equal)."""
    a, b = (_move(t, "cpu").contiguous().view(torch.uint8) for t in (a, b))
    return (a != b).sum().item()


def check_format(fmt: str, g: np.random.Generator) -> list:
    """Mismatch descriptions (empty when the CUDA path equals the CPU path everywhere)."""
    bad = []
    for (h, w), pad in (((34, 50), 16), ((1080, 1920), 1)):
        frame = random_frame(fmt, 2, h, w, g)
        gpu_frame = _move(frame, "cuda")
        for matrix, rng, up, dtype in itertools.product(("bt601", "bt709", "bt2020"), ("limited", "full"),
                                                        ("nearest", "bilinear"), (torch.float32, torch.float16)):
            if fmt in RGB and (matrix, rng, up) != ("bt709", "limited", "bilinear"):
                continue
            kw = dict(matrix=matrix, range=rng, upsample=up, dtype=dtype, pad_to=pad)
            cpu = P.frame_to_tensor(frame, fmt, **kw)
            gpu = P.frame_to_tensor(gpu_frame, fmt, **kw)
            n = _same(cpu, gpu)
            if n:
                bad.append(f"{fmt} {h}x{w} -> tensor {matrix}/{rng}/{up}/{str(dtype)[6:]}: {n} bytes differ")
        x = torch.from_numpy(g.uniform(-0.1, 1.1, (2, 3, h + 6, w + 2)).astype(np.float32))
        x[0, 0, 0, 0] = float("nan")
        for matrix, rng, dtype in itertools.product(("bt601", "bt709", "bt2020"), ("limited", "full"),
                                                    (torch.float32, torch.float16)):
            if fmt in RGB and (matrix, rng) != ("bt709", "limited"):
                continue
            kw = dict(matrix=matrix, range=rng, size=(h, w))
            cpu = P.tensor_to_frame(x.to(dtype), fmt, **kw)
            gpu = P.tensor_to_frame(x.to(dtype).cuda(), fmt, **kw)
            n = _same(cpu, gpu)
            if n:
                bad.append(f"tensor -> {fmt} {h}x{w} {matrix}/{rng}/{str(dtype)[6:]}: {n} bytes differ")
    return bad


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--iters", type=int, default=20)
    args = ap.parse_args(argv)
    print(f"pixfmt paths: {P.describe_paths()}")
    if "cuda" not in P.available_paths():
        print("pixfmt GPU check SKIPPED: no CUDA path here")
        return 0
    g = np.random.default_rng(0)
    rows, failures = [], []
    for fmt in RGB + YUV:
        bad = check_format(fmt, g)
        failures += bad
        h, w = 1080, 1920
        frame = random_frame(fmt, 1, h, w, g)[0]
        gframe = _move(frame, "cuda")
        t_cpu = torch.empty(3, h, w, dtype=torch.float16)
        t_gpu = t_cpu.cuda()
        f_cpu, f_gpu = torch.empty_like(frame), torch.empty_like(gframe)
        rows.append((fmt, "ok" if not bad else f"{len(bad)} MISMATCHES",
                     time_cpu(lambda: P.frame_to_tensor(frame, fmt, out=t_cpu), args.iters),
                     time_cuda(lambda: P.frame_to_tensor(gframe, fmt, out=t_gpu), args.iters),
                     time_cpu(lambda: P.tensor_to_frame(t_cpu, fmt, out=f_cpu), args.iters),
                     time_cuda(lambda: P.tensor_to_frame(t_gpu, fmt, out=f_gpu), args.iters)))
    for line in failures[:20]:
        print("MISMATCH", line)
    print(f"\npixfmt CUDA vs CPU, 1080p, float16 tensors, bt709 limited, bilinear ({torch.cuda.get_device_name()}, "
          f"{os.cpu_count()} CPU cores; median ms)")
    print(f"{'format':<12} {'cuda==cpu':<14} {'->t cpu':>8} {'->t gpu':>8} {'t-> cpu':>8} {'t-> gpu':>8}")
    for fmt, ok, a, b, c, d in rows:
        print(f"{fmt:<12} {ok:<14} {a:8.2f} {b:8.3f} {c:8.2f} {d:8.3f}")
    print("pixfmt GPU check:", "PASS" if not failures else f"FAIL ({len(failures)} mismatching cases)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
