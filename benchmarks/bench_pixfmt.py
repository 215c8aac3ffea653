"""Benchmark irflow_engine.pixfmt: yuv420p frames -> float16 N×3×H×W tensors and back.

Columns (median ms per frame):
- ``ext``: the extension (CPU path: C++/OpenMP on all cores; GPU path: CUDA kernels);
- ``numpy``: the same conversion written with numpy (float32 arithmetic, same bilinear filter,
  one thread) - what a pipeline does without the extension;
- ``pyav``: PyAV's own ``to_ndarray(format="rgb24")`` (swscale yuv420p -> packed uint8 RGB, no
  float conversion) and, back, ``from_ndarray(rgb24).reformat("yuv420p")``; only when ``av`` is
  importable (it is not a dependency);
- ``torch``: on a GPU, the same conversion in PyTorch ops (F.interpolate, arithmetic, avg_pool2d).

Usage: python benchmarks/bench_pixfmt.py [--sizes 1080p,4k] [--iters 10] [--device cpu|cuda|all]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import statistics
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

from irflow_engine import pixfmt as P

SIZES = {"720p": (720, 1280), "1080p": (1080, 1920), "4k": (2160, 3840)}
MATRIX, RANGE = "bt709", "limited"
KR, KB = 0.2126, 0.0722


def _coeffs():
    kg = 1.0 - KR - KB
    return dict(r_cr=2 * (1 - KR), b_cb=2 * (1 - KB), g_cb=-2 * KB * (1 - KB) / kg, g_cr=-2 * KR * (1 - KR) / kg,
                y=(KR, kg, KB))


# ------------------------------------------------------------------ numpy version ----

def _np_up2(c: np.ndarray) -> np.ndarray:
    """Centre-sited bilinear 2× upsampling (weights 3/4, 1/4 per axis, edges repeated)."""
    p = np.pad(c, 1, mode="edge")
    hc, wc = c.shape
    v = np.empty((2 * hc, wc + 2), np.float32)
    v[0::2] = 0.75 * p[1:-1] + 0.25 * p[:-2]
    v[1::2] = 0.75 * p[1:-1] + 0.25 * p[2:]
    out = np.empty((2 * hc, 2 * wc), np.float32)
    out[:, 0::2] = 0.75 * v[:, 1:-1] + 0.25 * v[:, :-2]
    out[:, 1::2] = 0.75 * v[:, 1:-1] + 0.25 * v[:, 2:]
    return out


def numpy_to_tensor(frame: np.ndarray, h: int, w: int) -> np.ndarray:
    c = _coeffs()
    flat = frame.reshape(-1)
    n_y, n_c = h * w, (h // 2) * (w // 2)
    y = (flat[:n_y].reshape(h, w).astype(np.float32) - 16.0) * np.float32(1 / 219)
    cb = (_np_up2(flat[n_y:n_y + n_c].reshape(h // 2, w // 2).astype(np.float32)) - 128.0) * np.float32(1 / 224)
    cr = (_np_up2(flat[n_y + n_c:].reshape(h // 2, w // 2).astype(np.float32)) - 128.0) * np.float32(1 / 224)
    out = np.empty((3, h, w), np.float16)
    out[0] = np.clip(y + np.float32(c["r_cr"]) * cr, 0, 1)
    out[1] = np.clip(y + np.float32(c["g_cb"]) * cb + np.float32(c["g_cr"]) * cr, 0, 1)
    out[2] = np.clip(y + np.float32(c["b_cb"]) * cb, 0, 1)
    return out


def numpy_to_frame(t: np.ndarray) -> np.ndarray:
    _, h, w = t.shape
    kr, kg, kb = _coeffs()["y"]
    rgb = np.clip(t.astype(np.float32), 0, 1)
    y = (kr * rgb[0] + kg * rgb[1] + kb * rgb[2]) * 219 + 16.5
    avg = rgb.reshape(3, h // 2, 2, w // 2, 2).mean(axis=(2, 4))
    ya = kr * avg[0] + kg * avg[1] + kb * avg[2]
    u = (avg[2] - ya) / (2 * (1 - kb)) * 224 + 128.5
    v = (avg[0] - ya) / (2 * (1 - kr)) * 224 + 128.5
    return np.concatenate([np.clip(y, 0, 255).astype(np.uint8).ravel(), np.clip(u, 0, 255).astype(np.uint8).ravel(),
                           np.clip(v, 0, 255).astype(np.uint8).ravel()]).reshape(h * 3 // 2, w)


# ------------------------------------------------------------------ torch version ----

def torch_to_tensor(frame: torch.Tensor, h: int, w: int) -> torch.Tensor:
    c = _coeffs()
    flat = frame.reshape(-1)
    n_y, n_c = h * w, (h // 2) * (w // 2)
    y = (flat[:n_y].reshape(h, w).float() - 16.0) / 219.0
    uv = torch.stack([flat[n_y:n_y + n_c], flat[n_y + n_c:]]).reshape(1, 2, h // 2, w // 2).float()
    uv = (F.interpolate(uv, scale_factor=2, mode="bilinear", align_corners=False)[0] - 128.0) / 224.0
    cb, cr = uv[0], uv[1]
    rgb = torch.stack([y + c["r_cr"] * cr, y + c["g_cb"] * cb + c["g_cr"] * cr, y + c["b_cb"] * cb])
    return rgb.clamp_(0, 1).half()


def torch_to_frame(t: torch.Tensor) -> torch.Tensor:
    _, h, w = t.shape
    kr, kg, kb = _coeffs()["y"]
    rgb = t.float().clamp(0, 1)
    y = (kr * rgb[0] + kg * rgb[1] + kb * rgb[2]) * 219 + 16.5
    avg = F.avg_pool2d(rgb[None], 2)[0]
    ya = kr * avg[0] + kg * avg[1] + kb * avg[2]
    u = (avg[2] - ya) / (2 * (1 - kb)) * 224 + 128.5
    v = (avg[0] - ya) / (2 * (1 - kr)) * 224 + 128.5
    parts = [x.clamp(0, 255).to(torch.uint8).reshape(-1) for x in (y, u, v)]
    return torch.cat(parts).reshape(h * 3 // 2, w)


# ------------------------------------------------------------------------ timing ----

def time_cpu(fn, iters: int, stats: bool = False):
    """Median ms of `iters` calls after a warm-up call; with `stats`, (median, min)."""
    fn()
    ts = []
    for _ in range(iters):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    med = statistics.median(ts) * 1e3
    return (med, min(ts) * 1e3) if stats else med


def time_cuda(fn, iters: int) -> float:
    fn()
    torch.cuda.synchronize()
    ts = []
    for _ in range(iters):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        b.synchronize()
        ts.append(a.elapsed_time(b))
    return statistics.median(ts)


def random_frame(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A yuv420p frame with smooth content plus noise (random codes alone are mostly out of gamut)."""
    g = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    rgb = np.stack([0.5 + 0.4 * np.sin(xx / 97 + k) * np.cos(yy / 61 - k) for k in range(3)])
    rgb += g.uniform(-0.05, 0.05, rgb.shape).astype(np.float32)
    return P.tensor_to_frame(torch.from_numpy(rgb), "yuv420p", matrix=MATRIX, range=RANGE).numpy()


