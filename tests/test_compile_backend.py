"""The `compile` backend (torch.compile of the whole sampler) equals `eager` on the CPU.

The one-level network (conftest) keeps Inductor's compile time (C++ code generation) to well
under a minute on a 2-core machine.
"""

import torch

from irflow_engine.backends import build_backend
from irflow_engine.flow import make_schedule


def test_compile_equals_eager_cpu(one_level_model):
    schedule = make_schedule(2, "euler")
    device = torch.device("cpu")
    eager = build_backend("eager", one_level_model, schedule, "fp32", device)
    compiled = build_backend("compile", one_level_model, schedule, "fp32", device)
    y = torch.rand(2, 3, 9, 14, generator=torch.Generator().manual_seed(1))
    compiled.prepare(tuple(y.shape))
    out = compiled.restore(y)
    expected = eager.restore(y)
    assert out.shape == y.shape and out.dtype == torch.float32
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)
    # A second call with new data reuses the compiled graph and is still right.
    y2 = torch.rand(2, 3, 9, 14, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(compiled.restore(y2), eager.restore(y2), rtol=1e-5, atol=1e-5)
