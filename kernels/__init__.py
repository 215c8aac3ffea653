"""Triton kernels, installed as `irflow_engine.kernels`.

One op per file: the `@triton.jit` kernel(s) (`_<op>_kernel`), the launcher that validates its
arguments and picks block sizes (`<op>`), and the plain-PyTorch reference (`<op>_reference`)
side by side. Every op reads and writes channels-last activations (a contiguous N×H×W×C view of
a `torch.channels_last` N×C×H×W tensor), stores fp32, fp16 or bf16, and accumulates in fp32.

    conv3x3.py             3×3 conv as implicit GEMM + fused ResBlock epilogues (conv="triton")
    film_silu.py           x·(scale+1)+shift, SiLU            (ResBlock block 1 epilogue)
    silu_residual.py       SiLU(h) + residual                 (ResBlock block 2 epilogue)
    upsample_nearest.py    nearest 2× upsampling, channels-last (the decoder's Upsample)
    concat_channels.py     [a, b] along C (the U-Net skip concatenations)
    subpixel_concat.py     [interleaved 2×2-conv phases + bias, skip] along C (upsample + conv, folded)
    channel_layernorm.py   (+ bias,) LayerNorm over C, gain, (+ residual) (PreNorm; attention output)
    linear_attention.py    softmaxes, k·vᵀ context, contextᵀ·q (the attention core)
    velocity_euler.py      3×3 velocity head + x ← x − w·D     (end of every network step)

This package imports nothing heavy: the op modules import Triton, so import them only after
`triton_unavailable_reason()` returned None.

Environment: `TRITON_INTERPRET` is the one variable the fast path depends on, and it is read
here only (`interpreter_enabled`). Triton itself reads it when a kernel is *decorated*, i.e. when
an op module is first imported, so it must be set before that (the test suite sets it in
`tests/conftest.py` on machines without a GPU). With it set, kernels run on CPU tensors in
Triton's NumPy interpreter: correct but slow, meant for tests on small shapes.
"""

from __future__ import annotations

import os
from typing import Optional

INTERPRET_ENV = "TRITON_INTERPRET"


def interpreter_enabled() -> bool:
    """True when Triton runs kernels in its CPU interpreter (TRITON_INTERPRET set to 1/true/on)."""
    return os.environ.get(INTERPRET_ENV, "0").strip().lower() in ("1", "true", "on")


def triton_unavailable_reason() -> Optional[str]:
    """None when Triton imports, else why not (for error messages and test skips)."""
    try:
        import triton  # noqa: F401
        import triton.language  # noqa: F401
    except Exception as e:  # ImportError, or a broken install raising something else
        return f"Triton is not importable ({type(e).__name__}: {e}); install it with `pip install triton`"
    return None