def bench_size(name: str, iters: int, devices, rows: list) -> None:
    h, w = SIZES[name]
    frame = random_frame(h, w)
    if "cpu" in devices:
        out = torch.empty(3, h, w, dtype=torch.float16)
        back = np.empty_like(frame)
        t_ext, t_min = time_cpu(lambda: P.frame_to_tensor(frame, "yuv420p", matrix=MATRIX, range=RANGE, out=out),
                                iters, stats=True)
        t_np = time_cpu(lambda: numpy_to_tensor(frame, h, w), max(3, iters // 3))
        diff = np.abs(numpy_to_tensor(frame, h, w).astype(np.float32) - out.float().numpy()).max()
        b_ext, b_min = time_cpu(lambda: P.tensor_to_frame(out, "yuv420p", matrix=MATRIX, range=RANGE, out=back),
                                iters, stats=True)
        b_np = time_cpu(lambda: numpy_to_frame(out.numpy()), max(3, iters // 3))
        bdiff = int(np.abs(numpy_to_frame(out.numpy()).astype(int) - back.astype(int)).max())
        t_av = b_av = None
        try:
            import av  # noqa: F401  (optional, not a dependency)

            vf = av.VideoFrame.from_ndarray(frame, format="yuv420p")
            t_av = time_cpu(lambda: vf.to_ndarray(format="rgb24"), iters)
            rgb24 = vf.to_ndarray(format="rgb24")
            b_av = time_cpu(lambda: av.VideoFrame.from_ndarray(rgb24, format="rgb24").reformat(format="yuv420p"),
                            iters)
        except ImportError:
            pass
        rows.append(dict(size=name, device="cpu", direction="yuv420p -> fp16", ext=t_ext, ext_min=t_min, baseline=t_np,
                         baseline_name="numpy", pyav=t_av, check=f"max abs diff vs numpy {diff:.1e}"))
        rows.append(dict(size=name, device="cpu", direction="fp16 -> yuv420p", ext=b_ext, ext_min=b_min, baseline=b_np,
                         baseline_name="numpy", pyav=b_av, check=f"max code diff vs numpy {bdiff}"))
    if "cuda" in devices:
        fg = torch.from_numpy(frame).cuda()
        out = torch.empty(3, h, w, dtype=torch.float16, device="cuda")
        back = torch.empty_like(fg)
        t_ext = time_cuda(lambda: P.frame_to_tensor(fg, "yuv420p", matrix=MATRIX, range=RANGE, out=out), iters)
        t_pt = time_cuda(lambda: torch_to_tensor(fg, h, w), iters)
        diff = (torch_to_tensor(fg, h, w).float() - out.float()).abs().max().item()
        b_ext = time_cuda(lambda: P.tensor_to_frame(out, "yuv420p", matrix=MATRIX, range=RANGE, out=back), iters)
        b_pt = time_cuda(lambda: torch_to_frame(out), iters)
        bdiff = (torch_to_frame(out).int() - back.int()).abs().max().item()
        rows.append(dict(size=name, device="cuda", direction="yuv420p -> fp16", ext=t_ext, baseline=t_pt,
                         baseline_name="torch ops", pyav=None, check=f"max abs diff vs torch {diff:.1e}"))
        rows.append(dict(size=name, device="cuda", direction="fp16 -> yuv420p", ext=b_ext, baseline=b_pt,
                         baseline_name="torch ops", pyav=None, check=f"max code diff vs torch {bdiff}"))


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else "no GPU"
    return f"{os.cpu_count()} CPU cores ({cpu}), {gpu}"


def table(rows: list) -> str:
    lines = ["| size | device | conversion | ext ms (min) | baseline | baseline ms | speed-up | PyAV rgb24 ms "
             "| check |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        av_col = f"{r['pyav']:.2f}" if r["pyav"] is not None else ("n/a" if r["device"] == "cuda" else "not installed")
        ext = f"{r['ext']:.2f}" + (f" ({r['ext_min']:.2f})" if r.get("ext_min") is not None else "")
        lines.append(f"| {r['size']} | {r['device']} | {r['direction']} | {ext} | {r['baseline_name']} | "
                     f"{r['baseline']:.2f} | {r['baseline'] / r['ext']:.1f}× | {av_col} | {r['check']} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="1080p,4k", help=f"comma list of {', '.join(SIZES)}")
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--device", default="all", choices=["cpu", "cuda", "all"])
    ap.add_argument("--json", help="write the rows here")
    args = ap.parse_args(argv)
    devices = ["cpu", "cuda"] if args.device == "all" else [args.device]
    if "cuda" in devices and "cuda" not in P.available_paths():
        print(f"note: GPU columns skipped: {P.describe_paths()}", file=sys.stderr)
        devices.remove("cuda")
    if importlib.util.find_spec("av") is None:
        print("note: PyAV (av) is not importable: its column is skipped", file=sys.stderr)
    print(f"machine: {machine()}; paths: {P.describe_paths()}; torch threads {torch.get_num_threads()}, "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}")
    rows: list = []
    for name in args.sizes.split(","):
        bench_size(name.strip(), args.iters, devices, rows)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(dict(machine=machine(), paths=P.describe_paths(), rows=rows), f, indent=1)
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
