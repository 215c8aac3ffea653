"""`film_silu` (SiLU(x·(scale+1)+shift)) equals its PyTorch reference.

Tolerances (relative to the largest reference value): fp32 2e-5, fp16 2e-3, bf16 1.6e-2 — see
kernel_testing.REL_TOL. Runs in Triton's CPU interpreter when there is no GPU.
"""

import pytest
import torch

from kernel_testing import REL_TOL, assert_close_report, dtypes_here, kernel_device, poisoned


@pytest.fixture(scope="module")
def env():
    device = kernel_device()
    from irflow_engine.kernels import film_silu

    return device, film_silu


# Odd H, W; C not a power of two; more elements than one program's block (1024 on a GPU, at
# most 8192 in the interpreter), so several programs and a masked tail.
SHAPES = [(2, 9, 11, 45), (1, 3, 5, 3)]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("per_image", [False, True])
def test_film_silu_matches_reference(env, shape, per_image):
    device, op = env
    g = torch.Generator().manual_seed(0)
    n, _, _, c = shape
    film_shape = (n, c) if per_image else (c,)
    scale = torch.randn(film_shape, generator=g).to(device)
    shift = torch.randn(film_shape, generator=g).to(device)
    for dtype in dtypes_here(device):
        x = (2 * torch.randn(shape, generator=g)).to(device, dtype)
        out = poisoned(shape, dtype, device)
        got = op.film_silu(x, scale, shift, out=out)
        assert got is out and got.dtype == dtype
        assert_close_report(got, op.film_silu_reference(x, scale, shift), REL_TOL[dtype], f"{dtype} {shape}")


def test_film_silu_in_place(env):
    device, op = env
    g = torch.Generator().manual_seed(1)
    x = torch.randn(1, 5, 3, 6, generator=g).to(device)
    scale, shift = torch.randn(6, generator=g).to(device), torch.randn(6, generator=g).to(device)
    expected = op.film_silu_reference(x, scale, shift)
    op.film_silu(x, scale, shift, out=x)
    assert_close_report(x, expected, REL_TOL[torch.float32], "in place")


def test_film_silu_rejects_bad_arguments(env):
    device, op = env
    x = torch.zeros(1, 3, 5, 6, device=device)
    with pytest.raises(ValueError, match=r"scale has shape \(5,\), expected \(6,\)"):
        op.film_silu(x, torch.zeros(5, device=device), torch.zeros(5, device=device))
    with pytest.raises(ValueError, match="shift"):
        op.film_silu(x, torch.zeros(6, device=device), torch.zeros(7, device=device))
    with pytest.raises(ValueError, match="contiguous"):
        op.film_silu(x.transpose(1, 2), torch.zeros(6, device=device), torch.zeros(6, device=device))
    with pytest.raises(TypeError, match="dtype"):
        op.film_silu(x.double(), torch.zeros(6, device=device), torch.zeros(6, device=device))
