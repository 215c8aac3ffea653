"""`linear_attention` (q/k softmaxes, k·vᵀ context, contextᵀ·q) equals its PyTorch reference, and
the reference equals the network's LinearAttention between its two 1×1 convolutions.

The first pass splits the pixels of each head over several programs (online softmax) and the
second merges them: tests force several splits and partial tiles (odd H·W). Tolerances:
kernel_testing.REL_TOL per storage dtype, relative to the largest reference value (fp16/bf16 run
the two products with 16-bit inputs, as autocast does).
"""

import pytest
import torch

from kernel_testing import REL_TOL, assert_close_report, dtypes_here, kernel_device, poisoned


@pytest.fixture(scope="module")
def env():
    device = kernel_device()
    from irflow_engine.kernels import linear_attention

    return device, linear_attention


@pytest.mark.parametrize("n,h,w,heads,splits", [(2, 5, 7, 2, 3), (1, 9, 11, 4, None)])
def test_linear_attention_matches_reference(env, n, h, w, heads, splits):
    device, op = env
    g = torch.Generator().manual_seed(0)
    for dtype in dtypes_here(device):
        # Spread logits (×3) so both softmaxes are far from uniform.
        qkv = (3 * torch.randn(n, h, w, 3 * heads * 32, generator=g)).to(device, dtype)
        out = poisoned((n, h, w, heads * 32), dtype, device)
        got = op.linear_attention(qkv, heads, out=out, splits=splits, block_p=16)
        assert got is out
        assert_close_report(got, op.linear_attention_reference(qkv, heads), REL_TOL[dtype],
                            f"{dtype} {n}x{h}x{w} heads={heads} splits={splits}")


def test_linear_attention_default_blocks(env):
    device, op = env
    qkv = torch.randn(1, 3, 5, 3 * 4 * 32, generator=torch.Generator().manual_seed(1)).to(device)
    assert_close_report(op.linear_attention(qkv, 4), op.linear_attention_reference(qkv, 4),
                        REL_TOL[torch.float32], "default blocks")


def test_reference_equals_model_attention(env):
    device, op = env
    from irflow_engine.models.unet import LinearAttention

    torch.manual_seed(2)
    attn = LinearAttention(12).eval()
    x = torch.randn(2, 12, 5, 3)
    with torch.no_grad():
        expected = attn(x)
        qkv = attn.to_qkv(x).permute(0, 2, 3, 1)
        core = op.linear_attention_reference(qkv, attn.heads, attn.dim_head).permute(0, 3, 1, 2)
        torch.testing.assert_close(attn.to_out(core), expected, rtol=1e-5, atol=1e-6)


def test_linear_attention_rejects_bad_arguments(env):
    device, op = env
    with pytest.raises(ValueError, match=r"qkv has 96 channels, expected .* = 384"):
        op.linear_attention(torch.zeros(1, 3, 3, 96, device=device), 4)
    with pytest.raises(ValueError, match="dim_head must be a power of two"):
        op.linear_attention(torch.zeros(1, 3, 3, 3 * 4 * 24, device=device), 4, dim_head=24)
    with pytest.raises(ValueError, match=r"out has shape"):
        op.linear_attention(torch.zeros(1, 3, 3, 384, device=device), 4,
                            out=torch.zeros(1, 3, 3, 384, device=device))
