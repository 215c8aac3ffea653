"""Checkpoint round trips (ours and reference .pth) and every bad-checkpoint error."""

import json
import pickle

import pytest
import torch

from irflow_engine import CheckpointError, CheckpointMeta, ModelConfig, load_checkpoint, save_checkpoint
from irflow_engine.checkpoint import infer_config, resolve


def _same_state(a, b):
    assert list(a) == list(b) or set(a) == set(b)
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_ours_round_trip(tmp_path, golden_state, golden_config):
    meta = CheckpointMeta(preset=None, task="derain", degradation={"kind": "rain", "levels": [1, 2]},
                          training_data="skimage", default_steps=4, default_solver="heun")
    path = save_checkpoint(tmp_path / "m.safetensors", golden_state, golden_config, meta)
    loaded = load_checkpoint(path)
    assert loaded.source == "safetensors" and loaded.config == golden_config
    assert loaded.meta.task == "derain" and loaded.meta.degradation == {"kind": "rain", "levels": [1, 2]}
    assert (loaded.meta.default_steps, loaded.meta.default_solver) == (4, "heun")
    _same_state(loaded.state_dict, golden_state)
    assert not list(tmp_path.glob(".*tmp"))  # no temporary file left behind


@pytest.mark.parametrize("prefix", ["", "module."])
@pytest.mark.parametrize("wrap", [None, "params", "state_dict"])
def test_reference_pth(tmp_path, golden_state, golden_config, prefix, wrap):
    state = {prefix + k: v for k, v in golden_state.items()}
    obj = state if wrap is None else {wrap: state, "iter": torch.tensor(3)}
    path = tmp_path / "best_G.pth"
    torch.save(obj, path)
    loaded = load_checkpoint(path)
    assert loaded.source == "pth"
    assert loaded.config == golden_config  # inferred from the shapes
    _same_state(loaded.state_dict, golden_state)
    model = loaded.build_model()
    assert not model.training


def test_fp16_pth_loads_as_fp32(tmp_path, golden_state, golden_config):
    path = tmp_path / "half.pth"
    torch.save({k: v.half() for k, v in golden_state.items()}, path)
    loaded = load_checkpoint(path)
    assert all(v.dtype == torch.float32 for v in loaded.state_dict.values())


def test_infer_config_paper_shapes():
    with torch.device("meta"):
        from irflow_engine.models import ConditionalUNet
        state = ConditionalUNet(nf=64, depth=4).state_dict()
    assert infer_config(state) == ModelConfig(nf=64, depth=4)


def test_explicit_config_overrides_inference(tmp_path, golden_state):
    path = tmp_path / "w.pth"
    torch.save(golden_state, path)
    with pytest.raises(CheckpointError, match=r"w\.pth.*has shape"):
        load_checkpoint(path, config=ModelConfig(nf=16, depth=3))


def _expect(path, pattern, **kw):
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path, **kw)
    assert str(path) in str(info.value)
    assert pattern in str(info.value), str(info.value)


def test_missing_key(tmp_path, golden_state):
    state = dict(golden_state)
    del state["mid_attn.fn.norm.g"]
    torch.save(state, tmp_path / "a.pth")
    _expect(tmp_path / "a.pth", "missing key 'mid_attn.fn.norm.g'")


def test_unexpected_key(tmp_path, golden_state):
    torch.save({**golden_state, "extra.weight": torch.ones(2)}, tmp_path / "a.pth")
    _expect(tmp_path / "a.pth", "unexpected key 'extra.weight'")


def test_shape_mismatch(tmp_path, golden_state):
    state = dict(golden_state)
    state["final_conv.bias"] = torch.ones(4)
    torch.save(state, tmp_path / "a.pth")
    _expect(tmp_path / "a.pth", "key 'final_conv.bias' has shape (4,)")


def test_nan_weights(tmp_path, golden_state, golden_config):
    state = dict(golden_state)
    state["time_mlp.1.bias"] = state["time_mlp.1.bias"].clone()
    state["time_mlp.1.bias"][3] = float("nan")
    torch.save(state, tmp_path / "a.pth")
    _expect(tmp_path / "a.pth", "'time_mlp.1.bias' holds NaN")


