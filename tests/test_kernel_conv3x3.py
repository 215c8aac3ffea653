"""`conv3x3` (implicit-GEMM 3×3 convolution with fused ResBlock epilogues) equals its PyTorch
reference, and through it `torch.nn.functional.conv2d` on the NCHW tensors.

Tolerances (relative to the largest reference value): kernel_testing.REL_TOL per storage dtype
(fp32 2e-5, fp16 2e-3, bf16 1.6e-2): 16-bit products accumulate in fp32 on both sides, and
each side rounds once to the storage dtype. Runs in Triton's CPU interpreter when there is no GPU.
"""

import pytest
import torch

from kernel_testing import REL_TOL, assert_close_report, dtypes_here, kernel_device, poisoned


@pytest.fixture(scope="module")
def env():
    device = kernel_device()
    from irflow_engine.kernels import conv3x3

    return device, conv3x3


# (N, H, W, Cin, Cout): odd H, W; channel counts not powers of two; Cin = 70 takes two channel
# chunks (one of them masked); a 1-pixel-wide map where every neighbour but the centre is padding.
SHAPES = [(2, 5, 7, 12, 20), (1, 9, 11, 3, 5), (1, 4, 3, 70, 24), (1, 6, 1, 8, 16)]


def _operands(shape, dtype, device, seed):
    g = torch.Generator().manual_seed(seed)
    n, h, w, c_in, c_out = shape
    x = torch.randn(n, h, w, c_in, generator=g).to(device, dtype)
    weight4 = torch.randn(c_out, c_in, 3, 3, generator=g) / (3 * c_in ** 0.5)
    bias = torch.randn(c_out, generator=g).to(device)
    scale = (0.5 * torch.randn(c_out, generator=g)).to(device)
    shift = torch.randn(c_out, generator=g).to(device)
    residual = torch.randn(n, h, w, c_out, generator=g).to(device, dtype)
    return x, weight4, bias, scale, shift, residual


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("epilogue", ["none", "film_silu", "silu_residual"])
def test_conv3x3_matches_reference(env, shape, epilogue):
    device, op = env
    for dtype in dtypes_here(device):
        _check_against_reference(op, device, shape, epilogue, dtype, seed=1, impl="auto")


def _check_against_reference(op, device, shape, epilogue, dtype, seed, impl):
    x, weight4, bias, scale, shift, residual = _operands(shape, dtype, device, seed=seed)
    weight = op.pack_conv3x3_weight(weight4, dtype).to(device)
    kwargs = dict(epilogue=epilogue)
    if epilogue == "film_silu":
        kwargs.update(scale=scale, shift=shift)
    if epilogue == "silu_residual":
        kwargs.update(residual=residual)
    out = poisoned(shape[:3] + (shape[4],), dtype, device)
    got = op.conv3x3(x, weight, bias, out=out, impl=impl, **kwargs)
    assert got is out and got.dtype == dtype
    expected = op.conv3x3_reference(x, weight, bias, **kwargs)
    assert_close_report(got, expected, REL_TOL[dtype], f"{impl} {dtype} {shape} {epilogue}")


# The TMA kernel's shapes: channel counts multiples of 8 (16-byte rows); H, W not multiples of
# the pixel tile (stores clipped at the image edge); Cin = 72 overhangs a 64-channel chunk.
TMA_SHAPES = [(2, 5, 7, 16, 24), (1, 9, 11, 8, 40), (1, 4, 3, 72, 16)]


@pytest.mark.parametrize("shape", TMA_SHAPES)
@pytest.mark.parametrize("epilogue", ["none", "film_silu", "silu_residual"])
def test_conv3x3_tma_matches_reference(env, shape, epilogue):
    device, op = env
    if device.type == "cuda" and torch.cuda.get_device_capability() < (9, 0):
        pytest.skip("the TMA kernel needs compute capability 9.0+")
    for dtype in [d for d in dtypes_here(device) if d != torch.float32]:
        _check_against_reference(op, device, shape, epilogue, dtype, seed=3, impl="tma")


def test_conv3x3_tma_refuses_what_it_cannot_take(env):
    device, op = env
    x = torch.randn(1, 4, 5, 12, device=device, dtype=torch.float16)
    weight = op.pack_conv3x3_weight(torch.randn(16, 12, 3, 3), torch.float16).to(device)
    with pytest.raises(ValueError, match="multiples of 16 bytes"):
        op.conv3x3(x, weight, impl="tma")
    with pytest.raises(ValueError, match="fp16/bf16"):
        op.conv3x3(x.float(), weight.float(), impl="tma")
    with pytest.raises(ValueError, match="unknown impl"):
        op.conv3x3(x, weight, impl="wgmma")
    # A contiguous view starting 4 elements (8 bytes) into its storage: TMA needs 16-byte alignment.
    shifted = torch.randn(330, device=device, dtype=torch.float16)[4:4 + 320].view(1, 4, 5, 16)
    w16 = op.pack_conv3x3_weight(torch.randn(16, 16, 3, 3), torch.float16).to(device)
    with pytest.raises(ValueError, match="x not 16-byte aligned"):
        op.conv3x3(shifted, w16, impl="tma")


def test_conv3x3_equals_conv2d_without_bias(env):
    """The packing and the padding agree with PyTorch's own NCHW convolution (fp32)."""
    device, op = env
    x, weight4, _, _, _, _ = _operands((2, 7, 5, 6, 10), torch.float32, device, seed=2)
    got = op.conv3x3(x, op.pack_conv3x3_weight(weight4, torch.float32).to(device))
    expected = torch.nn.functional.conv2d(x.permute(0, 3, 1, 2).cpu(), weight4, padding=1).permute(0, 2, 3, 1)
    assert_close_report(got, expected, REL_TOL[torch.float32], "vs conv2d")


def test_conv3x3_rejects_bad_arguments(env):
    device, op = env
    x = torch.randn(1, 4, 5, 6, device=device)
    weight = op.pack_conv3x3_weight(torch.randn(8, 6, 3, 3), torch.float32).to(device)
    with pytest.raises(ValueError, match="9·Cin = 54 rows"):
        op.conv3x3(x, weight[:50])
    with pytest.raises(ValueError, match="3×3 convolution weight"):
        op.pack_conv3x3_weight(torch.randn(8, 6, 1, 1), torch.float32)
    with pytest.raises(TypeError, match="dtype"):
        op.conv3x3(x.half(), weight)
    with pytest.raises(ValueError, match="unknown epilogue"):
        op.conv3x3(x, weight, epilogue="gelu")
    with pytest.raises(ValueError, match="needs scale and shift"):
        op.conv3x3(x, weight, epilogue="film_silu")
    with pytest.raises(ValueError, match=r"bias has shape \(7,\), expected \(8,\)"):
        op.conv3x3(x, weight, torch.zeros(7, device=device))
    with pytest.raises(ValueError, match="residual has shape"):
        op.conv3x3(x, weight, epilogue="silu_residual", residual=torch.zeros(1, 4, 5, 6, device=device))
    with pytest.raises(ValueError, match="must not alias x"):
        op.conv3x3(x, op.pack_conv3x3_weight(torch.randn(6, 6, 3, 3), torch.float32).to(device), out=x)
