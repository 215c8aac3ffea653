"""`upsample_nearest2x` equals `F.interpolate(scale_factor=2, mode="nearest")` exactly (a copy).

Runs in Triton's CPU interpreter when there is no GPU.
"""

import pytest
import torch

from kernel_testing import dtypes_here, kernel_device, poisoned


@pytest.fixture(scope="module")
def env():
    device = kernel_device()
    from irflow_engine.kernels import upsample_nearest

    return device, upsample_nearest


# Odd H, W; C not a power of two and above one program's 128 channels (two channel blocks, one
# masked); a batch of 2.
SHAPES = [(2, 5, 7, 12), (1, 3, 1, 200), (1, 1, 1, 3)]


@pytest.mark.parametrize("shape", SHAPES)
def test_upsample_matches_interpolate(env, shape):
    device, op = env
    g = torch.Generator().manual_seed(0)
    n, h, w, c = shape
    for dtype in dtypes_here(device):
        x = torch.randn(shape, generator=g).to(device, dtype)
        out = poisoned((n, 2 * h, 2 * w, c), dtype, device)
        got = op.upsample_nearest2x(x, out=out)
        assert got is out
        assert torch.equal(got.cpu(), op.upsample_nearest2x_reference(x).cpu()), f"{dtype} {shape}"


def test_upsample_rejects_bad_arguments(env):
    device, op = env
    x = torch.zeros(1, 3, 4, 5, device=device)
    with pytest.raises(ValueError, match=r"out has shape \(1, 6, 7, 5\), expected \(1, 6, 8, 5\)"):
        op.upsample_nearest2x(x, out=torch.zeros(1, 6, 7, 5, device=device))
    with pytest.raises(ValueError, match="contiguous"):
        op.upsample_nearest2x(x.transpose(1, 2))
    with pytest.raises(TypeError, match="dtype"):
        op.upsample_nearest2x(x, out=torch.zeros(1, 6, 8, 5, device=device, dtype=torch.float16))
