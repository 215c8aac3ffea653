"""Training and evaluation data: paired folders, clean folders + synthetic degradation, and the
photographs that scikit-image ships (with a fixed held-out split).

Training samples are random patches with flips and 90° rotations, drawn from an
`np.random.Generator` that the trainer saves and restores, so a resumed run sees exactly the
patches an uninterrupted one would have.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, List, Optional, Sequence, Tuple

import numpy as np
import torch

from .degrade import degrade, sample_level
from .images import list_images, read_image

# scikit-image's bundled photographs (no download needed). HELD_OUT never enters training.
SKIMAGE_HELD_OUT = ("chelsea", "coffee", "rocket")
SKIMAGE_TRAIN = ("astronaut", "hubble_deep_field", "immunohistochemistry", "motorcycle_left",
                 "motorcycle_right", "retina", "camera", "brick", "grass", "gravel", "moon", "coins")
# `skimage:train-wide` adds these: flat regions bounded by sharp edges and smooth colour gradients
# (a clock face, a colour wheel, a logo, the Shepp-Logan phantom), which the texture-heavy
# SKIMAGE_TRAIN lacks (docs/MODELS.md, "Where the denoiser loses").
SKIMAGE_WIDE_EXTRA = ("clock", "colorwheel", "logo", "shepp_logan_phantom")
IMAGE_SETS = {
    "skimage:train": SKIMAGE_TRAIN,
    "skimage:train-wide": SKIMAGE_TRAIN + SKIMAGE_WIDE_EXTRA,
    "skimage:heldout": SKIMAGE_HELD_OUT,
}


def skimage_image(name: str) -> np.ndarray:
    """One of scikit-image's bundled images as uint8 H×W×3 (grey images are repeated to RGB)."""
    try:
        from skimage import data
    except ImportError:
        raise ImportError("scikit-image is needed for the built-in image sets: "
                          "pip install 'irflow-engine[train]'") from None
    if name == "motorcycle_left":
        img = data.stereo_motorcycle()[0]
    elif name == "motorcycle_right":
        img = data.stereo_motorcycle()[1]
    else:
        img = getattr(data, name)()
    img = np.asarray(img)
    if img.dtype.kind == "f":       # shepp_logan_phantom: float in [0, 1]
        img = np.round(np.clip(img, 0.0, 1.0) * 255.0)
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    return np.ascontiguousarray(img[..., :3]).astype(np.uint8)


def load_image_set(spec: str) -> List[Tuple[str, np.ndarray]]:
    """A named set (`IMAGE_SETS`: skimage:train, skimage:train-wide, skimage:heldout) or a
    folder: [(name, uint8 H×W×3)]."""
    if spec in IMAGE_SETS:
        return [(n, skimage_image(n)) for n in IMAGE_SETS[spec]]
    folder = Path(spec)
    if not folder.is_dir():
        raise ValueError(f"image set {spec!r} is neither a folder nor one of {', '.join(IMAGE_SETS)}")
    files = list_images(folder)
    if not files:
        raise ValueError(f"no images in folder {folder}")
    return [(p.name, read_image(p)[0]) for p in files]


def paired_folders(lq_dir, gt_dir) -> List[Tuple[str, np.ndarray, np.ndarray]]:
    """[(name, lq uint8, gt uint8)] matched by file name; unmatched names are an error."""
    lq = {p.name: p for p in list_images(Path(lq_dir))}
    gt = {p.name: p for p in list_images(Path(gt_dir))}
    only_lq, only_gt = sorted(set(lq) - set(gt)), sorted(set(gt) - set(lq))
    if only_lq or only_gt:
        raise ValueError(f"unmatched file names between {lq_dir} and {gt_dir}: "
                         f"only in LQ: {only_lq[:10]}, only in GT: {only_gt[:10]}")
    if not lq:
        raise ValueError(f"no images in {lq_dir}")
    pairs = []
    for name in sorted(lq):
        a, b = read_image(lq[name])[0], read_image(gt[name])[0]
        if a.shape != b.shape:
            raise ValueError(f"{name}: LQ is {a.shape[1]}x{a.shape[0]} but GT is {b.shape[1]}x{b.shape[0]}")
        pairs.append((name, a, b))
    return pairs


def augment(arrays: Sequence[np.ndarray], rng: np.random.Generator) -> List[np.ndarray]:
    """The same random flip / 90° rotation for every array in `arrays` (H×W×C)."""
    k = int(rng.integers(4))
    flip = bool(rng.integers(2))
    out = []
    for a in arrays:
        a = np.rot90(a, k, axes=(0, 1))
        out.append(np.ascontiguousarray(a[:, ::-1] if flip else a))
    return out


