"""Evaluation metrics against hand computations, and `irflow eval` end to end."""

import json

import numpy as np
import pytest

from irflow_engine.cli import main
from irflow_engine.evaluate import image_metrics, synthetic_pairs
from irflow_engine.images import write_image


def _pair(seed=0, shape=(24, 31, 3)):
    rng = np.random.default_rng(seed)
    clean = rng.integers(20, 236, size=shape, dtype=np.uint8)
    noisy = np.clip(clean.astype(np.int32) + rng.integers(-12, 13, size=shape), 0, 255).astype(np.uint8)
    return noisy, clean


def test_psnr_matches_hand_computation():
    noisy, clean = _pair()
    m = image_metrics(noisy, clean)
    mse = np.mean((noisy.astype(np.float64) - clean) ** 2)
    assert m["psnr_rgb"] == pytest.approx(10 * np.log10(255.0 ** 2 / mse), abs=1e-9)

    def y(img):  # BT.601 luma, studio range, from R, G, B in [0, 1]
        r, g, b = (img.astype(np.float64) / 255.0).transpose(2, 0, 1)
        return 16.0 + 65.481 * r + 128.553 * g + 24.966 * b

    mse_y = np.mean((y(noisy) - y(clean)) ** 2)
    assert m["psnr_y"] == pytest.approx(10 * np.log10(255.0 ** 2 / mse_y), abs=1e-6)


def test_ssim_bounds():
    noisy, clean = _pair()
    same = image_metrics(clean, clean)
    assert same["ssim_rgb"] == pytest.approx(1.0) and same["ssim_y"] == pytest.approx(1.0)
    m = image_metrics(noisy, clean)
    assert 0 < m["ssim_rgb"] < 1 and 0 < m["ssim_y"] < 1
    worse = image_metrics(_pair(1)[0] // 2, clean)
    assert worse["ssim_rgb"] < m["ssim_rgb"] and worse["psnr_rgb"] < m["psnr_rgb"]
    with pytest.raises(ValueError, match="uint8"):
        image_metrics(noisy.astype(np.float32), clean)


def test_synthetic_pairs_are_deterministic():
    clean = [("a", _pair(2)[1]), ("b", _pair(3)[1])]
    p1 = synthetic_pairs(clean, "noise", 25.0, seed=4)
    p2 = synthetic_pairs(clean, "noise", 25.0, seed=4)
    for (n1, lq1, gt1), (n2, lq2, gt2) in zip(p1, p2):
        assert n1 == n2 and lq1.dtype == np.uint8
        np.testing.assert_array_equal(lq1, lq2)
    assert not np.array_equal(p1[0][1], p1[1][1][: p1[0][1].shape[0]])
    noise = p1[0][1].astype(np.float64) - p1[0][2]
    assert np.std(noise) == pytest.approx(25.0, rel=0.1)


def test_eval_command(tmp_path, tiny_checkpoint, capsys):
    gt = tmp_path / "gt"
    for i in range(2):
        write_image(gt / f"im{i}.png", _pair(i)[1])
    out = tmp_path / "eval.json"
    rc = main(["eval", "--model", str(tiny_checkpoint), "--gt", str(gt), "--degradation", "noise",
               "--level", "20", "--steps", "1,2", "--baseline", "nlm", "--device", "cpu", "--json", str(out)])
    assert rc == 0
    data = json.loads(out.read_text())
    methods = [r["method"] for r in data["rows"]]
    assert methods[0] == "degraded input" and methods[1].startswith("NLM") and len(methods) == 4
    assert data["images"] == ["im0.png", "im1.png"]
    assert set(data["rows"][2]["per_image"]) == {"im0.png", "im1.png"}
    assert "PSNR RGB" in capsys.readouterr().out


def test_eval_paired_folders(tmp_path, tiny_checkpoint, capsys):
    for sub in ("lq", "gt"):
        (tmp_path / sub).mkdir()
    noisy, clean = _pair(5)
    write_image(tmp_path / "lq" / "x.png", noisy)
    write_image(tmp_path / "gt" / "x.png", clean)
    write_image(tmp_path / "gt" / "extra.png", clean)
    args = ["eval", "--model", str(tiny_checkpoint), "--gt", str(tmp_path / "gt"), "--lq", str(tmp_path / "lq"),
            "--steps", "1", "--device", "cpu"]
    assert main(args) == 1
    assert "only in GT: ['extra.png']" in capsys.readouterr().err
    (tmp_path / "gt" / "extra.png").unlink()
    assert main(args) == 0
