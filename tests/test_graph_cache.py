"""The on-disk cache of exported sampler graphs (export/graph_cache.py) and `backend="auto"` on the CPU."""

import logging
import os
import time

import numpy as np
import pytest
import torch

pytest.importorskip("onnx", reason="the graph cache tests need onnx: pip install -e '.[onnx]'")
pytest.importorskip("onnxruntime", reason="the graph cache tests need onnxruntime: pip install -e '.[onnx]'")

from irflow_engine import Engine  # noqa: E402
from irflow_engine.backends import OnnxRuntimeBackend, resolve_backend_name  # noqa: E402
from irflow_engine.checkpoint import resolve  # noqa: E402
from irflow_engine.export import graph_cache  # noqa: E402
from irflow_engine.export.onnx import PARITY_TOLERANCE  # noqa: E402
from irflow_engine.flow import make_schedule  # noqa: E402

CPU = torch.device("cpu")


@pytest.fixture
def counted_exports(monkeypatch):
    """Counts the real exports made through the cache."""
    calls = []
    real = graph_cache.export_graph

    def export(*args, **kwargs):
        calls.append(args[2] if len(args) > 2 else kwargs.get("precision"))
        return real(*args, **kwargs)

    monkeypatch.setattr(graph_cache, "export_graph", export)
    return calls


def _model(tiny_checkpoint):
    return resolve(tiny_checkpoint).build_model()


def _backend(model, cache_dir, steps=1):
    return OnnxRuntimeBackend(model, make_schedule(steps), "fp32", CPU, graph_cache=cache_dir)


def test_second_backend_reads_the_cache_and_computes_the_same(tiny_checkpoint, tmp_path, counted_exports):
    model = _model(tiny_checkpoint)
    y = torch.rand(2, 3, 13, 19, generator=torch.Generator().manual_seed(5))
    first = _backend(model, tmp_path)
    assert counted_exports == ["fp32"] and first.graph_path.is_file()
    second = _backend(model, tmp_path)
    assert counted_exports == ["fp32"], "the second backend exported again instead of reading the cache"
    assert second.graph_path == first.graph_path
    assert torch.equal(second.restore(y), first.restore(y))
    eager = Engine.from_checkpoint(tiny_checkpoint, backend="eager", steps=1).restore_batch(y)
    got = second.restore(y)
    assert float((got - eager).abs().max() / eager.abs().max()) <= PARITY_TOLERANCE["fp32"]


def test_key_changes_with_weights_schedule_and_precision(tiny_checkpoint):
    model = _model(tiny_checkpoint)
    base = graph_cache.graph_key(model, make_schedule(3), "fp32")
    assert graph_cache.graph_key(model, make_schedule(3), "fp32") == base
    assert graph_cache.graph_key(model, make_schedule(2), "fp32") != base
    assert graph_cache.graph_key(model, make_schedule(2, "heun"), "fp32") != graph_cache.graph_key(
        model, make_schedule(2), "fp32")
    assert graph_cache.graph_key(model, make_schedule(3), "fp16") != base
    with torch.no_grad():
        next(model.parameters()).view(-1)[0] += 1e-6   # one weight, one ulp-scale change
    assert graph_cache.graph_key(model, make_schedule(3), "fp32") != base


def test_key_changes_with_the_network_code(tiny_checkpoint, monkeypatch):
    """An edited network (same version, same weights) must not be served its old graph."""
    model = _model(tiny_checkpoint)
    base = graph_cache.graph_key(model, make_schedule(3), "fp32")
    monkeypatch.setattr(graph_cache, "_source_digest", lambda: "edited")
    assert graph_cache.graph_key(model, make_schedule(3), "fp32") != base


