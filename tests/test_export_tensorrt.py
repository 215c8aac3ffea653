"""TensorRT: the sidecar / engine-cache logic (no TensorRT needed), the errors when TensorRT or a
GPU is missing, and — only where `tensorrt` and a CUDA device exist — a real build and run."""

import dataclasses
import json

import pytest
import torch

from irflow_engine.backends import BackendUnavailable, TensorRTBackend
from irflow_engine.cli import main
from irflow_engine.export import engine_cache as ec

ENV = ec.Environment(tensorrt_version="10.13.0.35", gpu_name="NVIDIA H100 80GB HBM3", compute_capability="9.0")
PROFILE = ec.Profile("degraded", (1, 3, 64, 64), (1, 3, 720, 1280), (2, 3, 1088, 1920))
SETTINGS = ec.BuildSettings(onnx_sha256="ab" * 32, precision="fp16", profiles=(PROFILE,), workspace_mib=4096,
                            optimization_level=3)


def _tensorrt_missing_reason():
    try:
        import tensorrt  # noqa: F401
    except ImportError as e:
        return f"tensorrt is not installed ({e}); the builder/runtime tests need it and a CUDA GPU"
    if not torch.cuda.is_available():
        return "no CUDA device: TensorRT engines cannot be built or run here"
    return None


NO_TENSORRT = _tensorrt_missing_reason()


def test_cache_key_changes_with_everything_that_invalidates_an_engine():
    key = ec.cache_key(ENV, SETTINGS)
    assert key == ec.cache_key(ec.Environment(**dataclasses.asdict(ENV)), SETTINGS)  # stable
    variants = [
        (dataclasses.replace(ENV, tensorrt_version="11.0.0.1"), SETTINGS),
        (dataclasses.replace(ENV, gpu_name="NVIDIA H200"), SETTINGS),
        (dataclasses.replace(ENV, compute_capability="8.9"), SETTINGS),
        (ENV, dataclasses.replace(SETTINGS, onnx_sha256="cd" * 32)),
        (ENV, dataclasses.replace(SETTINGS, precision="int8")),
        (ENV, dataclasses.replace(SETTINGS, workspace_mib=1024)),
        (ENV, dataclasses.replace(SETTINGS, optimization_level=5)),
        (ENV, dataclasses.replace(SETTINGS, profiles=(dataclasses.replace(PROFILE, opt=(1, 3, 1080, 1920)),))),
    ]
    keys = {ec.cache_key(e, s) for e, s in variants}
    assert key not in keys and len(keys) == len(variants)
    assert ec.cached_engine_path("/c", "/x/denoise.onnx", key).name == f"denoise-{key}.engine"


def test_sidecar_round_trip_and_cache_lookup(tmp_path):
    engine = tmp_path / "m.engine"
    record = ec.EngineRecord(environment=ENV, settings=SETTINGS, graph={"graph": "sampler", "steps": "3"})
    ec.write_engine(engine, b"plan bytes", record)
    assert engine.read_bytes() == b"plan bytes"
    assert json.loads(ec.sidecar_path(engine).read_text())["environment"]["gpu_name"] == ENV.gpu_name
    assert ec.read_record(engine) == record
    assert ec.find_cached(engine, ENV, SETTINGS) == record
    assert ec.find_cached(engine, dataclasses.replace(ENV, tensorrt_version="11.0.0.1"), SETTINGS) is None
    assert ec.find_cached(engine, ENV, dataclasses.replace(SETTINGS, precision="fp32")) is None
    assert ec.find_cached(tmp_path / "absent.engine", ENV, SETTINGS) is None


def test_engine_from_another_tensorrt_or_gpu_is_refused_by_name(tmp_path):
    engine = tmp_path / "m.engine"
    ec.write_engine(engine, b"x", ec.EngineRecord(environment=ENV, settings=SETTINGS, graph={}))
    here = ec.Environment("11.0.0.1", "NVIDIA H200", "9.0")
    with pytest.raises(ec.EngineMismatch) as e:
        ec.check_compatible(engine, ec.read_record(engine), here)
    msg = str(e.value)
    assert "tensorrt version: built with '10.13.0.35', here '11.0.0.1'" in msg
    assert "gpu name: built with 'NVIDIA H100 80GB HBM3', here 'NVIDIA H200'" in msg
    assert "compute capability" not in msg and "rebuild" in msg
    ec.check_compatible(engine, ec.read_record(engine), ENV)  # same machine: fine

    ec.sidecar_path(engine).unlink()
    with pytest.raises(ec.EngineMismatch, match="no sidecar"):
        ec.read_record(engine)
    ec.sidecar_path(engine).write_text("{not json")
    with pytest.raises(ec.EngineMismatch, match="not a valid engine sidecar"):
        ec.read_record(engine)


