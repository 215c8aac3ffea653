"""ConditionalUNet structure (checkpoint compatibility), padding/cropping, channel LayerNorm."""

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from irflow_engine import PRESETS, ModelConfig
from irflow_engine.models import ChannelLayerNorm, ConditionalUNet, reflect_pad

from conftest import SHAPES


@pytest.mark.parametrize("nf", [64, 32])
def test_state_dict_equals_reference_layout(nf):
    reference = json.loads(SHAPES.read_text())[f"ConditionalUNet(in_nc=3,out_nc=3,nf={nf},depth=4)"]
    with torch.device("meta"):
        model = ConditionalUNet(nf=nf, depth=4)
    ours = {k: list(v.shape) for k, v in model.state_dict().items()}
    assert ours == reference
    assert list(ours) == list(reference)  # same order too


def test_presets():
    assert PRESETS["irflow-unet64"] == ModelConfig(nf=64, depth=4)
    assert PRESETS["irflow-unet32"] == ModelConfig(nf=32, depth=4)
    assert PRESETS["irflow-unet32-d3"] == ModelConfig(nf=32, depth=3)
    with torch.device("meta"):
        n = sum(p.numel() for p in ConditionalUNet.from_config(ModelConfig.from_name("irflow-unet64")).parameters())
    assert n == 137_138_115
    with pytest.raises(KeyError, match="irflow-unet64"):
        ModelConfig.from_name("nope")


@pytest.mark.parametrize("h,w", [(1, 1), (1, 7), (9, 1), (2, 3), (17, 33), (8, 16)])
def test_any_size_in_same_size_out(golden_model, h, w):
    x = torch.rand(2, 3, h, w, generator=torch.Generator().manual_seed(h * 100 + w))
    with torch.no_grad():
        out = golden_model(x, 500)
    assert out.shape == x.shape
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("n,pad", [(5, 3), (8, 7), (3, 2)])
def test_reflect_pad_equals_torch_reflect_where_defined(n, pad):
    x = torch.randn(1, 2, n, n + 1)
    ours = reflect_pad(x, pad, pad)
    assert torch.equal(ours, F.pad(x, (0, pad, 0, pad), mode="reflect"))


@pytest.mark.parametrize("n,pad", [(2, 6), (3, 5), (1, 7), (4, 13)])
def test_reflect_pad_beyond_size_keeps_reflecting(n, pad):
    x = torch.randn(1, 1, n, n)
    ours = reflect_pad(x, pad, pad).numpy()[0, 0]
    if n == 1:
        expected = np.full((n + pad, n + pad), x.item(), dtype=np.float32)
    else:
        expected = np.pad(x.numpy()[0, 0], ((0, pad), (0, pad)), mode="reflect")
    np.testing.assert_array_equal(ours, expected)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_channel_layernorm(dtype):
    g = torch.Generator().manual_seed(1)
    ln = ChannelLayerNorm(6)
    with torch.no_grad():
        ln.g.copy_(torch.rand(1, 6, 1, 1, generator=g) + 0.5)
    x = (torch.randn(2, 6, 5, 4, generator=g) * 3 + 1).to(dtype)
    out = ln(x)
    assert out.dtype == dtype
    xd = x.double()
    mean = xd.mean(1, keepdim=True)
    var = ((xd - mean) ** 2).mean(1, keepdim=True)  # biased variance, no bias term
    expected = (xd - mean) / torch.sqrt(var + 1e-5) * ln.g.double()
    tol = {torch.float32: 1e-5, torch.float16: 2e-3, torch.bfloat16: 1.6e-2}[dtype]
    assert (out.double() - expected).abs().max() <= tol * expected.abs().max()


@pytest.mark.parametrize("dim", [16, 40])
@pytest.mark.parametrize("dtype,tol", [(torch.float32, 2e-6), (torch.float16, 4e-3), (torch.bfloat16, 2e-2)])
def test_exported_attention_equals_the_reference_order(dim, dtype, tol):
    """The factored form an exported graph uses (v and to_out folded into pixel-free matrices)
    equals LinearAttention's own order of operations, relative to the output's largest value."""
    from irflow_engine.models.unet import LinearAttention

    g = torch.Generator().manual_seed(dim)
    attn = LinearAttention(dim)
    with torch.no_grad():
        for p in attn.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.5)
        attn.to_out[1].g.copy_(torch.rand(attn.to_out[1].g.shape, generator=g) + 0.5)
    attn = attn.to(dtype)
    x = (torch.randn(2, dim, 7, 9, generator=g) * 2).to(dtype)
    with torch.no_grad():
        expected = attn(x).double()
        got = attn._factored(x)
    assert got.dtype == dtype and got.shape == x.shape
    assert (got.double() - expected).abs().max() <= tol * expected.abs().max()
