"""`silu_residual` (SiLU(h) + residual) equals its PyTorch reference.

Tolerances: kernel_testing.REL_TOL (fp32 2e-5, fp16 2e-3, bf16 1.6e-2, relative to the largest
reference value).
"""

import pytest
import torch

from kernel_testing import REL_TOL, assert_close_report, dtypes_here, kernel_device, poisoned


@pytest.fixture(scope="module")
def env():
    device = kernel_device()
    from irflow_engine.kernels import silu_residual

    return device, silu_residual


# More elements than one program's block (1024 on a GPU, at most 8192 in the interpreter).
@pytest.mark.parametrize("shape", [(2, 9, 11, 45), (1, 1, 3, 5)])
def test_silu_residual_matches_reference(env, shape):
    device, op = env
    g = torch.Generator().manual_seed(0)
    for dtype in dtypes_here(device):
        h = (3 * torch.randn(shape, generator=g)).to(device, dtype)
        r = torch.randn(shape, generator=g).to(device, dtype)
        out = poisoned(shape, dtype, device)
        got = op.silu_residual(h, r, out=out)
        assert got is out
        assert_close_report(got, op.silu_residual_reference(h, r), REL_TOL[dtype], f"{dtype} {shape}")
        # In place over h, as the backend uses it.
        expected = op.silu_residual_reference(h, r)
        op.silu_residual(h, r, out=h)
        assert_close_report(h, expected, REL_TOL[dtype], f"{dtype} {shape} in place")


def test_silu_residual_rejects_bad_arguments(env):
    device, op = env
    h = torch.zeros(1, 3, 5, 6, device=device)
    with pytest.raises(ValueError, match=r"residual has shape \(1, 3, 5, 7\)"):
        op.silu_residual(h, torch.zeros(1, 3, 5, 7, device=device))
    with pytest.raises(TypeError, match="residual has dtype float16"):
        op.silu_residual(h, h.half())
    with pytest.raises(ValueError, match="out"):
        op.silu_residual(h, h, out=torch.zeros(1, 3, 5, 5, device=device))
