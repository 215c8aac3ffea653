"""Synthetic degradations: deterministic for a seed, strength set by the level."""

import numpy as np
import pytest

from irflow_engine.degrade import LEVEL_RANGES, degrade, sample_level, streak_kernel


def _image(seed=0, size=(40, 56)):
    rng = np.random.default_rng(seed)
    # A smooth image away from 0 and 1, so clipping does not hide the noise.
    base = rng.uniform(0.3, 0.7, size=(4, 4, 3))
    return np.kron(base, np.ones((size[0] // 4, size[1] // 4, 1))).astype(np.float32)


@pytest.mark.parametrize("name,level", [("noise", 25.0), ("rain", 0.6)])
def test_deterministic_for_a_seed(name, level):
    x = _image()
    a = degrade(name, x, level, np.random.default_rng(7))
    b = degrade(name, x, level, np.random.default_rng(7))
    c = degrade(name, x, level, np.random.default_rng(8))
    assert a.dtype == np.float32 and a.shape == x.shape
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert a.min() >= 0 and a.max() <= 1


def test_noise_sigma_is_the_level():
    x = _image(size=(128, 128))
    for sigma in (5.0, 15.0, 30.0):
        y = degrade("noise", x, sigma, np.random.default_rng(1))
        assert np.std(y - x) * 255 == pytest.approx(sigma, rel=0.05)


def test_rain_strength_grows_with_level():
    x = _image(size=(96, 96))
    strength = [np.abs(degrade("rain", x, lv, np.random.default_rng(3)) - x).mean() for lv in (0.2, 0.6, 1.0)]
    assert strength[0] > 0.002
    assert strength[0] < strength[1] < strength[2]
    np.testing.assert_array_equal(degrade("rain", x, 0.0, np.random.default_rng(3)), x)
    # Screen blending only brightens.
    assert (degrade("rain", x, 1.0, np.random.default_rng(3)) >= x - 1e-6).all()


def test_streak_kernel():
    k = streak_kernel(9, 0.0)
    assert k.shape == (9, 9) and k.sum() == pytest.approx(1.0)
    assert np.count_nonzero(k[:, 4]) == 9  # vertical line through the centre


def test_levels_and_errors():
    rng = np.random.default_rng(0)
    lo, hi = LEVEL_RANGES["noise"]
    assert all(lo <= sample_level("noise", rng) <= hi for _ in range(20))
    # power 1 is the uniform draw, value for value; power 2 puts half the draws in the lowest quarter
    a, b = np.random.default_rng(3), np.random.default_rng(3)
    assert [sample_level("noise", a, (5, 45)) for _ in range(50)] == [float(b.uniform(5, 45)) for _ in range(50)]
    levels = np.array([sample_level("noise", rng, (10, 50), power=2.0) for _ in range(4000)])
    assert levels.min() >= 10 and levels.max() < 50
    assert abs(np.mean(levels < 20) - 0.5) < 0.03          # binomial sd 0.008
    assert abs(np.mean(levels) - (10 + 40 / 3)) < 0.6       # E[u**2] = 1/3; sd of the mean ~0.19
    with pytest.raises(ValueError, match="unknown degradation"):
        degrade("fog", _image(), 1.0, rng)
    with pytest.raises(ValueError, match="float32"):
        degrade("noise", _image().astype(np.float64), 1.0, rng)
    with pytest.raises(ValueError, match=">= 0"):
        degrade("noise", _image(), -1.0, rng)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        degrade("rain", _image(), 2.0, rng)