def random_crop(arrays: Sequence[np.ndarray], size: int, rng: np.random.Generator) -> List[np.ndarray]:
    h, w = arrays[0].shape[:2]
    if h < size or w < size:
        raise ValueError(f"image of {w}x{h} is smaller than the {size}px training patch")
    y, x = int(rng.integers(h - size + 1)), int(rng.integers(w - size + 1))
    return [a[y:y + size, x:x + size] for a in arrays]


def smooth_patch(size: int, rng: np.random.Generator) -> np.ndarray:
    """A synthetic flat or slowly varying colour patch (size×size×3 uint8), like sky or a wall.

    A base colour, a linear ramp (random direction, up to ±0.15 per channel over the patch) and
    one or two broad Gaussian bumps (radius 0.5–2 patch widths, up to ±0.1), quantised to 8 bits.
    scikit-image's training photographs are mostly texture; without such patches a blind denoiser
    learns that low-frequency variation is image content and leaves low-frequency noise on flat
    regions (docs/MODELS.md, "Where the denoiser loses").
    """
    yy, xx = (np.mgrid[0:size, 0:size].astype(np.float32) + 0.5) / size
    img = np.broadcast_to(rng.uniform(0.05, 0.95, 3).astype(np.float32), (size, size, 3)).copy()
    theta = rng.uniform(0, 2 * np.pi)
    ramp = (np.cos(theta) * (xx - 0.5) + np.sin(theta) * (yy - 0.5))[..., None]
    img += ramp * rng.uniform(-0.15, 0.15, 3).astype(np.float32)
    for _ in range(int(rng.integers(1, 3))):
        cy, cx = rng.uniform(-0.5, 1.5, 2)
        radius = rng.uniform(0.5, 2.0)
        bump = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * radius ** 2))[..., None]
        img += bump * rng.uniform(-0.1, 0.1, 3).astype(np.float32)
    return np.round(np.clip(img, 0.0, 1.0) * 255.0).astype(np.uint8)


@dataclass
class PatchSource:
    """Where training pairs come from: clean images + a degradation, or fixed LQ/GT pairs."""

    clean: Optional[List[np.ndarray]] = None          # uint8 H×W×3, degraded on the fly
    degradation: Optional[str] = None
    level_range: Optional[Tuple[float, float]] = None
    pairs: Optional[List[Tuple[np.ndarray, np.ndarray]]] = None  # (lq, gt) uint8
    smooth_fraction: float = 0.0      # clean-image mode: share of patches from smooth_patch
    level_power: float = 1.0          # clean-image mode: how levels are drawn (degrade.sample_level)

    def sample(self, patch: int, rng: np.random.Generator) -> Tuple[np.ndarray, np.ndarray]:
        """One (lq, gt) float32 3×P×P pair."""
        if self.pairs is not None:
            lq, gt = self.pairs[int(rng.integers(len(self.pairs)))]
            lq, gt = augment(random_crop([lq, gt], patch, rng), rng)
            lq, gt = lq.astype(np.float32) / 255.0, gt.astype(np.float32) / 255.0
        else:
            if self.smooth_fraction > 0 and rng.random() < self.smooth_fraction:
                gt = smooth_patch(patch, rng)
            else:
                img = self.clean[int(rng.integers(len(self.clean)))]
                (gt,) = augment(random_crop([img], patch, rng), rng)
            gt = gt.astype(np.float32) / 255.0
            level = sample_level(self.degradation, rng, self.level_range, self.level_power)
            lq = degrade(self.degradation, gt, level, rng)
        return lq.transpose(2, 0, 1).copy(), gt.transpose(2, 0, 1).copy()


class PatchStream(torch.utils.data.IterableDataset):
    """An endless stream of (lq, gt) patches drawn with `self.rng` (saved/restored by the trainer).

    Use with `DataLoader(..., num_workers=0)` for exactly reproducible (and resumable) runs; with
    workers, each worker draws from its own generator seeded from the stream's, so a resumed run
    is statistically, not bitwise, the same.
    """

    def __init__(self, source: PatchSource, patch: int, seed: int):
        super().__init__()
        self.source = source
        self.patch = patch
        self.rng = np.random.default_rng(seed)

    def __iter__(self) -> Iterator[Tuple[np.ndarray, np.ndarray]]:
        info = torch.utils.data.get_worker_info()
        rng = self.rng if info is None else np.random.default_rng([int(self.rng.integers(2 ** 62)), info.id])
        while True:
            yield self.source.sample(self.patch, rng)
