"""The `triton` backend (fused kernels; CUDA graphs on a GPU) equals the eager backend.

Without a GPU the whole fused path runs in Triton's CPU interpreter (TRITON_INTERPRET=1, set by
conftest.py) — the same code as on the GPU, with only the CUDA-graph capture skipped. The
interpreter takes seconds per network evaluation, so the cases are few and small: the golden
nf 8 / depth 3 weights on the golden 2×3×21×30 input (padded to 24×32) for Euler K = 1 and 3,
fp16 for K = 1, and the Heun / paired-step plans on a one-level network.

Tolerances (relative to the largest output value): fp32 1e-5 (both sides fp32; convolutions,
reductions and attention products differ only in order); fp16 against eager fp32 5e-3 (the
issue's bound for the fused fp16 path).
"""

import pytest
import torch

from conftest import rel_err
from kernel_testing import kernel_device

from irflow_engine.backends import BackendUnavailable, build_backend, resolve_backend_name
from irflow_engine.backends.triton import CapturedLoop, GraphCache, TritonBackend
from irflow_engine.flow import make_schedule

FP32_TOL = 1e-5
FP16_TOL = 5e-3


@pytest.fixture(scope="module")
def device():
    return kernel_device()


@pytest.fixture(autouse=True)
def true_fp32():
    """On a GPU, eager fp32 must not use TF32 (cuDNN's default for convolutions)."""
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


@pytest.fixture(scope="module")
def lq(golden):
    return torch.from_numpy(golden["lq"].copy())


def _pair(model, schedule, precision, device):
    eager = build_backend("eager", model, schedule, "fp32", device)
    fused = build_backend("triton", model, schedule, precision, device)
    assert isinstance(fused, TritonBackend)
    return eager, fused


@pytest.mark.parametrize("steps", [1, 3])
def test_triton_equals_eager_fp32(device, golden_model, lq, steps):
    eager, fused = _pair(golden_model, make_schedule(steps, "euler"), "fp32", device)
    y = lq.to(device)
    fused.prepare(tuple(y.shape))
    out = fused.restore(y)
    assert out.shape == y.shape and out.dtype == torch.float32 and out.device == y.device
    assert rel_err(out.cpu(), eager.restore(y).cpu()) <= FP32_TOL
    assert torch.equal(y.cpu(), lq), "the input must not be modified"


def test_triton_nearest_upsample_equals_eager(device, golden_model, lq):
    """upsample="nearest": the literal upsample → 3×3 conv → concatenation (the default folds them)."""
    schedule = make_schedule(1, "euler")
    eager = build_backend("eager", golden_model, schedule, "fp32", device)
    fused = TritonBackend(golden_model, schedule, "fp32", device, upsample="nearest")
    y = lq.to(device)
    assert rel_err(fused.restore(y).cpu(), eager.restore(y).cpu()) <= FP32_TOL


def test_triton_fp16_close_to_eager_fp32(device, golden_model, lq):
    eager, fused = _pair(golden_model, make_schedule(1, "euler"), "fp16", device)
    y = lq.to(device)
    assert rel_err(fused.restore(y).cpu(), eager.restore(y).cpu()) <= FP16_TOL


@pytest.mark.parametrize("precision,steps,tol", [("fp32", 3, FP32_TOL), ("fp16", 1, FP16_TOL)])
def test_triton_conv_kernel_equals_eager(device, golden_model, lq, precision, steps, tol):
    """conv="triton": every 3×3 conv on the implicit-GEMM kernel, ResBlock epilogues fused."""
    schedule = make_schedule(steps, "euler")
    eager = build_backend("eager", golden_model, schedule, "fp32", device)
    fused = TritonBackend(golden_model, schedule, precision, device, conv="triton", cudnn_benchmark=True)
    y = lq.to(device)
    assert rel_err(fused.restore(y).cpu(), eager.restore(y).cpu()) <= tol


