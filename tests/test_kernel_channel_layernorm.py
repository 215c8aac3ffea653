"""`channel_layernorm` (LayerNorm over C, gain, optional residual) equals its PyTorch reference,
and the reference equals the network's ChannelLayerNorm.

Tolerances: kernel_testing.REL_TOL (fp32 2e-5, fp16 2e-3, bf16 1.6e-2, relative to the largest
reference value).
"""

import pytest
import torch

from kernel_testing import REL_TOL, assert_close_report, dtypes_here, kernel_device, poisoned


@pytest.fixture(scope="module")
def env():
    device = kernel_device()
    from irflow_engine.kernels import channel_layernorm

    return device, channel_layernorm


# C not a power of two (masked columns); more rows than one program takes (at most 512 in the
# interpreter) with a masked tail; one wide C.
SHAPES = [(1, 23, 25, 24), (1, 3, 3, 200), (2, 9, 11, 3)]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("with_residual,with_bias", [(False, False), (True, False), (True, True)])
def test_channel_layernorm_matches_reference(env, shape, with_residual, with_bias):
    device, op = env
    g = torch.Generator().manual_seed(0)
    gain = (1 + 0.5 * torch.randn(shape[-1], generator=g)).to(device)
    bias = (2 * torch.randn(shape[-1], generator=g)).to(device) if with_bias else None
    for dtype in dtypes_here(device):
        # An offset mean checks that the variance is taken about it.
        x = (3 + 2 * torch.randn(shape, generator=g)).to(device, dtype)
        res = torch.randn(shape, generator=g).to(device, dtype) if with_residual else None
        out = poisoned(shape, dtype, device)
        got = op.channel_layernorm(x, gain, residual=res, out=out, bias=bias)
        assert got is out
        expected = op.channel_layernorm_reference(x, gain, residual=res, bias=bias)
        assert_close_report(got, expected, REL_TOL[dtype],
                            f"{dtype} {shape} residual={with_residual} bias={with_bias}")


def test_reference_equals_model_layernorm(env):
    device, op = env
    from irflow_engine.models.unet import ChannelLayerNorm

    norm = ChannelLayerNorm(10)
    norm.g.data = torch.linspace(0.5, 1.5, 10).reshape(1, 10, 1, 1)
    x = torch.randn(2, 10, 3, 5, generator=torch.Generator().manual_seed(3))
    expected = norm(x).permute(0, 2, 3, 1)
    torch.testing.assert_close(op.channel_layernorm_reference(x.permute(0, 2, 3, 1), norm.g), expected)
    got = op.channel_layernorm(x.permute(0, 2, 3, 1).contiguous().to(device), norm.g.to(device))
    assert_close_report(got, expected, REL_TOL[torch.float32], "model norm")


def test_channel_layernorm_rejects_bad_arguments(env):
    device, op = env
    with pytest.raises(ValueError, match=r"bias has shape \(5,\), expected \(6,\)"):
        op.channel_layernorm(torch.zeros(1, 3, 5, 6, device=device), torch.ones(6, device=device),
                             bias=torch.zeros(5, device=device))
    x = torch.zeros(1, 3, 5, 6, device=device)
    with pytest.raises(ValueError, match=r"g has shape \(5,\), expected \(6,\)"):
        op.channel_layernorm(x, torch.ones(5, device=device))
    with pytest.raises(ValueError, match="residual"):
        op.channel_layernorm(x, torch.ones(6, device=device), residual=torch.zeros(1, 3, 5, 5, device=device))
