"""INT8: the Q/DQ model of the bundled irflow-denoise-s in ONNX Runtime (CPU) against the eager fp32
backend on held-out photographs; the report; calibration table reuse; calibration frame sources."""

import json

import numpy as np
import pytest

pytest.importorskip("onnx", reason="the INT8 tests need onnx: pip install -e '.[onnx]'")
pytest.importorskip("onnxruntime", reason="the INT8 tests need onnxruntime: pip install -e '.[onnx]'")
pytest.importorskip("skimage", reason="the INT8 tests calibrate and score on scikit-image's photographs")

import onnx  # noqa: E402
import torch  # noqa: E402
from onnx import numpy_helper  # noqa: E402

from irflow_engine import Engine  # noqa: E402
from irflow_engine.cli import main  # noqa: E402
from irflow_engine.datasets import load_image_set  # noqa: E402
from irflow_engine.degrade import gaussian_noise  # noqa: E402
from irflow_engine.export import calib_frames  # noqa: E402
from irflow_engine.export.calibrate import CalibrationTable, QuantOptions, quantize_int8  # noqa: E402
from irflow_engine.export.onnx import ort_session, read_metadata  # noqa: E402
from irflow_engine.export.quant_report import psnr  # noqa: E402
from irflow_engine.images import write_image  # noqa: E402

SIGMA = 25.0
# Small crops keep the test quick on 2 CPU cores (the 3-step sampler costs ~2 MFLOP per pixel);
# docs/export.md has the same measurement on the whole held-out photographs.
CALIB_FRAMES, CALIB_CROP, EVAL_CROP = 4, 64, 72


@pytest.fixture(scope="module")
def int8_build(tmp_path_factory):
    out = tmp_path_factory.mktemp("int8") / "denoise-int8.onnx"
    train = [img for _, img in load_image_set("skimage:train")]
    return quantize_int8("irflow-denoise-s", out, train, steps=3, count=CALIB_FRAMES, crop=CALIB_CROP,
                         report_frames=1)


def test_int8_denoiser_stays_close_to_fp32_on_held_out_photographs(int8_build):
    eager = Engine.from_checkpoint("irflow-denoise-s", steps=3)  # fp32, the reference
    int8 = ort_session(int8_build.path)
    rng = np.random.default_rng(0)
    for name, image in load_image_set("skimage:heldout"):
        clean = calib_frames.center_crop(image, EVAL_CROP).astype(np.float32) / 255.0
        noisy = np.round(gaussian_noise(clean, SIGMA, rng) * 255.0) / 255.0
        y = np.ascontiguousarray(noisy.transpose(2, 0, 1)[None])
        a = np.clip(eager.restore_batch(torch.from_numpy(y)).numpy(), 0, 1)
        b = np.clip(int8.run(None, {"degraded": y})[0], 0, 1)
        target = clean.transpose(2, 0, 1)[None]
        assert psnr(b, a) >= 35.0, name
        assert psnr(a, target) - psnr(b, target) <= 0.3, name


def test_int8_model_is_explicit_symmetric_per_channel_qdq(int8_build):
    result = int8_build
    model = onnx.load(str(result.path))
    assert read_metadata(model)["precision"] == "int8"
    inits = {i.name: i for i in model.graph.initializer}
    quant = [n for n in model.graph.node if n.op_type == "QuantizeLinear"]
    assert quant
    for n in quant:  # symmetric activations: zero point 0 (what TensorRT requires)
        assert not numpy_helper.to_array(inits[n.input[2]]).any()
    per_channel = [n for n in model.graph.node if n.op_type == "DequantizeLinear" and n.input[1] in inits
                   and numpy_helper.to_array(inits[n.input[1]]).size > 1]
    assert per_channel, "weights should carry one scale per output channel"
    kept = set(result.excluded_nodes)
    assert {"/init_conv/Conv", "/final_conv/Conv", "/ups.2.3/Conv"} <= kept
    assert any("/fn/fn" in k and "MatMul" in k for k in kept)
    dq_out = {o for n in model.graph.node if n.op_type == "DequantizeLinear" for o in n.output}
    for n in model.graph.node:
        if n.name in kept:
            assert not set(n.input) & dq_out, f"{n.name} should stay float"


def test_report_and_table_are_written(int8_build):
    result = int8_build
    report = json.loads(result.report_path.read_text())
    layers = report["layers"]
    assert len(layers) > 50 and layers[0]["sqnr_db"] <= layers[-1]["sqnr_db"]
    assert report["summary"]["output_psnr_db_vs_fp32"] == pytest.approx(result.output_psnr_db)
    table = CalibrationTable.load(result.table_path)
    assert table.method == "minmax" and table.frames == CALIB_FRAMES and len(table.ranges) > 50
    assert table.mismatch(table.onnx_sha256, QuantOptions()) is None
    assert "another graph" in table.mismatch("0" * 64, QuantOptions())
    assert "method minmax" in table.mismatch(table.onnx_sha256, QuantOptions(method="entropy"))
    with pytest.raises(ValueError, match="more than 128"):
        QuantOptions(method="entropy", entropy_bins=128)


@pytest.fixture
def one_level_checkpoint(tmp_path, one_level_model):
    """A one-level network saved as a checkpoint with no recorded degradation (quick to export)."""
    from irflow_engine import CheckpointMeta, save_checkpoint

    return save_checkpoint(tmp_path / "one-level.safetensors", one_level_model, one_level_model.config,
                           CheckpointMeta(task="test"))


