"""Engine: every accepted input kind and shape, batching, and each invalid input's error."""

import numpy as np
import pytest
import torch

from irflow_engine import Engine, InputError, make_schedule, sample
from irflow_engine.config import resolve_precision


@pytest.fixture(scope="module")
def engine(tiny_checkpoint):
    return Engine.from_checkpoint(tiny_checkpoint, steps=2, clamp=False)


def _reference(model, x, steps=2):
    with torch.no_grad():
        return sample(lambda v, t: model(v, t), x, make_schedule(steps))


def _rand(*shape, seed=0):
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed))


def test_defaults_from_checkpoint(tiny_checkpoint):
    e = Engine.from_checkpoint(tiny_checkpoint)
    assert (e.schedule.solver, e.schedule.steps) == ("euler", 2)  # the header's defaults
    assert e.backend_name == "eager" and e.device.type == "cpu"
    assert Engine.from_checkpoint(tiny_checkpoint, steps=4, solver="heun").schedule.evaluations == 8


@pytest.mark.parametrize("shape", [(3, 1, 1), (3, 5, 9), (3, 21, 30), (2, 3, 7, 3), (1, 3, 1, 12)])
def test_torch_float_in_same_kind_out(engine, golden_model, shape):
    x = _rand(*shape)
    out = engine.restore(x)
    assert out.shape == x.shape and out.dtype == x.dtype and out.device == x.device
    batch = x if x.dim() == 4 else x[None]
    expected = _reference(golden_model, batch)
    torch.testing.assert_close(out if x.dim() == 4 else out[None], expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_torch_other_float_dtypes(engine, dtype):
    x = _rand(3, 6, 5).to(dtype)
    out = engine.restore(x)
    assert out.dtype == dtype and out.shape == x.shape
    ref = engine.restore(x.float())
    torch.testing.assert_close(out.float(), ref, atol=1e-2, rtol=0)


def test_numpy_uint8_hwc(engine, golden_model):
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, size=(13, 10, 3), dtype=np.uint8)
    out = engine.restore(img)
    assert out.dtype == np.uint8 and out.shape == img.shape
    x = torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255
    expected = (_reference(golden_model, x).clamp(0, 1) * 255).round()[0].permute(1, 2, 0).numpy()
    assert np.abs(out.astype(np.int32) - expected.astype(np.int32)).max() <= 1


def test_numpy_uint16_hwc(engine, golden_model):
    """16-bit images: codes / 65535 in, round(clamp(out) · 65535) back, as uint16."""
    img = np.random.default_rng(1).integers(0, 65536, size=(2, 9, 11, 3), dtype=np.uint16)
    out = engine.restore(img)
    assert out.dtype == np.uint16 and out.shape == img.shape
    x = torch.from_numpy(img.astype(np.float64) / 65535).permute(0, 3, 1, 2).float()
    expected = (_reference(golden_model, x).clamp(0, 1) * 65535).round().permute(0, 2, 3, 1).numpy()
    assert np.abs(out.astype(np.int64) - expected.astype(np.int64)).max() <= 1


def test_numpy_batch_and_float(engine):
    rng = np.random.default_rng(1)
    batch = rng.integers(0, 256, size=(3, 9, 11, 3), dtype=np.uint8)
    out = engine.restore(batch)
    assert out.shape == batch.shape and out.dtype == np.uint8
    np.testing.assert_array_equal(out[1], engine.restore(batch[1]))
    f = rng.random((9, 11, 3), dtype=np.float32)
    fo = engine.restore(f)
    assert fo.dtype == np.float32 and fo.shape == f.shape


def test_torch_uint8(engine):
    x = torch.randint(0, 256, (3, 8, 8), dtype=torch.uint8, generator=torch.Generator().manual_seed(2))
    out = engine.restore(x)
    assert out.dtype == torch.uint8 and out.shape == x.shape


def test_clamp_default(tiny_checkpoint):
    clamped = Engine.from_checkpoint(tiny_checkpoint, steps=2)
    x = _rand(2, 3, 9, 9, seed=5)
    out = clamped.restore(x)
    assert out.min() >= 0 and out.max() <= 1


def test_batches_are_split_by_max_batch(tiny_checkpoint):
    small = Engine.from_checkpoint(tiny_checkpoint, steps=2, max_batch=2, clamp=False)
    whole = Engine.from_checkpoint(tiny_checkpoint, steps=2, max_batch=8, clamp=False)
    calls = []
    original = small.backend.restore
    small.backend.restore = lambda y: calls.append(y.shape[0]) or original(y)
    x = _rand(5, 3, 6, 7, seed=3)
    torch.testing.assert_close(small.restore(x), whole.restore(x), rtol=1e-5, atol=1e-6)
    assert calls == [2, 2, 1]