def test_profiles_and_shapes():
    assert ec.parse_shape("720x1280") == (1, 3, 720, 1280)
    assert ec.parse_shape("2x3x64x96") == (2, 3, 64, 96)
    for bad in ("720", "1x4x64x64", "0x3x64x64", "axb"):
        with pytest.raises(ValueError):
            ec.parse_shape(bad)
    with pytest.raises(ValueError, match="min ≤ opt ≤ max"):
        ec.Profile("degraded", (1, 3, 64, 64), (1, 3, 32, 64), (1, 3, 128, 128))
    with pytest.raises(ValueError, match="≥ 1"):
        ec.Profile("degraded", (1, 3, 0, 0), (1, 3, 32, 64), (1, 3, 128, 128))
    with pytest.raises(ValueError, match="optimisation level"):
        dataclasses.replace(SETTINGS, optimization_level=7)
    record = ec.EngineRecord(environment=ENV, settings=SETTINGS, graph={})
    ec.check_shape(record, "degraded", (2, 3, 1088, 1920))
    with pytest.raises(ec.EngineMismatch, match=r"1x3x2160x3840 is outside .* max 2x3x1088x1920"):
        ec.check_shape(record, "degraded", (1, 3, 2160, 3840))
    with pytest.raises(ec.EngineMismatch, match="no input named 'x'"):
        ec.check_shape(record, "x", (1, 3, 64, 64))


@pytest.mark.skipif(NO_TENSORRT is None, reason="tensorrt and a GPU are present: the real build runs instead")
def test_missing_tensorrt_is_a_clear_error(tmp_path, tiny_checkpoint, capsys):
    onnx_file = tmp_path / "m.onnx"
    onnx_file.write_bytes(b"")
    assert main(["export", "tensorrt", str(onnx_file), "-o", str(tmp_path / "m.engine")]) == 1
    err = capsys.readouterr().err
    assert "irflow: error:" in err and ("pip install 'irflow-engine[tensorrt]'" in err or "CUDA" in err)
    reason = TensorRTBackend.unavailable_reason(torch.device("cpu"), "fp16")
    assert reason is not None
    from irflow_engine import Engine

    with pytest.raises(BackendUnavailable, match="tensorrt"):
        Engine.from_checkpoint(tiny_checkpoint, backend="tensorrt", device="cpu")


@pytest.mark.gpu
@pytest.mark.skipif(NO_TENSORRT is not None, reason=str(NO_TENSORRT))
def test_tensorrt_build_cache_and_run_match_eager(tmp_path, tiny_checkpoint):
    from irflow_engine import Engine
    from irflow_engine.export.onnx import export_onnx
    from irflow_engine.export.tensorrt import BuildOptions, build_engine, load_engine

    onnx_file = export_onnx(tiny_checkpoint, tmp_path / "tiny.onnx", steps=2)
    options = BuildOptions(min_shape=(1, 3, 8, 8), opt_shape=(1, 3, 64, 96), max_shape=(2, 3, 128, 128),
                           workspace_mib=512, optimization_level=1, timing_cache=tmp_path / "timing.cache")
    path, record = build_engine(onnx_file, options=options, cache_dir=tmp_path / "cache")
    assert path.is_file() and (tmp_path / "timing.cache").stat().st_size > 0
    assert record.settings.precision == "fp32" and record.environment.gpu_name == torch.cuda.get_device_name()
    again, _ = build_engine(onnx_file, options=options, cache_dir=tmp_path / "cache")
    assert again == path  # cache hit
    load_engine(path)

    backend = TensorRTBackend(Engine.from_checkpoint(tiny_checkpoint).checkpoint.build_model(),
                              Engine.from_checkpoint(tiny_checkpoint, steps=2).schedule, "fp32",
                              torch.device("cuda"), engine_path=path)
    eager = Engine.from_checkpoint(tiny_checkpoint, steps=2, device="cuda")
    for shape in ((1, 3, 37, 29), (2, 3, 64, 96), (1, 3, 37, 29)):  # the repeat replays a CUDA graph
        y = torch.rand(shape, device="cuda")
        want = eager.restore_batch(y)
        got = backend.restore(y)
        assert float((got - want).abs().max() / want.abs().max()) <= 5e-3, shape

    record_path = ec.sidecar_path(path)
    doctored = json.loads(record_path.read_text())
    doctored["environment"]["tensorrt_version"] = "0.0.0"
    record_path.write_text(json.dumps(doctored))
    with pytest.raises(ec.EngineMismatch, match="built with '0.0.0'"):
        load_engine(path)