def test_a_failed_capture_is_retried_once_then_reported(device, golden_model, monkeypatch):
    """The retry logic of `_capture` (the capture itself needs a GPU; `_capture_once` is faked)."""
    backend = TritonBackend(golden_model, make_schedule(1), "fp32", device)
    calls = []

    def flaky(shape, dtype):
        calls.append(shape)
        if len(calls) == 1:
            raise RuntimeError("cuDNN error: CUDNN_STATUS_INTERNAL_ERROR")
        return "captured"

    monkeypatch.setattr(backend, "_capture_once", flaky)
    assert backend._capture((1, 3, 8, 8), torch.float32) == "captured" and len(calls) == 2

    def broken(shape, dtype):
        raise RuntimeError("operation failed due to a previous error during capture")

    monkeypatch.setattr(backend, "_capture_once", broken)
    with pytest.raises(RuntimeError, match=r"input shape \(1, 3, 8, 8\) failed 2 times: .*previous error"):
        backend._capture((1, 3, 8, 8), torch.float32)


def test_unknown_conv_impl_is_an_error(device, golden_model):
    with pytest.raises(ValueError, match="unknown convolution implementation 'winograd'"):
        TritonBackend(golden_model, make_schedule(1), "fp32", device, conv="winograd")
    with pytest.raises(ValueError, match="unknown upsampling implementation 'bilinear'.*subpixel"):
        TritonBackend(golden_model, make_schedule(1), "fp32", device, upsample="bilinear")


@pytest.mark.parametrize("steps", [2, 3])  # K = 2: Euler + paired step; K = 3: Heun steps
def test_triton_heun_plans_equal_eager(device, one_level_model, steps):
    eager, fused = _pair(one_level_model, make_schedule(steps, "heun"), "fp32", device)
    y = torch.rand(1, 3, 5, 7, generator=torch.Generator().manual_seed(1)).to(device)
    assert rel_err(fused.restore(y).cpu(), eager.restore(y).cpu()) <= FP32_TOL


def test_bench_runs_triton(device, tiny_checkpoint, capsys):
    from irflow_engine.bench import main

    rc = main(["--model", str(tiny_checkpoint), "--device", str(device), "--resolution", "8x8",
               "--steps", "1", "--iters", "1", "--warmup", "0", "--runs", "eager:fp32,triton:fp32",
               "--no-ceiling"])
    assert rc == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()]
    assert [r[0] for r in rows if r and r[0] in ("eager", "triton")] == ["eager", "triton"]


# -- availability and 'auto' (no kernels run) ------------------------------------------------

def test_cpu_without_interpreter_is_an_explanatory_error(monkeypatch, golden_model):
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    reason = TritonBackend.unavailable_reason(torch.device("cpu"), "fp32")
    assert reason is not None and "CUDA" in reason and "TRITON_INTERPRET" in reason
    with pytest.raises(BackendUnavailable, match="Triton kernels need a CUDA GPU"):
        build_backend("triton", golden_model, make_schedule(1), "fp32", torch.device("cpu"))
    assert resolve_backend_name("auto", torch.device("cpu")) == "eager"


def test_interpreter_refuses_bf16(monkeypatch):
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    assert "bf16" in TritonBackend.unavailable_reason(torch.device("cpu"), "bf16")


def test_auto_picks_triton_on_cuda(monkeypatch):
    from irflow_engine.kernels import triton_unavailable_reason

    if triton_unavailable_reason() is not None:
        pytest.skip(triton_unavailable_reason())
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda index=None: (9, 0))
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda index=None: "NVIDIA H100")
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    monkeypatch.setattr(torch.version, "hip", None)
    assert resolve_backend_name("auto", torch.device("cuda"), "fp16") == "triton"
    assert resolve_backend_name("auto", torch.device("cuda:0"), "bf16") == "triton"
    assert resolve_backend_name("auto", torch.device("cpu"), "fp16") == "eager"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_backend_name("auto", torch.device("cuda"), "fp16") == "eager"
    assert "CUDA is not available" in TritonBackend.unavailable_reason(torch.device("cuda"), "fp16")