def test_integer_weights(tmp_path, golden_state):
    state = dict(golden_state)
    state["final_conv.bias"] = torch.ones(3, dtype=torch.int64)
    torch.save(state, tmp_path / "a.pth")
    _expect(tmp_path / "a.pth", "'final_conv.bias' has dtype torch.int64")


def test_truncated_pth(tmp_path, golden_state):
    torch.save(golden_state, tmp_path / "a.pth")
    data = (tmp_path / "a.pth").read_bytes()
    (tmp_path / "t.pth").write_bytes(data[: len(data) // 2])
    _expect(tmp_path / "t.pth", "")


def test_truncated_safetensors(tiny_checkpoint, tmp_path):
    data = tiny_checkpoint.read_bytes()
    for cut in (len(data) // 2, 100, 12):
        path = tmp_path / f"t{cut}.safetensors"
        path.write_bytes(data[:cut])
        _expect(path, "truncated" if cut < 1000 else "")


def test_not_a_checkpoint(tmp_path):
    (tmp_path / "notes.txt").write_text("hello, this is not a network\n" * 20)
    _expect(tmp_path / "notes.txt", "not a checkpoint")
    (tmp_path / "empty.pth").write_bytes(b"")
    _expect(tmp_path / "empty.pth", "not a checkpoint")


def test_not_a_state_dict(tmp_path):
    torch.save([torch.ones(2)], tmp_path / "list.pth")
    _expect(tmp_path / "list.pth", "not a state dict")
    torch.save({"init_conv.weight": torch.ones(8, 3, 7, 7), "note": "hi"}, tmp_path / "mixed.pth")
    _expect(tmp_path / "mixed.pth", "'note'")


class _Evil:
    def __reduce__(self):
        return (print, ("unpickled arbitrary code",))


def test_arbitrary_pickle_is_refused(tmp_path, capsys):
    with open(tmp_path / "evil.pth", "wb") as f:
        pickle.dump({"x": _Evil()}, f, protocol=2)
    _expect(tmp_path / "evil.pth", "cannot read as a PyTorch state dict")
    assert "unpickled arbitrary code" not in capsys.readouterr().out


def test_missing_file_and_directory(tmp_path):
    _expect(tmp_path / "nope.pth", "no such file")
    _expect(tmp_path, "is a directory")


def test_bad_header(tmp_path, golden_state, golden_config):
    from safetensors.torch import save_file

    save_file(golden_state, tmp_path / "h.safetensors", metadata={"irflow": "{not json"})
    _expect(tmp_path / "h.safetensors", "corrupt 'irflow' header")
    header = {"format": 1, "architecture": {"name": "ConditionalUNet", "nf": 8, "depth": 3, "wings": 2}}
    save_file(golden_state, tmp_path / "h2.safetensors", metadata={"irflow": json.dumps(header)})
    _expect(tmp_path / "h2.safetensors", "bad architecture")


def test_plain_safetensors_without_header(tmp_path, golden_state, golden_config):
    from safetensors.torch import save_file

    save_file({"module." + k: v for k, v in golden_state.items()}, tmp_path / "plain.safetensors")
    loaded = load_checkpoint(tmp_path / "plain.safetensors")
    assert loaded.config == golden_config


def test_resolve(tiny_checkpoint):
    assert resolve(str(tiny_checkpoint)).source == "safetensors"
    preset = resolve("irflow-unet32-d3")
    assert preset.random_weights and preset.config == ModelConfig(nf=32, depth=3)
    again = resolve("irflow-unet32-d3")
    assert torch.equal(preset.state_dict["final_conv.weight"], again.state_dict["final_conv.weight"])
    with pytest.raises(CheckpointError, match="no such file, bundled model or preset"):
        resolve("no-such-model")


def test_save_refuses_bad_state(tmp_path, golden_state, golden_config):
    state = dict(golden_state)
    del state["final_conv.bias"]
    with pytest.raises(CheckpointError, match="final_conv.bias"):
        save_checkpoint(tmp_path / "x.safetensors", state, golden_config)
    assert not list(tmp_path.iterdir())