def test_low_precision_close_to_fp32(tiny_checkpoint):
    ref = Engine.from_checkpoint(tiny_checkpoint, steps=2, clamp=False)
    x = _rand(1, 3, 16, 16, seed=4)
    expected = ref.restore(x)
    for precision, tol in (("bf16", 0.1), ("fp16", 0.02)):
        e = Engine.from_checkpoint(tiny_checkpoint, steps=2, precision=precision, clamp=False)
        out = e.restore(x)
        assert out.dtype == torch.float32
        assert (out - expected).abs().max() <= tol * expected.abs().max(), precision


def test_auto_precision_is_fp32_on_the_cpu_and_fp16_on_cuda(tiny_checkpoint, monkeypatch):
    assert [resolve_precision(p, "cpu") for p in ("auto", "fp32", "fp16", "bf16")] == ["fp32", "fp32", "fp16", "bf16"]
    assert [resolve_precision(p, "cuda") for p in ("auto", "fp32", "bf16")] == ["fp16", "fp32", "bf16"]
    with pytest.raises(ValueError, match="precision must be one of"):
        resolve_precision("half", "cuda")
    ref = Engine.from_checkpoint(tiny_checkpoint, steps=2, clamp=False)
    auto = Engine.from_checkpoint(tiny_checkpoint, steps=2, clamp=False, precision="auto")
    assert auto.config.precision == "fp32" and "precision=fp32" in repr(auto)
    x = _rand(1, 3, 9, 11, seed=5)
    torch.testing.assert_close(auto.restore(x), ref.restore(x), rtol=0, atol=0)
    # On CUDA (faked: no GPU needed) the backend is built in fp16.
    import irflow_engine.engine as engine_module

    built = []
    monkeypatch.setattr(engine_module, "resolve_device", lambda device: torch.device("cuda"))
    monkeypatch.setattr(engine_module, "build_backend",
                        lambda name, model, schedule, precision, device: built.append((precision, device.type)))
    cuda = Engine.from_checkpoint(tiny_checkpoint, device="cuda", precision="auto")
    assert built == [("fp16", "cuda")] and cuda.config.precision == "fp16"


@pytest.mark.parametrize("bad,match", [
    (np.zeros((4, 4, 4), np.uint8), "3 channels"),
    (np.zeros((4, 4), np.uint8), "HWC or NHWC"),
    (np.zeros((0, 4, 3), np.uint8), "empty"),
    (np.zeros((4, 4, 3), np.int32), "dtype int32"),
    (np.full((4, 4, 3), np.nan, np.float32), "NaN"),
    (torch.zeros(4, 5, 5), "3 channels"),
    (torch.zeros(2, 2, 3, 5, 5), "CHW or NCHW"),
    (torch.zeros(1, 3, 0, 5), "empty"),
    (torch.full((3, 2, 2), float("inf")), "Inf"),
    (torch.zeros(3, 4, 4, dtype=torch.int64), "dtype torch.int64"),
    ([[0.5]], "numpy array or a torch tensor"),
])
def test_invalid_inputs(engine, bad, match):
    with pytest.raises(InputError, match=match):
        engine.restore(bad)


def test_invalid_engine_options(tiny_checkpoint):
    with pytest.raises(ValueError, match="unknown backend"):
        Engine.from_checkpoint(tiny_checkpoint, backend="magic")
    with pytest.raises(ValueError, match="precision"):
        Engine.from_checkpoint(tiny_checkpoint, precision="fp8")
    with pytest.raises(ValueError, match="steps"):
        Engine.from_checkpoint(tiny_checkpoint, steps=0)
    with pytest.raises(ValueError, match="device"):
        Engine.from_checkpoint(tiny_checkpoint, device="tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            Engine.from_checkpoint(tiny_checkpoint, device="cuda")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_tensor_round_trip(tiny_checkpoint):
    e = Engine.from_checkpoint(tiny_checkpoint, device="cuda", steps=2, clamp=False)
    cpu = Engine.from_checkpoint(tiny_checkpoint, steps=2, clamp=False)
    x = _rand(2, 3, 11, 13)
    out = e.restore(x.cuda())
    assert out.is_cuda
    torch.testing.assert_close(out.cpu(), cpu.restore(x), rtol=1e-4, atol=1e-4)
