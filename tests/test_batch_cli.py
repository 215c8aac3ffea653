"""`irflow restore-batch` without Ray says how to install it; bad inputs are clear errors."""

import sys

import numpy as np

from irflow_engine.cli import main
from irflow_engine.images import write_image


def test_without_ray_says_how_to_install(tmp_path, monkeypatch, capsys):
    write_image(tmp_path / "a.png", np.full((8, 8, 3), 90, np.uint8))
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    assert main(["restore-batch", str(tmp_path / "a.png"), "-o", str(tmp_path / "out"),
                 "--model", "irflow-unet16-d3"]) == 1
    err = capsys.readouterr().err
    assert "pip install 'irflow-engine[ray]'" in err
    assert not (tmp_path / "out" / "a.png").exists()


def test_missing_input_is_a_clear_error(tmp_path, capsys):
    assert main(["restore-batch", str(tmp_path / "nope"), "-o", str(tmp_path / "out"),
                 "--model", "irflow-unet16-d3"]) == 1
    assert "does not exist" in capsys.readouterr().err
