"""Helpers for the Triton kernel tests (`tests/test_kernel_<op>.py`).

Kernels run on the GPU when there is one, else in Triton's CPU interpreter (TRITON_INTERPRET=1,
set by conftest.py); without Triton the tests skip with the reason.
"""

from __future__ import annotations

import pytest
import torch

# Tolerances per storage dtype, relative to the largest reference magnitude of each check.
# fp32: both sides compute in fp32, only the order of operations differs.
# fp16/bf16: the kernel rounds once to the storage dtype (fp16 ulp 2^-11, bf16 2^-8) where the
# reference may round at a different point; products in 16-bit inputs with fp32 accumulation.
REL_TOL = {torch.float32: 2e-5, torch.float16: 2e-3, torch.bfloat16: 1.6e-2}


def kernel_device() -> torch.device:
    """The device kernels run on here, or skip the test saying why there is none."""
    from irflow_engine.kernels import interpreter_enabled, triton_unavailable_reason

    reason = triton_unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
    if interpreter_enabled():
        return torch.device("cpu")
    if torch.cuda.is_available():
        return torch.device("cuda")
    pytest.skip("no CUDA device and TRITON_INTERPRET is not set: Triton kernels cannot run here")


def dtypes_here(device: torch.device):
    """Storage dtypes to test: bf16 only on a GPU (the interpreter's bf16 products are wrong)."""
    return [torch.float32, torch.float16] + ([torch.bfloat16] if device.type == "cuda" else [])


def poisoned(shape, dtype, device) -> torch.Tensor:
    """An output buffer full of NaN, so any element a kernel fails to write shows up."""
    return torch.full(shape, float("nan"), dtype=dtype, device=device)


def assert_close_report(actual: torch.Tensor, expected: torch.Tensor, rel_tol: float, what: str = "") -> None:
    """max |actual − expected| ≤ rel_tol · max |expected|; on failure list the worst elements."""
    assert actual.shape == expected.shape, f"{what}: shape {tuple(actual.shape)} != {tuple(expected.shape)}"
    a, e = actual.detach().double().cpu(), expected.detach().double().cpu()
    assert torch.isfinite(a).all(), f"{what}: {int((~torch.isfinite(a)).sum())} non-finite outputs (unwritten?)"
    scale = float(e.abs().max()) or 1.0
    diff = (a - e).abs()
    err = float(diff.max()) / scale
    if err > rel_tol:
        worst = torch.topk(diff.flatten(), min(5, diff.numel())).indices
        rows = []
        for i in worst.tolist():
            idx = tuple(int(v) for v in torch.unravel_index(torch.tensor(i), a.shape))
            rows.append(f"  at {idx}: got {a[idx].item():.6g}, expected {e[idx].item():.6g}")
        raise AssertionError(f"{what}: relative error {err:.3g} > {rel_tol:g} (scale {scale:.4g}); "
                             "worst:\n" + "\n".join(rows))
