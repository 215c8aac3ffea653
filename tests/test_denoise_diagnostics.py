"""benchmarks/denoise_diagnostics.py: the texture binning and the binned PSNR, by hand."""

import importlib.util
from pathlib import Path

import numpy as np

spec = importlib.util.spec_from_file_location(
    "denoise_diagnostics", Path(__file__).parents[1] / "benchmarks" / "denoise_diagnostics.py")
diag = importlib.util.module_from_spec(spec)
spec.loader.exec_module(diag)


def test_local_sd_and_binned_psnr_by_hand():
    rng = np.random.default_rng(3)
    clean = np.full((40, 60, 3), 120, np.uint8)
    clean[:, 30:] = rng.integers(0, 256, (40, 30, 3), dtype=np.uint8)  # right half: heavy texture
    sd = diag.local_sd(clean)
    assert sd.shape == (40, 60)
    assert np.allclose(sd[:, :26], 0, atol=1e-3) and (sd[:, 34:] > 16).all()
    restored = clean.astype(np.int16)
    restored[:, :30] += 3                                              # flat half: error 3 everywhere
    restored[:, 30:] += rng.choice([-5, 5], (40, 30, 3)).astype(np.int16)
    restored = np.clip(restored, 0, 255)
    cells = diag.binned_psnr(restored, clean, sd)
    flat_fraction, flat_psnr = cells[0]
    assert flat_fraction == (sd < 2).mean()
    mask = sd < 2
    err = ((restored.astype(float) - clean) ** 2).mean(2)[mask].mean()
    assert np.isclose(flat_psnr, 10 * np.log10(255 ** 2 / err))
    assert np.isclose(sum(f for f, _ in cells), 1.0)


def test_low_frequency_share_and_channel_correlation():
    rng = np.random.default_rng(4)
    white = rng.standard_normal((128, 128, 3))
    # white noise: the share is the low disc's area in the unit frequency square, pi / 8^2
    assert abs(diag.low_frequency_share(white, 8.0) - np.pi / 64) < 0.01
    # a 9x9 box blur keeps mostly the low frequencies
    k = np.ones(9) / 9
    blurred = np.apply_along_axis(lambda v: np.convolve(np.tile(v, 3), k, "same")[len(v):2 * len(v)], 0, white)
    blurred = np.apply_along_axis(lambda v: np.convolve(np.tile(v, 3), k, "same")[len(v):2 * len(v)], 1, blurred)
    assert diag.low_frequency_share(blurred, 8.0) > 0.5
    assert abs(diag.channel_correlation(white)) < 0.05
    grey = rng.standard_normal((128, 128, 1)) + 0.5 * white   # shared component: corr = 1 / 1.25
    assert abs(diag.channel_correlation(grey) - 0.8) < 0.03
