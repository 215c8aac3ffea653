"""Where a denoiser loses to non-local means: PSNR by local texture, and noise left on flat images.

For a checkpoint (bundled name or file) and the held-out photographs at one noise level:
1. PSNR of the restoration and of tuned NLM (`evaluate.nlm_denoiser`) on pixels binned by the
   clean image's local standard deviation (7×7 window, 0–255 units): flat regions (sd < 2) are
   where a short-trained network trails NLM by far, textured ones where it already wins;
2. the noise left (standard deviation, 0–255 units) after restoring constant-colour images with
   Gaussian noise: a well-trained denoiser leaves ~0 there; and what kind of noise it is: the
   share of its power at wavelengths over 8 px (white noise: 4.9 %) and the correlation between
   colour channels (the input's: 0). A filter that averages too narrowly leaves blotchy,
   low-frequency, grey (channel-correlated) noise.

    python benchmarks/denoise_diagnostics.py --model irflow-denoise-s --sigma 25 --steps 3
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
import torch.nn.functional as F

from irflow_engine.datasets import load_image_set
from irflow_engine.engine import Engine
from irflow_engine.evaluate import nlm_denoiser, synthetic_pairs

BINS = (0, 2, 4, 8, 16, 256)


def local_sd(clean: np.ndarray) -> np.ndarray:
    g = torch.from_numpy(clean.astype(np.float32)).mean(2)[None, None]
    g = F.pad(g, (3, 3, 3, 3), mode="reflect")
    mu = F.avg_pool2d(g, 7, 1)
    var = F.avg_pool2d(g * g, 7, 1) - mu * mu
    return var.clamp(min=0).sqrt()[0, 0].numpy()


def binned_psnr(restored: np.ndarray, clean: np.ndarray, sd: np.ndarray) -> list:
    err = ((restored.astype(np.float64) - clean.astype(np.float64)) ** 2).mean(2)
    out = []
    for lo, hi in zip(BINS, BINS[1:]):
        mask = (sd >= lo) & (sd < hi)
        out.append((mask.mean(), 10 * np.log10(255.0 ** 2 / err[mask].mean()) if mask.any() else float("nan")))
    return out


def low_frequency_share(residual: np.ndarray, wavelength: float = 8.0) -> float:
    """Share of the power of `residual` (H×W×C, mean removed per channel) at spatial frequencies
    below 1/`wavelength` cycles per pixel (white noise: π/wavelength² of it, 4.9 % at 8 px)."""
    r = residual.astype(np.float64) - residual.mean(axis=(0, 1))
    power = np.abs(np.fft.fft2(r, axes=(0, 1))) ** 2
    fy = np.fft.fftfreq(r.shape[0])[:, None]
    fx = np.fft.fftfreq(r.shape[1])[None, :]
    low = np.hypot(fy, fx) < 1.0 / wavelength
    return float(power[low].sum() / power.sum())


def channel_correlation(residual: np.ndarray) -> float:
    """Mean correlation between the colour channels of `residual` (H×W×3)."""
    c = np.corrcoef(residual.reshape(-1, residual.shape[2]).T)
    return float(c[np.triu_indices(c.shape[0], 1)].mean())


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="irflow-denoise-s", help="bundled model name or checkpoint file")
    p.add_argument("--sigma", type=float, default=25.0, help="Gaussian noise sigma, 0-255 units (default 25)")
    p.add_argument("--steps", type=int, default=3, help="sampler steps (default 3)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    engine = Engine.from_checkpoint(args.model, backend="eager", device="cpu", steps=args.steps)
    nlm = nlm_denoiser(args.sigma)
    print(f"{args.model}, sigma {args.sigma:g}, K = {args.steps}: PSNR (dB) by the clean image's local sd")
    print("| image | method | " + " | ".join(f"sd {lo}–{hi}" for lo, hi in zip(BINS, BINS[1:])) + " |")
    print("|---|---|" + "---|" * (len(BINS) - 1))
    for name, lq, clean in synthetic_pairs(load_image_set("skimage:heldout"), "noise", args.sigma):
        sd = local_sd(clean)
        for method, restored in (("model", engine.restore(lq)), ("NLM", nlm(lq))):
            cells = binned_psnr(np.asarray(restored), clean, sd)
            print(f"| {name} | {method} | " + " | ".join(f"{v:.2f} ({100 * f:.0f} %)" for f, v in cells) + " |")
    rng = np.random.default_rng(0)
    left, low, corr = [], [], []
    for level in (0.2, 0.5, 0.8):
        clean = np.full((96, 96, 3), level, np.float32)
        noisy = np.clip(clean + rng.standard_normal(clean.shape).astype(np.float32) * args.sigma / 255, 0, 1)
        noisy = np.round(noisy * 255).astype(np.uint8)
        residual = np.asarray(engine.restore(noisy)).astype(np.float64)[8:-8, 8:-8] - level * 255
        left.append(residual.std())
        low.append(100 * low_frequency_share(residual))
        corr.append(channel_correlation(residual))
    print("noise left on constant images (levels 0.2 / 0.5 / 0.8), sd in 0-255 units: "
          + " / ".join(f"{v:.2f}" for v in left) + f" (input: {args.sigma:g})")
    print("  its power at wavelengths > 8 px: " + " / ".join(f"{v:.0f} %" for v in low)
          + " (white noise: 4.9 %); channel correlation: " + " / ".join(f"{v:.2f}" for v in corr)
          + " (input: 0)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
