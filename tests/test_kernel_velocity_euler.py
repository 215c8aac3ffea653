"""`velocity_euler` (3×3 velocity head on the padded NHWC features, cropped, fused with
x ← x − w·(D [+ prev])) equals its PyTorch reference.

Features in fp32/fp16 (bf16 on a GPU); the state, D and the update are fp32. Tolerances relative
to the largest reference value: fp32 2e-5; fp16 2e-3, bf16 1.6e-2 (the head runs with 16-bit
inputs, as under autocast).
"""

import pytest
import torch

from kernel_testing import REL_TOL, assert_close_report, dtypes_here, kernel_device, poisoned


@pytest.fixture(scope="module")
def env():
    device = kernel_device()
    from irflow_engine.kernels import velocity_euler

    return device, velocity_euler


# (N, Hp, Wp, C, H, W): odd crops of a padded map; C below and above one 16-channel chunk;
# more pixels than one program takes (64 on a GPU, at most 512 in the interpreter).
CASES = [(2, 8, 16, 12, 7, 13), (1, 24, 32, 40, 23, 25)]


def _inputs(case, dtype, device, seed=0):
    n, hp, wp, c, h, w = case
    g = torch.Generator().manual_seed(seed)
    feats = torch.randn(n, hp, wp, c, generator=g).to(device, dtype)
    weight = (torch.randn(3, c, 3, 3, generator=g) / c ** 0.5).to(device)
    bias = torch.randn(3, generator=g).to(device)
    x = torch.randn(n, 3, h, w, generator=g).to(device)
    prev = torch.randn(n, 3, h, w, generator=g).to(device)
    return feats, weight, bias, x, prev


@pytest.mark.parametrize("case", CASES)
def test_velocity_euler_matches_reference(env, case):
    device, op = env
    for dtype in dtypes_here(device):
        feats, weight, bias, x, prev = _inputs(case, dtype, device)
        tol = REL_TOL[dtype]
        ref_out, ref_d = op.velocity_euler_reference(feats, weight, bias, x, 0.8)
        # Euler step, into a poisoned buffer.
        out = poisoned(x.shape, torch.float32, device)
        assert op.velocity_euler(feats, weight, bias, x, 0.8, out=out) is out
        assert_close_report(out, ref_out, tol, f"{dtype} {case} euler")
        # Update with an earlier velocity plus D itself (Heun corrector / paired step).
        ref_out, ref_d = op.velocity_euler_reference(feats, weight, bias, x, 0.25, prev=prev)
        out, d = poisoned(x.shape, torch.float32, device), poisoned(x.shape, torch.float32, device)
        packed = op.pack_velocity_weight(weight, dtype)
        op.velocity_euler(feats, packed, bias, x, 0.25, out=out, prev=prev, d_out=d)
        assert_close_report(out, ref_out, tol, f"{dtype} {case} prev")
        assert_close_report(d, ref_d, tol, f"{dtype} {case} D")


def test_velocity_euler_in_place_and_output_dtype(env):
    device, op = env
    feats, weight, bias, x, _ = _inputs(CASES[0], torch.float32, device, seed=1)
    ref_out, _ = op.velocity_euler_reference(feats, weight, bias, x, 1.0)
    state = x.clone()
    op.velocity_euler(feats, weight, bias, state, 1.0, out=state)
    assert_close_report(state, ref_out, REL_TOL[torch.float32], "in place")
    half = poisoned(x.shape, torch.float16, device)
    op.velocity_euler(feats, weight, bias, x, 1.0, out=half)
    assert_close_report(half, ref_out, REL_TOL[torch.float16], "fp16 output")


def test_velocity_euler_rejects_bad_arguments(env):
    device, op = env
    feats, weight, bias, x, _ = _inputs(CASES[0], torch.float32, device)
    with pytest.raises(ValueError, match="features must cover the image"):
        op.velocity_euler(feats, weight, bias, torch.zeros(2, 3, 9, 13, device=device), 1.0)
    with pytest.raises(ValueError, match=r"weight has shape \(3, 11, 3, 3\)"):
        op.velocity_euler(feats, weight[:, :11].contiguous(), bias, x, 1.0)
    with pytest.raises(TypeError, match="x has dtype float16"):
        op.velocity_euler(feats, weight, bias, x.half(), 1.0)
    with pytest.raises(ValueError, match="prev"):
        op.velocity_euler(feats, weight, bias, x, 1.0, prev=torch.zeros(2, 3, 7, 12, device=device))
