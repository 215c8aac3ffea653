"""Synthetic degradations with levels (the paper's multilevel data distribution flows).

Each degradation is a function `(image, level, rng) -> degraded` on float32 H×W×3 numpy images in
[0, 1], deterministic for a given `np.random.Generator` state, whose `level` sets its strength:

- "noise": additive white Gaussian noise, level = σ in 0–255 units (the reference configs' unit);
  the result is clipped to [0, 1] as a stored photograph would be.
- "rain": rain streaks; level ∈ [0, 1] scales density, length and intensity together. Sparse
  random seeds are motion-blurred along one angle (near vertical) into streaks, softened, and
  screen-blended onto the image: y = 1 − (1 − x)(1 − s).

`LEVEL_RANGES` holds each degradation's training range; `sample_level` draws from it.
"""

from __future__ import annotations

import math
from typing import Callable, Dict, Tuple

import numpy as np

Degradation = Callable[[np.ndarray, float, np.random.Generator], np.ndarray]


def gaussian_noise(image: np.ndarray, level: float, rng: np.random.Generator) -> np.ndarray:
    """image + N(0, (level/255)²), clipped to [0, 1]."""
    _check(image, level)
    noise = rng.standard_normal(image.shape, dtype=np.float32) * np.float32(level / 255.0)
    return np.clip(image + noise, 0.0, 1.0).astype(np.float32)


def streak_kernel(length: int, angle_deg: float) -> np.ndarray:
    """A normalised line of `length` pixels through the centre at `angle_deg` from vertical."""
    size = length if length % 2 == 1 else length + 1
    k = np.zeros((size, size), np.float32)
    c = size // 2
    a = math.radians(angle_deg)
    dy, dx = math.cos(a), math.sin(a)
    for s in np.linspace(-(length - 1) / 2, (length - 1) / 2, 2 * length):
        y, x = int(round(c + s * dy)), int(round(c + s * dx))
        if 0 <= y < size and 0 <= x < size:
            k[y, x] = 1.0
    return k / k.sum()


def rain_layer(shape: Tuple[int, int], level: float, rng: np.random.Generator) -> np.ndarray:
    """An H×W streak layer in [0, 1] whose density, length and brightness grow with `level`."""
    from scipy.ndimage import convolve, gaussian_filter

    h, w = shape
    density = 0.002 + 0.018 * level            # fraction of pixels that seed a streak
    length = int(round(8 + 32 * level))        # streak length in pixels
    intensity = 0.5 + 0.5 * level
    angle = float(rng.uniform(-20.0, 20.0))
    seeds = (rng.random((h, w), dtype=np.float32) < density).astype(np.float32)
    seeds *= rng.uniform(0.6, 1.0, size=(h, w)).astype(np.float32)
    streaks = convolve(seeds, streak_kernel(length, angle), mode="wrap")
    streaks = gaussian_filter(streaks, sigma=0.6)
    peak = float(np.percentile(streaks[streaks > 0], 99)) if np.any(streaks > 0) else 1.0
    return np.clip(streaks / max(peak, 1e-6) * intensity, 0.0, 1.0).astype(np.float32)


def rain_streaks(image: np.ndarray, level: float, rng: np.random.Generator) -> np.ndarray:
    """Screen-blend a rain layer of strength `level` ∈ [0, 1] onto the image."""
    _check(image, level)
    if not 0.0 <= level <= 1.0:
        raise ValueError(f"rain level must be in [0, 1], got {level}")
    if level == 0.0:
        return image.astype(np.float32, copy=True)
    s = rain_layer(image.shape[:2], level, rng)[..., None]
    return (1.0 - (1.0 - image) * (1.0 - s)).astype(np.float32)


DEGRADATIONS: Dict[str, Degradation] = {"noise": gaussian_noise, "rain": rain_streaks}
LEVEL_RANGES: Dict[str, Tuple[float, float]] = {"noise": (0.0, 50.0), "rain": (0.2, 1.0)}


def degrade(name: str, image: np.ndarray, level: float, rng: np.random.Generator) -> np.ndarray:
    try:
        fn = DEGRADATIONS[name]
    except KeyError:
        raise ValueError(f"unknown degradation {name!r}; choose one of {sorted(DEGRADATIONS)}") from None
    return fn(image, level, rng)


def sample_level(name: str, rng: np.random.Generator, level_range=None, power: float = 1.0) -> float:
    """A level in `level_range` (default: the degradation's): lo + (hi - lo)·u**power, u uniform in
    [0, 1). power 1 is uniform (the same draws as before the option existed); power > 1 favours the
    low levels (power 2: half the draws in the lowest quarter of the range)."""
    lo, hi = level_range if level_range is not None else LEVEL_RANGES[name]
    if power == 1.0:
        return float(rng.uniform(lo, hi))
    return float(lo + (hi - lo) * rng.random() ** power)


def _check(image: np.ndarray, level: float) -> None:
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.float32:
        raise ValueError(f"degradations take float32 H×W×3 images, got {image.dtype} {image.shape}")
    if level < 0:
        raise ValueError(f"degradation level must be >= 0, got {level}")