def test_corrupt_entry_is_exported_again(tiny_checkpoint, tmp_path, counted_exports, caplog):
    model = _model(tiny_checkpoint)
    path = _backend(model, tmp_path).graph_path
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])   # truncated, as by a crash without the atomic rename
    with caplog.at_level(logging.WARNING):
        backend = _backend(model, tmp_path)
    assert counted_exports == ["fp32", "fp32"]
    assert "unreadable" in caplog.text
    assert path.read_bytes() == backend.graph.SerializeToString() and len(path.read_bytes()) == len(data)


def test_entry_without_its_key_is_replaced(tiny_checkpoint, tmp_path, counted_exports, caplog):
    import onnx

    model = _model(tiny_checkpoint)
    path = _backend(model, tmp_path).graph_path
    proto = onnx.load(str(path))
    graph_cache.set_metadata(proto, {"graph": "sampler"})   # a valid graph, but not this key's
    onnx.save_model(proto, str(path))
    with caplog.at_level(logging.WARNING):
        _backend(model, tmp_path)
    assert counted_exports == ["fp32", "fp32"] and "does not carry its key" in caplog.text


def test_prune_keeps_the_most_recently_used(tmp_path):
    now = time.time()
    for i in range(5):
        path = tmp_path / f"sampler-{i}.onnx"
        path.write_bytes(b"x")
        os.utime(path, (now - 100 + i, now - 100 + i))   # 4 is the newest
    (tmp_path / ".sampler-9.onnx.abc.onnx").write_bytes(b"tmp")   # another process's temporary file
    graph_cache.prune(tmp_path, 2)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".sampler-9.onnx.abc.onnx", "sampler-3.onnx",
                                                           "sampler-4.onnx"]


def test_prune_bounds_the_total_size_but_keeps_the_newest(tmp_path):
    now = time.time()
    for i, size in enumerate([300, 200, 100, 500]):   # 3 is the newest and alone exceeds the bound
        path = tmp_path / f"sampler-{i}.onnx"
        path.write_bytes(b"x" * size)
        os.utime(path, (now - 100 + i, now - 100 + i))
    graph_cache.prune(tmp_path, 16, max_bytes=400)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sampler-3.onnx"]
    (tmp_path / "sampler-3.onnx").write_bytes(b"x" * 100)
    for i, size in enumerate([150, 150, 150]):
        path = tmp_path / f"sampler-{i}.onnx"
        path.write_bytes(b"x" * size)
        os.utime(path, (now - 200 + i, now - 200 + i))
    graph_cache.prune(tmp_path, 16, max_bytes=400)   # newest 3 (100) + 2 (150) + 1 (150) = 400
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sampler-1.onnx", "sampler-2.onnx", "sampler-3.onnx"]


def test_no_cache_folder_means_no_files(tiny_checkpoint, tmp_path, counted_exports):
    backend = _backend(_model(tiny_checkpoint), None)
    assert backend.graph_path is None and counted_exports == ["fp32"]
    assert not any(tmp_path.iterdir())


def test_unwritable_cache_still_gives_a_backend(tiny_checkpoint, tmp_path, caplog):
    blocker = tmp_path / "file"
    blocker.write_bytes(b"")   # the cache folder would have to be inside a file: cannot be created
    with caplog.at_level(logging.WARNING):
        backend = _backend(_model(tiny_checkpoint), blocker / "onnx")
    assert backend.graph_path is None and "cannot write" in caplog.text
    y = torch.rand(1, 3, 9, 11, generator=torch.Generator().manual_seed(6))
    assert backend.restore(y).shape == y.shape


