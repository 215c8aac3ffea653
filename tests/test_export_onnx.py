"""ONNX export: the network and the K-step sampler in ONNX Runtime (CPU) against the eager backend,
on random inputs at odd sizes never seen at export (including sizes below the padding multiple)."""

import numpy as np
import pytest
import torch

pytest.importorskip("onnx", reason="the ONNX export tests need onnx: pip install -e '.[onnx]'")
pytest.importorskip("onnxruntime", reason="the ONNX export tests need onnxruntime: pip install -e '.[onnx]'")

import onnx  # noqa: E402

from irflow_engine import Engine  # noqa: E402
from irflow_engine.backends import BackendUnavailable  # noqa: E402
from irflow_engine.cli import main  # noqa: E402
from irflow_engine.export.graph import reflect_index  # noqa: E402
from irflow_engine.export.onnx import (PARITY_TOLERANCE, TRACE_SHAPE, export_graph, ort_session,  # noqa: E402
                                       parity_error, read_metadata)
from irflow_engine.flow import make_schedule  # noqa: E402
from irflow_engine.models import reflect_pad  # noqa: E402

# Odd sizes, none equal to the traced 21×30; 5×3 and 1×1 are smaller than the padding multiple
# (8 at depth 3). The sampler tests use a one-level network (the same code path, quicker to trace).
SHAPES = [(2, 3, 19, 13), (1, 3, 5, 3), (1, 3, 1, 1)]


def _dims(value_info):
    return [d.dim_param or d.dim_value for d in value_info.type.tensor_type.shape.dim]


@pytest.mark.parametrize("n", [1, 2, 3, 7, 8])
def test_reflect_index_equals_reflect_pad(n):
    x = torch.arange(float(n))[None, None, :, None]
    for pad in range(0, 3 * n + 9):
        want = reflect_pad(x, pad, 0)[0, 0, :, 0]
        assert torch.equal(x[0, 0, reflect_index(n, pad, "cpu"), 0], want), (n, pad)


@pytest.mark.parametrize("solver,steps", [("euler", 3), ("heun", 2)])
def test_sampler_graph_matches_eager(one_level_model, solver, steps):
    schedule = make_schedule(steps, solver)
    proto = export_graph(one_level_model, schedule, "fp32")
    assert [i.name for i in proto.graph.input] == ["degraded"] and proto.graph.output[0].name == "restored"
    ops = {n.op_type for n in proto.graph.node}
    assert not ops & {"Sin", "Cos"}, "the time embeddings should be constants, not computed in the graph"
    session = ort_session(proto)
    for seed, shape in enumerate(SHAPES):
        assert TRACE_SHAPE != shape
        assert parity_error(session, one_level_model, schedule, shape, seed) <= PARITY_TOLERANCE["fp32"], shape


def test_fp16_sampler_keeps_fp32_islands(one_level_model):
    schedule = make_schedule(2)
    proto = export_graph(one_level_model, schedule, "fp16")
    conv_weights = {n.input[1] for n in proto.graph.node if n.op_type == "Conv"}
    dtypes = {i.data_type for i in proto.graph.initializer if i.name in conv_weights}
    assert dtypes == {onnx.TensorProto.FLOAT16}
    assert proto.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT  # I/O stay fp32
    inferred = onnx.shape_inference.infer_shapes(proto)
    types = {v.name: v.type.tensor_type.elem_type for v in inferred.graph.value_info}
    softmax_inputs = [types.get(n.input[0]) for n in inferred.graph.node if n.op_type == "Softmax"]
    assert softmax_inputs and set(softmax_inputs) == {onnx.TensorProto.FLOAT}
    session = ort_session(proto)
    for seed, shape in enumerate(SHAPES[:2]):
        assert parity_error(session, one_level_model, schedule, shape, seed) <= PARITY_TOLERANCE["fp16"], shape


def test_cli_exports_the_network_checked_with_metadata_and_matching_eager(tmp_path, tiny_checkpoint,
                                                                          golden_model, capsys):
    out = tmp_path / "net.onnx"
    args = ["export", "onnx", "--model", str(tiny_checkpoint), "--steps", "3", "--solver", "heun",
            "--network-only", "-o", str(out), "--verify"]
    assert main(args) == 0
    err = capsys.readouterr().err
    assert "relative error" in err and "wrote" in err
    onnx.checker.check_model(str(out), full_check=True)
    proto = onnx.load(str(out))
    assert [i.name for i in proto.graph.input] == ["x", "t"]
    assert _dims(proto.graph.input[0]) == ["batch", 3, "height", "width"]
    meta = read_metadata(proto)
    assert {k: meta[k] for k in ("graph", "steps", "solver", "precision", "package_version")} == {
        "graph": "network", "steps": "3", "solver": "heun", "precision": "fp32", "package_version": "0.1.0"}
    assert meta["times"] == ",".join(map(str, make_schedule(3, "heun").times))
    session = ort_session(out)  # the tiny checkpoint holds the golden (reference) weights
    for seed, shape in enumerate(SHAPES):
        assert parity_error(session, golden_model, None, shape, seed) <= PARITY_TOLERANCE["fp32"], shape

    assert main(args) == 1
    assert "exists; pass --overwrite" in capsys.readouterr().err
    assert main(["export", "onnx", "--model", str(tiny_checkpoint), "-o", str(tmp_path / "x.pt")]) == 1
    assert "should end in .onnx" in capsys.readouterr().err


def test_onnxruntime_backend_matches_eager(tiny_checkpoint):
    eager = Engine.from_checkpoint(tiny_checkpoint, steps=1)
    ort_engine = Engine.from_checkpoint(tiny_checkpoint, backend="onnxruntime", steps=1)
    y = torch.rand(3, 3, 13, 27, generator=torch.Generator().manual_seed(3))
    want, got = eager.restore_batch(y), ort_engine.restore_batch(y)
    assert float((got - want).abs().max() / want.abs().max()) <= PARITY_TOLERANCE["fp32"]
    rgb = np.random.default_rng(4).integers(0, 256, (11, 9, 3), dtype=np.uint8)
    assert np.abs(ort_engine.restore(rgb).astype(int) - eager.restore(rgb).astype(int)).max() <= 1


def test_onnxruntime_backend_explains_what_is_missing(tiny_checkpoint, monkeypatch):
    with pytest.raises(BackendUnavailable, match="not bf16"):
        Engine.from_checkpoint(tiny_checkpoint, backend="onnxruntime", precision="bf16")
    monkeypatch.setitem(__import__("sys").modules, "onnxruntime", None)  # import now fails
    with pytest.raises(BackendUnavailable, match=r"onnxruntime is not installed: pip install"):
        Engine.from_checkpoint(tiny_checkpoint, backend="onnxruntime")


def test_readme_export_example_runs(tmp_path, monkeypatch):
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    blocks = [b for b in re.findall(r"```python\n(.*?)```", text, flags=re.S) if "export_onnx" in b]
    assert len(blocks) == 1, "README should have one python example of the export"
    monkeypatch.chdir(tmp_path)
    exec(compile(blocks[0], "README.md", "exec"), {})
    assert (tmp_path / "demo_out" / "denoise.onnx").stat().st_size > 0
