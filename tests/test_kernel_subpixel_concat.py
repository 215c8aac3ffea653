"""`subpixel_concat` and `fold_upsample_conv`: the decoder's upsample → 3×3 conv → bias → skip
concatenation, done as a 2×2 conv on the low-resolution map plus one interleaving copy.

Runs in Triton's CPU interpreter when there is no GPU.
"""

import pytest
import torch
import torch.nn.functional as F

from kernel_testing import assert_close_report, dtypes_here, kernel_device, poisoned


@pytest.fixture(scope="module")
def env():
    device = kernel_device()
    from irflow_engine.kernels import subpixel_concat

    return device, subpixel_concat


# (N, H, W, C, Cs) at low resolution: odd sizes, channel counts not powers of two, a 1×1 map, and
# the U-Net's own equal split.
SHAPES = [(2, 3, 5, 12, 20), (1, 1, 1, 3, 5), (1, 4, 3, 16, 16)]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("with_bias", [True, False])
def test_kernel_matches_reference(env, shape, with_bias):
    """A copy plus one fp32 bias add rounded once: equal to the reference bit for bit."""
    device, op = env
    g = torch.Generator().manual_seed(1)
    n, h, w, c, cs = shape
    for dtype in dtypes_here(device):
        phases = torch.randn(n, h + 1, w + 1, 4 * c, generator=g).to(device, dtype)
        skip = torch.randn(n, 2 * h, 2 * w, cs, generator=g).to(device, dtype)
        bias = torch.randn(c, generator=g).to(device) if with_bias else None
        out = poisoned((n, 2 * h, 2 * w, c + cs), dtype, device)
        got = op.subpixel_concat(phases, skip, bias, out=out)
        assert got is out
        want = op.subpixel_concat_reference(phases, skip, bias)
        assert torch.equal(got.cpu(), want.cpu()), f"{dtype} {shape} bias={with_bias}"


@pytest.mark.parametrize("hw", [(5, 7), (1, 2), (4, 4)])
def test_fold_equals_upsample_then_conv3x3(env, hw):
    """2×2 conv with the folded weights + subpixel_concat == cat(conv3x3(nearest 2×(x)) + b, skip)."""
    device, op = env
    g = torch.Generator().manual_seed(2)
    h, w = hw
    c_in, c, cs = 6, 5, 3
    x = torch.randn(2, c_in, h, w, generator=g, dtype=torch.float64)
    weight = torch.randn(c, c_in, 3, 3, generator=g, dtype=torch.float64)
    bias = torch.randn(c, generator=g, dtype=torch.float64)
    skip = torch.randn(2, cs, 2 * h, 2 * w, generator=g, dtype=torch.float64)
    up = F.conv2d(F.interpolate(x, scale_factor=2, mode="nearest"), weight, bias, padding=1)
    want = torch.cat([up, skip], dim=1).permute(0, 2, 3, 1)

    folded = op.fold_upsample_conv(weight)
    assert folded.shape == (4 * c, c_in, 2, 2) and folded.dtype == torch.float32
    # The algebra alone, in float64 (the folded sums rounded to fp32 once).
    phases64 = F.conv2d(x, op.fold_upsample_conv(weight).double(), padding=1).permute(0, 2, 3, 1).contiguous()
    exact = op.subpixel_concat_reference(phases64, skip.permute(0, 2, 3, 1).contiguous(), bias)
    assert_close_report(exact, want, 1e-6, "folded algebra, float64")
    # The kernel on fp32 phases.
    phases = F.conv2d(x.float(), folded, padding=1).permute(0, 2, 3, 1).contiguous().to(device)
    out = poisoned((2, 2 * h, 2 * w, c + cs), torch.float32, device)
    got = op.subpixel_concat(phases, skip.float().permute(0, 2, 3, 1).contiguous().to(device),
                             bias.float().to(device), out=out)
    assert_close_report(got, want, 2e-6, "kernel, fp32")


def test_fold_rejects_non_3x3(env):
    _, op = env
    with pytest.raises(ValueError, match=r"\[C, Cin, 3, 3\].*\(4, 2, 2, 2\)"):
        op.fold_upsample_conv(torch.zeros(4, 2, 2, 2))


def test_rejects_bad_arguments(env):
    device, op = env
    phases = torch.zeros(1, 3, 4, 8, device=device)  # low resolution 2×3, C = 2
    skip = torch.zeros(1, 4, 6, 3, device=device)
    with pytest.raises(ValueError, match=r"phases must be N×\(H\+1\)×\(W\+1\)×4C"):
        op.subpixel_concat(torch.zeros(1, 3, 4, 6, device=device), skip)
    with pytest.raises(ValueError, match=r"skip has shape \(1, 4, 5, 3\), expected \(1, 4, 6, 3\)"):
        op.subpixel_concat(phases, torch.zeros(1, 4, 5, 3, device=device))
    with pytest.raises(TypeError, match="skip has dtype float16"):
        op.subpixel_concat(phases, skip.half())
    with pytest.raises(ValueError, match=r"bias has shape \(3,\), expected \(2,\)"):
        op.subpixel_concat(phases, skip, torch.zeros(3, device=device))
    with pytest.raises(ValueError, match=r"out has shape \(1, 4, 6, 4\), expected \(1, 4, 6, 5\)"):
        op.subpixel_concat(phases, skip, out=torch.zeros(1, 4, 6, 4, device=device))
