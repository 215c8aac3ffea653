"""`concat_channels` equals `torch.cat` along the channel axis exactly (a copy).

Runs in Triton's CPU interpreter when there is no GPU.
"""

import pytest
import torch

from kernel_testing import dtypes_here, kernel_device, poisoned


@pytest.fixture(scope="module")
def env():
    device = kernel_device()
    from irflow_engine.kernels import concat_channels

    return device, concat_channels


# (N, H, W, Ca, Cb): odd sizes, channel counts not powers of two, a total past a power of two
# (masked columns), the U-Net's own 2:1 split, and a single channel on one side.
SHAPES = [(2, 5, 7, 12, 20), (1, 3, 9, 64, 128), (1, 4, 3, 1, 6)]


@pytest.mark.parametrize("shape", SHAPES)
def test_concat_matches_torch_cat(env, shape):
    device, op = env
    g = torch.Generator().manual_seed(0)
    n, h, w, ca, cb = shape
    for dtype in dtypes_here(device):
        a = torch.randn(n, h, w, ca, generator=g).to(device, dtype)
        b = torch.randn(n, h, w, cb, generator=g).to(device, dtype)
        out = poisoned((n, h, w, ca + cb), dtype, device)
        got = op.concat_channels(a, b, out=out)
        assert got is out
        assert torch.equal(got.cpu(), op.concat_channels_reference(a, b).cpu()), f"{dtype} {shape}"


def test_concat_rejects_bad_arguments(env):
    device, op = env
    a = torch.zeros(1, 3, 4, 5, device=device)
    with pytest.raises(ValueError, match=r"b has shape \(1, 3, 5, 2\), expected \(1, 3, 4, 2\)"):
        op.concat_channels(a, torch.zeros(1, 3, 5, 2, device=device))
    with pytest.raises(TypeError, match="dtype"):
        op.concat_channels(a, torch.zeros(1, 3, 4, 2, device=device, dtype=torch.float16))
    with pytest.raises(ValueError, match=r"out has shape \(1, 3, 4, 6\), expected \(1, 3, 4, 7\)"):
        op.concat_channels(a, torch.zeros(1, 3, 4, 2, device=device), out=torch.zeros(1, 3, 4, 6, device=device))
