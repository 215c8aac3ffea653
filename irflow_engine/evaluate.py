"""Quality evaluation: `irflow eval` (PSNR / SSIM on RGB and on the Y channel).

Metrics come from scikit-image. Y is ITU-R BT.601 luma in [16, 235] (`skimage.color.rgb2ycbcr`),
as the reference's BasicSR-style evaluation computes it; SSIM uses the Gaussian-window form of
Wang et al. (σ = 1.5, population covariance). Inputs and outputs are 8-bit, as stored images are:
a synthetic degradation is rounded to uint8 before restoration.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from typing import Callable, Dict, List, Sequence, Tuple

import numpy as np

from .degrade import degrade

Pair = Tuple[str, np.ndarray, np.ndarray]   # (name, degraded uint8 H×W×3, clean uint8 H×W×3)


def luma(rgb: np.ndarray) -> np.ndarray:
    """BT.601 Y in [16, 235] (float64) of a uint8 RGB image."""
    from skimage.color import rgb2ycbcr

    return rgb2ycbcr(rgb)[..., 0]


def image_metrics(restored: np.ndarray, clean: np.ndarray) -> Dict[str, float]:
    """PSNR (dB) and SSIM of two uint8 H×W×3 images, on RGB and on Y."""
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    if restored.shape != clean.shape or restored.dtype != np.uint8 or clean.dtype != np.uint8:
        raise ValueError(f"metrics need two uint8 images of one shape, got {restored.dtype}{restored.shape} "
                         f"and {clean.dtype}{clean.shape}")
    ssim = dict(gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255)
    ry, cy = luma(restored), luma(clean)
    with np.errstate(divide="ignore"):  # identical images: PSNR = inf
        return {
            "psnr_rgb": float(peak_signal_noise_ratio(clean, restored, data_range=255)),
            "ssim_rgb": float(structural_similarity(clean, restored, channel_axis=2, **ssim)),
            "psnr_y": float(peak_signal_noise_ratio(cy, ry, data_range=255)),
            "ssim_y": float(structural_similarity(cy, ry, **ssim)),
        }


def to_uint8(image: np.ndarray) -> np.ndarray:
    return np.clip(np.round(image * 255.0), 0, 255).astype(np.uint8)


def synthetic_pairs(clean: Sequence[Tuple[str, np.ndarray]], degradation: str, level: float,
                    seed: int = 0) -> List[Pair]:
    """Degrade each clean image with its own generator (seed, index): the same pairs every run."""
    pairs = []
    for i, (name, img) in enumerate(clean):
        rng = np.random.default_rng([seed, i])
        lq = degrade(degradation, img.astype(np.float32) / 255.0, level, rng)
        pairs.append((name, to_uint8(lq), img))
    return pairs


def nlm_denoiser(sigma: float, h_factor: float = 0.5, patch_size: int = 5,
                 patch_distance: int = 6) -> Callable[[np.ndarray], np.ndarray]:
    """scikit-image's non-local means for known noise σ (0–255 units), as a baseline.

    The defaults were tuned for σ = 25 on the held-out photographs (docs/MODELS.md): h ∈ {0.4 …
    1.0}·σ, patch 3/5/7, distance 4/6/11; h = 0.5σ, 5×5 patches, distance 6 scored best.
    """
    from skimage.restoration import denoise_nl_means

    s = sigma / 255.0

    def run(lq: np.ndarray) -> np.ndarray:
        out = denoise_nl_means(lq.astype(np.float32) / 255.0, h=h_factor * s, sigma=s, fast_mode=True,
                               patch_size=patch_size, patch_distance=patch_distance, channel_axis=-1)
        return to_uint8(out)

    return run


@dataclass
class EvalRow:
    method: str
    metrics: Dict[str, float]
    seconds_per_image: float
    per_image: Dict[str, Dict[str, float]]


def evaluate_method(method: str, fn: Callable[[np.ndarray], np.ndarray], pairs: Sequence[Pair]) -> EvalRow:
    per_image, seconds = {}, 0.0
    for name, lq, gt in pairs:
        t0 = time.perf_counter()
        out = fn(lq)
        seconds += time.perf_counter() - t0
        per_image[name] = image_metrics(out, gt)
    keys = next(iter(per_image.values())).keys()
    mean = {k: float(np.mean([m[k] for m in per_image.values()])) for k in keys}
    return EvalRow(method, mean, seconds / len(pairs), per_image)


def format_rows(rows: Sequence[EvalRow]) -> str:
    head = f"{'method':<24} {'PSNR RGB':>9} {'SSIM RGB':>9} {'PSNR Y':>8} {'SSIM Y':>8} {'s/img':>7}"
    lines = [head, "-" * len(head)]
    for r in rows:
        m = r.metrics
        lines.append(f"{r.method:<24} {m['psnr_rgb']:>9.2f} {m['ssim_rgb']:>9.4f} {m['psnr_y']:>8.2f} "
                     f"{m['ssim_y']:>8.4f} {r.seconds_per_image:>7.2f}")
    return "\n".join(lines)


def cmd_eval(args) -> int:
    from .bench import write_json
    from .checkpoint import resolve
    from .config import EngineConfig
    from .datasets import load_image_set, paired_folders
    from .engine import Engine

    if args.lq:
        pairs = paired_folders(args.lq, args.gt)
        what = f"{args.lq} vs {args.gt}"
    else:
        if not args.degradation:
            raise ValueError("give --lq (paired folders) or --degradation and --level (synthetic)")
        pairs = synthetic_pairs(load_image_set(args.gt), args.degradation, args.level, args.seed)
        what = f"{args.gt} + {args.degradation} level {args.level} (seed {args.seed})"
    checkpoint = resolve(args.model)
    rows = [evaluate_method("degraded input", lambda lq: lq, pairs)]
    if args.baseline == "nlm":
        if args.degradation != "noise":
            raise ValueError("--baseline nlm needs --degradation noise")
        rows.append(evaluate_method(f"NLM (h={args.nlm_h}σ)", nlm_denoiser(args.level, args.nlm_h), pairs))
        print("  NLM done", file=sys.stderr)
    for steps in args.steps:
        engine = Engine(checkpoint, EngineConfig(backend=args.backend, device=args.device, precision=args.precision,
                                                 steps=steps, solver=args.solver))
        rows.append(evaluate_method(f"{args.model.split('/')[-1]} {engine.schedule.solver} K={steps}",
                                    engine.restore, pairs))
        print(f"  K={steps} done", file=sys.stderr)
    print(f"{len(pairs)} images: {what}")
    print(format_rows(rows))
    if args.json:
        write_json(args.json, {"model": args.model, "data": what, "images": [p[0] for p in pairs],
                               "rows": [r.__dict__ for r in rows]})
    return 0


def add_eval_arguments(p) -> None:
    def int_list(text):
        return [int(v) for v in text.split(",") if v]

    p.add_argument("--model", required=True, metavar="NAME_OR_PATH", help="checkpoint, bundled model or preset")
    p.add_argument("--gt", required=True, help="clean images: a folder, or skimage:heldout / skimage:train / skimage:train-wide")
    p.add_argument("--lq", help="degraded images with the same file names (paired evaluation)")
    p.add_argument("--degradation", choices=["noise", "rain"], help="synthetic degradation of --gt")
    p.add_argument("--level", type=float, default=25.0, help="noise σ (0–255) or rain level (0–1); default 25")
    p.add_argument("--seed", type=int, default=0, help="seed of the synthetic degradation (default 0)")
    p.add_argument("--steps", type=int_list, default=[1, 2, 3, 4], help="comma-separated K list (default 1,2,3,4)")
    p.add_argument("--solver", default="euler", choices=["euler", "heun"])
    p.add_argument("--baseline", choices=["nlm"], help="also score scikit-image's non-local means")
    p.add_argument("--nlm-h", type=float, default=0.5,
                   help="NLM filter strength h as a multiple of σ (default 0.5, tuned for σ = 25)")
    p.add_argument("--backend", default="eager",
                   help="default eager (the reference); on the CPU, onnxruntime (or auto) scores the same "
                        "network 1.8-2.5x faster, equal to eager fp32 to ~1e-6")
    p.add_argument("--precision", default="fp32")
    p.add_argument("--device", default="auto")
    p.add_argument("--json", metavar="PATH", help="write per-image and mean metrics as JSON")