def test_cli_int8_on_a_folder_then_a_rebuild_from_the_table(tmp_path, one_level_checkpoint, capsys):
    frames = tmp_path / "frames"
    rng = np.random.default_rng(1)
    for i in range(3):
        write_image(frames / f"f{i}.png", rng.integers(0, 256, (20 + i, 17, 3), dtype=np.uint8))
    out = tmp_path / "net-int8.onnx"
    args = ["export", "int8", "--model", str(one_level_checkpoint), "--steps", "1", "--network-only",
            "--degradation", "none", "--keep-float", "stem,head", "-o", str(out)]
    assert main(args + ["--calib", str(frames), "--calib-count", "2", "--calib-size", "16",
                        "--report-frames", "1"]) == 0
    err = capsys.readouterr().err
    assert "wrote calibration table" in err and "SQNR" in err
    sess = ort_session(out)
    assert [i.name for i in sess.get_inputs()] == ["x", "t"]
    x = rng.random((1, 3, 11, 7), dtype=np.float32)
    first = sess.run(None, {"x": x, "t": np.array([700.0], np.float32)})[0]
    assert first.shape == x.shape

    # A rebuild without frames reuses the table: no calibration, the same Q/DQ model.
    assert main(args + ["--overwrite"]) == 0
    assert "reused calibration table" in capsys.readouterr().err
    again = ort_session(out).run(None, {"x": x, "t": np.array([700.0], np.float32)})[0]
    np.testing.assert_array_equal(again, first)

    assert main(["export", "int8", "--model", str(one_level_checkpoint), "--calib", str(frames), "-o",
                 str(tmp_path / "y.onnx")]) == 1
    assert "records no degradation" in capsys.readouterr().err


def test_sample_evenly_spreads_over_sequences_of_unknown_length():
    assert calib_frames.sample_evenly(range(5), 8) == [0, 1, 2, 3, 4]
    assert calib_frames.sample_evenly(range(100), 5) == [0, 25, 50, 74, 99]
    picked = calib_frames.sample_evenly((i for i in range(1000)), 4)  # no length: even to within 1/4
    assert len(picked) == 4 and picked[0] == 0 and picked[-1] >= 700
    assert all(200 <= b - a <= 450 for a, b in zip(picked, picked[1:]))
    with pytest.raises(ValueError, match="at least one"):
        calib_frames.sample_evenly(range(3), 0)


def test_frame_sources_images_and_video(tmp_path):
    pytest.importorskip("av", reason="PyAV is not installed (a base dependency: pip install av)")
    from irflow_engine.video.synth import write_noisy_pan

    write_image(tmp_path / "a.png", np.zeros((5, 6, 3), np.uint8))
    assert [f.shape for f in calib_frames.read_frames(tmp_path, 3)] == [(5, 6, 3)]
    (tmp_path / "broken.mp4").write_bytes(b"not really")
    with pytest.raises(ValueError, match="cannot read"):
        calib_frames.read_frames(tmp_path / "broken.mp4", 3)
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(ValueError, match="neither an image folder"):
        calib_frames.read_frames(tmp_path / "notes.txt", 3)
    # A real clip: 10 frames of a pan; two picked evenly are the first and the last decoded frames.
    clip = write_noisy_pan(tmp_path / "clip.mkv", size=(32, 24), frames=10, sigma=0.0, audio=False,
                           codec="ffv1")
    got = calib_frames.read_frames(tmp_path / "clip.mkv", 2)
    assert [f.shape for f in got] == [(24, 32, 3)] * 2
    for frame, clean in zip(got, (clip.noisy[0], clip.noisy[-1])):  # 4:2:0 round trip: close, not exact
        assert np.abs(frame.astype(np.float32) / 255.0 - clean).mean() < 0.03
    with pytest.raises(ValueError, match="uint8 H×W×3"):
        calib_frames.read_frames([np.zeros((4, 4), np.uint8)], 1)
    with pytest.raises(ValueError, match="neither a group"):
        QuantOptions(keep_float=("stemm",))


def test_histogram_methods_clip_what_minmax_keeps(tmp_path, one_level_model):
    from irflow_engine.export.calibrate import calibrate_ranges
    from irflow_engine.export.onnx import export_graph

    onnx.save(export_graph(one_level_model, None), str(tmp_path / "net.onnx"))
    rng = np.random.default_rng(0)
    feeds = [{"x": rng.random((1, 3, 16, 16), dtype=np.float32), "t": np.array([t], np.float32)}
             for t in (900.0, 300.0)]
    ranges = {m: calibrate_ranges(tmp_path / "net.onnx", feeds,
                                  QuantOptions(method=m, percentile=99.0, entropy_bins=160))
              for m in ("minmax", "entropy", "percentile")}
    assert ranges["minmax"].keys() == ranges["entropy"].keys() == ranges["percentile"].keys()
    for method in ("entropy", "percentile"):
        narrower = 0
        for name, (lo, hi) in ranges["minmax"].items():
            width = max(abs(lo), abs(hi))
            got = max(abs(v) for v in ranges[method][name])
            assert got <= width * (1 + 1e-5), (method, name)
            narrower += got < 0.99 * width
        assert narrower > len(ranges["minmax"]) // 2, f"{method} should clip most tensors' outliers"
