"""GPU check of the "triton" backend: accuracy against eager fp32, the CUDA-graph cache, threads,
and (with --profile) where the time of one loop goes, kernel by kernel.

Run on a CUDA machine from the repository root (gpu_check.sh does):

    python benchmarks/triton_check.py --json gpu_out/triton_check.json [--profile]

Accuracy: the bundled test card (examples/noisy_test_card.png, and an odd-sized crop of it) is
restored by eager fp32 (TF32 off: the true fp32 reference) and by the triton backend in fp16 and
bf16; the relative error max|a − b| / max|b| must be ≤ 5e-3 (fp16) and ≤ 2e-2 (bf16). Models: the
reference implementation's golden nf 8 / depth 3 weights (tests/fixtures) and irflow-unet64 with
seeded random weights (no trained unet64 checkpoint is available to this script). Prints one
line per check and PASS/FAIL; exits 1 if any check fails.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from pathlib import Path

import numpy as np
import torch

from irflow_engine.bench import relative_error

ROOT = Path(__file__).resolve().parent.parent
TOLERANCE = {"fp16": 5e-3, "bf16": 2e-2}


def golden_model():
    from irflow_engine.models import ConditionalUNet

    with np.load(ROOT / "tests" / "fixtures" / "official_conditional_unet_nf8_d3.npz") as d:
        cfg = json.loads(str(d["config"]))
        state = {k[len("state."):]: torch.from_numpy(d[k].copy()) for k in d.files if k.startswith("state.")}
    model = ConditionalUNet(nf=cfg["nf"], depth=cfg["depth"], in_nc=cfg["in_nc"], out_nc=cfg["out_nc"])
    model.load_state_dict(state)
    return model.eval()


def unet64_model():
    from irflow_engine.checkpoint import resolve

    return resolve("irflow-unet64").build_model().eval()


def trained_denoiser():
    from irflow_engine.checkpoint import resolve

    return resolve("irflow-denoise-s").build_model().eval()


def noisy_photo(device) -> torch.Tensor:
    """A held-out photograph (skimage's chelsea, 300x451) with Gaussian noise σ = 25, seed 0."""
    from irflow_engine.datasets import load_image_set
    from irflow_engine.degrade import DEGRADATIONS

    (_, clean), = [item for item in load_image_set("skimage:heldout") if item[0] == "chelsea"]
    noisy = DEGRADATIONS["noise"](clean.astype(np.float32) / 255.0, 25.0, np.random.default_rng(0))
    return torch.from_numpy(np.ascontiguousarray(noisy)).permute(2, 0, 1)[None].float().to(device)


def test_card(device) -> torch.Tensor:
    from irflow_engine.images import read_image

    rgb, _ = read_image(ROOT / "examples" / "noisy_test_card.png")
    return torch.from_numpy(rgb.copy()).permute(2, 0, 1)[None].float().div(255).to(device)


class Report:
    def __init__(self):
        self.rows, self.failed = [], 0

    def check(self, name: str, ok: bool, detail: str, **values):
        self.failed += not ok
        self.rows.append({"check": name, "ok": bool(ok), "detail": detail, **values})
        print(f"{'PASS' if ok else 'FAIL'}  {name}: {detail}", flush=True)


def check_accuracy(report: Report, label: str, model, images, device, conv: str = "cudnn"):
    from irflow_engine.backends import build_backend
    from irflow_engine.backends.triton import TritonBackend
    from irflow_engine.flow import make_schedule

    if conv != "cudnn":
        label = f"{label} conv={conv}"

    for steps in (1, 3):
        schedule = make_schedule(steps, "euler")
        eager = build_backend("eager", model, schedule, "fp32", device)
        refs = [eager.restore(y) for y in images]
        del eager
        for precision, tol in TOLERANCE.items():
            t0 = time.perf_counter()
            try:
                fused = (build_backend("triton", model, schedule, precision, device) if conv == "cudnn"
                         else TritonBackend(model, schedule, precision, device, conv=conv))
                outs = [fused.restore(y) for y in images]
                del fused
            except Exception as e:  # a failure is a FAIL row; the checks after it still run
                report.check(f"accuracy {label} K={steps} {precision}", False, f"{type(e).__name__}: {e}",
                             model=label, steps=steps, precision=precision)
                try:
                    torch.cuda.synchronize(device)
                except Exception:
                    pass  # a sticky CUDA error: the next check will report it too
                continue
            for y, out, ref in zip(images, outs, refs):
                err = relative_error(out, ref)
                shape = "x".join(str(s) for s in y.shape[-2:])
                report.check(f"accuracy {label} K={steps} {precision} {shape}", err <= tol,
                             f"rel err {err:.2e} (limit {tol:.0e})", model=label, steps=steps,
                             precision=precision, rel_err=err)
            report.rows[-1]["build_capture_s"] = time.perf_counter() - t0
            torch.cuda.empty_cache()


def check_graph_cache_and_threads(report: Report, model, image, device):
    from irflow_engine.backends.triton import TritonBackend
    from irflow_engine.flow import make_schedule

    backend = TritonBackend(model, make_schedule(3, "euler"), "fp16", device, max_graphs=2)
    a = image
    b = image[..., :97, :131].contiguous()
    c = torch.cat([image, image.flip(-1)])
    out_a = backend.restore(a)
    backend.restore(b)
    backend.restore(c)  # a third shape evicts the least recently used graph (a's)
    keys = [k[0] for k in backend.graphs.keys()]
    report.check("graph cache bounded LRU", len(backend.graphs) == 2 and tuple(a.shape) not in keys,
                 f"cached shapes {keys}")
    again = backend.restore(a)  # re-captured
    err = relative_error(again, out_a)
    report.check("re-capture after eviction", err <= 1e-6, f"rel diff vs first capture {err:.2e}")

    inputs = [(image + 0.02 * i).clamp(0, 1) for i in range(6)]
    expected = [backend.restore(y) for y in inputs]
    results = [None] * len(inputs)

    def work(i):
        stream = torch.cuda.Stream(device)
        with torch.cuda.stream(stream):
            for _ in range(3):
                results[i] = backend.restore(inputs[i])
            stream.synchronize()

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(inputs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    worst = max(relative_error(r, e) for r, e in zip(results, expected))
    report.check("threads on separate streams", worst <= 1e-6, f"rel diff vs single-threaded {worst:.2e}")


def profile_loop(model, device, width: int, height: int, steps: int, precision: str, top: int = 20,
                 conv: str = "cudnn"):
    """Per-kernel CUDA time of one uncaptured loop (the captured graph runs the same kernels)."""
    from torch.profiler import ProfilerActivity, profile

    from irflow_engine.backends.triton import TritonBackend
    from irflow_engine.flow import make_schedule

    backend = TritonBackend(model, make_schedule(steps, "euler"), precision, device, conv=conv)
    y = torch.rand(1, 3, height, width, device=device)
    out = torch.empty_like(y)
    with torch.no_grad():
        for _ in range(2):
            backend.sampler.run(y, out)
        torch.cuda.synchronize(device)
        with profile(activities=[ProfilerActivity.CUDA]) as prof:
            backend.sampler.run(y, out)
            torch.cuda.synchronize(device)
    timed = []
    for e in prof.key_averages():  # only CUDA activity was recorded: these are kernels and copies
        us = getattr(e, "self_device_time_total", None)
        if us is None:
            us = getattr(e, "self_cuda_time_total", 0.0)
        if us > 0:
            timed.append((e.key, us, e.count))
    total = sum(t[1] for t in timed) or 1.0
    timed.sort(key=lambda t: -t[1])
    groups = {"triton": 0.0, "conv/gemm": 0.0, "other": 0.0}
    for name, us, _ in timed:
        low = name.lower()
        if name.startswith("_") and "kernel" in low:
            groups["triton"] += us
        elif any(s in low for s in ("conv", "gemm", "xmma", "cutlass", "sm90", "sm80", "implicit")):
            groups["conv/gemm"] += us
        else:
            groups["other"] += us
    print(f"\n== where the time goes: irflow-unet64 {width}x{height} K={steps} {precision} conv={conv}, "
          "one uncaptured loop, "
          f"{total / 1e3:.1f} ms of kernel time")
    for k, us in groups.items():
        print(f"  {k:10s} {us / 1e3:8.2f} ms  {100 * us / total:5.1f} %")
    print(f"  {'kernel':80s} {'calls':>6s} {'ms':>8s} {'%':>6s}")
    for name, us, count in timed[:top]:
        print(f"  {name[:80]:80s} {count:6d} {us / 1e3:8.2f} {100 * us / total:6.1f}")
    return {"total_ms": total / 1e3, "groups_ms": {k: v / 1e3 for k, v in groups.items()},
            "kernels": [{"name": n, "calls": c, "ms": us / 1e3} for n, us, c in timed[:top]]}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--json", help="write the results here")
    p.add_argument("--profile", action="store_true", help="also print per-kernel times of one unet64 loop")
    p.add_argument("--skip-unet64", action="store_true", help="accuracy on the golden nf 8 model only")
    p.add_argument("--profile-only", action="store_true", help="only the per-kernel profile (no checks)")
    args = p.parse_args(argv)
    if not torch.cuda.is_available():
        print("triton_check: needs a CUDA device", file=sys.stderr)
        return 1
    device = torch.device("cuda")
    # The reference must be true fp32: no TF32 in cuDNN convolutions or matmuls.
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False

    report = Report()
    card = test_card(device)
    images = [card, card[..., 3:, 5:].contiguous()]  # 192x256 and an odd 189x251
    result = {"device": torch.cuda.get_device_name(device), "torch": torch.__version__}
    try:
        import triton
        result["triton"] = triton.__version__
    except ImportError:
        pass
    if args.profile_only:
        result["profile"] = profile_loop(unet64_model(), device, 1280, 720, 3, "fp16")
        if args.json:
            Path(args.json).write_text(json.dumps(result, indent=2))
        try:
            result["profile_conv_triton"] = profile_loop(unet64_model(), device, 1280, 720, 3, "fp16", conv="triton")
        except Exception as e:  # the Triton conv not compiling here must not lose the first profile
            result["profile_conv_triton"] = {"error": f"{type(e).__name__}: {e}"}
            print(f"\n== conv=triton profile FAILED: {type(e).__name__}: {e}")
        if args.json:
            Path(args.json).write_text(json.dumps(result, indent=2))
        return 0
    with torch.no_grad():
        golden = golden_model()
        check_accuracy(report, "golden-nf8-d3", golden, images, device)
        check_graph_cache_and_threads(report, golden, card, device)
        # The bar: fp16 / bf16 against eager fp32 with trained weights on a real photograph.
        photo = [noisy_photo(device)]
        check_accuracy(report, "irflow-denoise-s(trained)", trained_denoiser(), photo, device)
        check_accuracy(report, "irflow-denoise-s(trained)", trained_denoiser(), photo, device, conv="triton")
        if not args.skip_unet64:
            check_accuracy(report, "irflow-unet64(random)", unet64_model(), images, device)
            check_accuracy(report, "irflow-unet64(random)", unet64_model(), images, device, conv="triton")
    if args.profile:
        # The ceiling is a property of the card: the loop itself is timed by irflow-bench-latency.
        result["profile"] = profile_loop(unet64_model(), device, 1280, 720, 3, "fp16")
    result["checks"] = report.rows
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=2))
    print(f"\ntriton_check: {len(report.rows) - report.failed}/{len(report.rows)} checks passed")
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
