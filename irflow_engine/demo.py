"""`irflow demo`: degrade a held-out photograph, restore it, write the images and the PSNRs."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

from .checkpoint import BUNDLED_DIR

DEMO_MODEL = "irflow-denoise-s"
FALLBACK_PRESET = "irflow-unet16-d3"


def default_model() -> str:
    """The bundled denoiser when it is installed, else an untrained preset (the engine warns)."""
    return DEMO_MODEL if (BUNDLED_DIR / f"{DEMO_MODEL}.safetensors").is_file() else FALLBACK_PRESET


def cmd_demo(args) -> int:
    from .datasets import SKIMAGE_HELD_OUT, skimage_image
    from .engine import Engine
    from .evaluate import image_metrics, synthetic_pairs
    from .images import write_image

    model = args.model or default_model()
    if model == FALLBACK_PRESET:
        print(f"irflow demo: the bundled model {DEMO_MODEL!r} is not installed (make train-defaults builds it); "
              f"using the untrained preset {FALLBACK_PRESET!r}", file=sys.stderr)
    name = SKIMAGE_HELD_OUT[0]
    clean = skimage_image(name)
    (_, noisy, _), = synthetic_pairs([(name, clean)], "noise", args.sigma, seed=args.seed)
    t0 = time.perf_counter()
    engine = Engine.from_checkpoint(model, backend=args.backend, device=args.device, steps=args.steps)
    build_seconds = time.perf_counter() - t0
    t0 = time.perf_counter()
    restored = engine.restore(noisy)
    seconds = time.perf_counter() - t0

    out = Path(args.output)
    write_image(out / "noisy.png", noisy)
    write_image(out / "restored.png", restored)
    gap = np.full((clean.shape[0], 8, 3), 255, np.uint8)
    write_image(out / "side_by_side.png", np.concatenate([noisy, gap, restored, gap, clean], axis=1))
    before, after = image_metrics(noisy, clean)["psnr_rgb"], image_metrics(restored, clean)["psnr_rgb"]
    h, w = clean.shape[:2]
    print(f"{name} ({w}x{h}, held out of training), Gaussian noise sigma={args.sigma:g} (seed {args.seed})")
    print(f"model {model}, {engine.schedule.solver} K={engine.schedule.steps}, {engine.device}, backend "
          f"{engine.backend_name}: {seconds:.2f} s (engine built in {build_seconds:.2f} s)")
    print(f"PSNR noisy {before:.2f} dB -> restored {after:.2f} dB ({after - before:+.2f} dB)")
    print(f"wrote {out}/noisy.png, restored.png, side_by_side.png (noisy | restored | clean)")
    return 0


def add_demo_arguments(p) -> None:
    p.add_argument("-o", "--output", default="demo_out", help="output folder (default: demo_out)")
    p.add_argument("--model", default=None, help=f"default: {DEMO_MODEL} (bundled)")
    p.add_argument("--steps", type=int, default=3, help="network steps K (default 3)")
    p.add_argument("--sigma", type=float, default=25.0, help="noise σ in 0–255 units (default 25)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--backend", default="auto",
                   help="default auto: onnxruntime on the CPU when installed (its graph is exported once, then "
                        "cached), else eager")