@pytest.mark.parametrize("capability,name", [((7, 5), "Tesla T4"), ((7, 0), "Tesla V100-SXM2-16GB")])
def test_gpus_older_than_ampere_are_refused_and_auto_uses_eager(monkeypatch, golden_model, capability, name):
    from irflow_engine.kernels import triton_unavailable_reason

    if triton_unavailable_reason() is not None:
        pytest.skip(triton_unavailable_reason())
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda index=None: capability)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda index=None: name)
    monkeypatch.setattr(torch.version, "hip", None)
    reason = TritonBackend.unavailable_reason(torch.device("cuda"), "fp16")
    assert reason is not None and "compute capability 8.0" in reason and name in reason
    assert f"{capability[0]}.{capability[1]}" in reason
    assert resolve_backend_name("auto", torch.device("cuda"), "fp16") == "eager"
    with pytest.raises(BackendUnavailable, match="compute capability 8.0"):
        build_backend("triton", golden_model, make_schedule(1), "fp16", torch.device("cuda"))


def test_rocm_builds_are_refused_and_auto_uses_eager(monkeypatch):
    from irflow_engine.kernels import triton_unavailable_reason

    if triton_unavailable_reason() is not None:
        pytest.skip(triton_unavailable_reason())
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.version, "hip", "6.2.41133")
    assert "ROCm" in TritonBackend.unavailable_reason(torch.device("cuda"), "fp16")
    assert resolve_backend_name("auto", torch.device("cuda"), "fp16") == "eager"


# -- the graph cache's bookkeeping (the capture itself needs a GPU) ---------------------------

class _FakeGraph:
    def __init__(self, log, name):
        self.log, self.name = log, name

    def reset(self):
        self.log.append(self.name)


def test_graph_cache_is_a_bounded_lru_that_releases():
    released, waits = [], []
    cache = GraphCache(2, before_evict=lambda: waits.append(1))

    def make(name):
        return lambda: CapturedLoop(_FakeGraph(released, name), torch.zeros(1), torch.zeros(1))

    a = cache.get_or_create("a", make("a"))
    cache.get_or_create("b", make("b"))
    assert cache.get_or_create("a", make("a-again")) is a  # a hit, and "a" becomes most recent
    cache.get_or_create("c", make("c"))                    # evicts the least recent: "b"
    assert released == ["b"] and waits == [1]
    assert cache.keys() == ["a", "c"] and "b" not in cache
    cache.clear()
    assert released == ["b", "a", "c"] and len(cache) == 0
    with pytest.raises(ValueError, match="at least one graph"):
        GraphCache(0)


def test_fused_loop_leaves_no_glue_to_pytorch(device, golden_model):
    """The skip concatenations, the nearest upsampling and the attention output bias run inside
    our kernels: the loop calls no torch.cat / interpolate, and no 1×1 conv carries a bias; each
    decoder upsample + 3×3 conv is one bias-free 2×2 conv (its bias added by the concatenation)."""
    from torch.utils._python_dispatch import TorchDispatchMode

    from irflow_engine.backends.fused_unet import FusedSampler

    sampler = FusedSampler(golden_model, make_schedule(1, "euler"), torch.float32, device)
    seen = []

    class Record(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            name = str(func)
            if name.startswith("aten.convolution"):
                weight, bias = args[1], args[2]
                seen.append(f"conv{weight.shape[-1]}x{weight.shape[-2]}{'+bias' if bias is not None else ''}")
            else:
                seen.append(name)
            return func(*args, **(kwargs or {}))

    y = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(0)).to(device)
    with torch.no_grad(), Record():
        sampler.run(y, torch.empty_like(y))
    assert not [s for s in seen if s.startswith(("aten.cat", "aten.upsample", "aten._upsample"))]
    assert "conv1x1" in seen and "conv1x1+bias" not in seen
    assert "conv3x3" in seen
    assert seen.count("conv2x2") == golden_model.depth - 1 and "conv3x3+bias" not in seen
