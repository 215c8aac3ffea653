"""INT8 quality on the whole held-out photographs: the Q/DQ denoiser vs its fp32 graph (ONNX Runtime, CPU).

Builds the INT8 model as `irflow export int8` does by default (16 training photographs, 256-pixel
centre crops, minmax, keep-float stem/head/tail/attention) unless --int8 names one, then for each
noise level and held-out image prints PSNR(INT8, fp32) and the task PSNR (vs the clean image) of
both. Noise is seeded; inputs are rounded to 8 bits as stored frames would be.

    python benchmarks/int8_quality.py [--steps 3] [--sigma 15,25,50] [--keep-float ...]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="irflow-denoise-s")
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--sigma", default="25", help="comma list of noise levels (0-255 units)")
    p.add_argument("--method", default="minmax")
    p.add_argument("--keep-float", default="stem,head,tail,attention")
    p.add_argument("--int8", type=Path, default=None)
    args = p.parse_args(argv)

    from irflow_engine.datasets import load_image_set
    from irflow_engine.degrade import gaussian_noise
    from irflow_engine.export.calibrate import QuantOptions, quantize_int8
    from irflow_engine.export.onnx import export_onnx, ort_session
    from irflow_engine.export.quant_report import psnr

    with tempfile.TemporaryDirectory() as tmp:
        fp32 = ort_session(export_onnx(args.model, Path(tmp) / "fp32.onnx", steps=args.steps))
        path = args.int8
        if path is None:
            train = [img for _, img in load_image_set("skimage:train")]
            options = QuantOptions(method=args.method, keep_float=tuple(args.keep_float.split(",")))
            path = quantize_int8(args.model, Path(tmp) / "int8.onnx", train, steps=args.steps, options=options,
                                 report_frames=0).path
        int8 = ort_session(path)
        print(f"{args.model}, K = {args.steps}, {args.method}, keep float: {args.keep_float}")
        print("| σ | image | PSNR INT8 vs fp32 | task PSNR fp32 | task PSNR INT8 | drop |\n|---|---|---|---|---|---|")
        for sigma in (float(s) for s in args.sigma.split(",")):
            rng = np.random.default_rng(0)
            drops = []
            for name, image in load_image_set("skimage:heldout"):
                clean = image.astype(np.float32) / 255.0
                noisy = np.round(gaussian_noise(clean, sigma, rng) * 255.0) / 255.0
                y = np.ascontiguousarray(noisy.transpose(2, 0, 1)[None])
                a = np.clip(fp32.run(None, {"degraded": y})[0], 0, 1)
                b = np.clip(int8.run(None, {"degraded": y})[0], 0, 1)
                target = clean.transpose(2, 0, 1)[None]
                pa, pb = psnr(a, target), psnr(b, target)
                drops.append(pa - pb)
                print(f"| {sigma:g} | {name} {image.shape[1]}x{image.shape[0]} | {psnr(b, a):.2f} | {pa:.2f} | "
                      f"{pb:.2f} | {pa - pb:.3f} |", flush=True)
            print(f"| {sigma:g} | mean drop | | | | {np.mean(drops):.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