def test_tensorrt_backend_takes_its_graph_from_the_shared_cache(tiny_checkpoint, tmp_path, monkeypatch,
                                                                 counted_exports):
    """The TensorRT build reads `graph` and `precision` from the ONNX metadata: a cached entry must
    carry them, and the backend's export step must read the entry instead of exporting again."""
    from types import SimpleNamespace

    from irflow_engine.backends.tensorrt import TensorRTBackend
    from irflow_engine.export.onnx import read_metadata

    model = _model(tiny_checkpoint)
    monkeypatch.setattr(graph_cache, "DEFAULT_GRAPH_CACHE", tmp_path / "onnx")
    _, cached = graph_cache.cached_sampler_graph(model, make_schedule(3), "fp16", tmp_path / "onnx")
    meta = read_metadata(cached)
    assert {k: meta.get(k) for k in ("graph", "precision", "steps", "solver")} == {
        "graph": "sampler", "precision": "fp16", "steps": "3", "solver": "euler"}
    assert meta[graph_cache.KEY_PROPERTY] == graph_cache.graph_key(model, make_schedule(3), "fp16")
    trt = SimpleNamespace(cache_dir=tmp_path / "engines")   # the one attribute _export reads
    assert TensorRTBackend._export(trt, model, make_schedule(3), "fp16") == cached
    assert counted_exports == ["fp16"], "the TensorRT backend exported a graph the cache holds"
    # A graph cache that cannot be written: the graph goes beside the engines instead.
    blocker = tmp_path / "file"
    blocker.write_bytes(b"")
    monkeypatch.setattr(graph_cache, "DEFAULT_GRAPH_CACHE", blocker / "onnx")
    fallback = TensorRTBackend._export(trt, model, make_schedule(3), "fp16")
    assert fallback.parent == tmp_path / "engines" and read_metadata(fallback)["precision"] == "fp16"


def test_auto_on_the_cpu_picks_onnxruntime_for_fp32_only(monkeypatch, caplog):
    import irflow_engine.backends as backends

    assert resolve_backend_name("auto", CPU, "fp32") == "onnxruntime"
    assert resolve_backend_name("auto", CPU, "fp16") == "eager"
    assert resolve_backend_name("auto", CPU, "bf16") == "eager"
    assert resolve_backend_name("eager", CPU, "fp32") == "eager"
    assert "half as fast" not in caplog.text
    monkeypatch.setitem(__import__("sys").modules, "onnxruntime", None)   # not installed
    monkeypatch.setattr(backends, "_hints_given", set())
    assert resolve_backend_name("auto", CPU, "fp32") == "eager"
    assert resolve_backend_name("auto", CPU, "fp32") == "eager"
    # The user is told once what the fallback costs and how to install the faster backend.
    hints = [r.getMessage() for r in caplog.records if "half as fast" in r.getMessage()]
    assert len(hints) == 1 and "pip install 'irflow-engine[onnx]'" in hints[0]
    assert resolve_backend_name("eager", CPU, "fp32") == "eager" and len(caplog.records) == 1


def test_cli_default_backend_is_auto(tiny_checkpoint, tmp_path):
    from irflow_engine.cli import build_parser, main
    from irflow_engine.images import read_image, write_image

    args = build_parser().parse_args(["restore", "in.png", "-o", "out.png", "--model", "x"])
    assert args.backend == "auto"
    rgb = np.random.default_rng(7).integers(0, 256, (23, 17, 3), dtype=np.uint8)
    write_image(tmp_path / "in.png", rgb)
    assert main(["restore", str(tmp_path / "in.png"), "-o", str(tmp_path / "auto.png"), "--model",
                 str(tiny_checkpoint), "--device", "cpu"]) == 0
    assert main(["restore", str(tmp_path / "in.png"), "-o", str(tmp_path / "eager.png"), "--model",
                 str(tiny_checkpoint), "--device", "cpu", "--backend", "eager"]) == 0
    diff = read_image(tmp_path / "auto.png")[0].astype(int) - read_image(tmp_path / "eager.png")[0].astype(int)
    assert np.abs(diff).max() <= 1   # onnxruntime vs the reference: rounding of a few pixels at most


def test_cpu_session_uses_torchs_thread_count(tiny_checkpoint, tmp_path):
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        backend = _backend(_model(tiny_checkpoint), tmp_path)
    finally:
        torch.set_num_threads(before)
    assert backend.session.get_session_options().intra_op_num_threads == 1
