"""benchmarks/roofline.py: its op accounting agrees with torch's FLOP counter on a real run."""

import importlib.util
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from irflow_engine.config import ModelConfig
from irflow_engine.models import ConditionalUNet

spec = importlib.util.spec_from_file_location("roofline", Path(__file__).parents[1] / "benchmarks" / "roofline.py")
roofline = importlib.util.module_from_spec(spec)
spec.loader.exec_module(roofline)


def test_flops_match_torch_counter_and_classes_are_found():
    rows = roofline.record("irflow-unet16-d3", 40, 24, itemsize=4)
    model = ConditionalUNet.from_config(ModelConfig.from_name("irflow-unet16-d3")).eval()
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(torch.rand(1, 3, 24, 40), 500)
    assert sum(f for _, f, _ in rows) == counter.get_total_flops()
    classes = {c for c, _, _ in rows}
    assert {"conv 3x3", "conv 1x1", "conv 7x7", "conv 4x4 stride 2", "attention matmul", "softmax"} <= classes
    # bytes: the stem conv reads the 3-channel 24x40 input (a multiple of 8: no padding) and its
    # weights, and writes 16 channels
    stem = [m for c, _, m in rows if c == "conv 7x7"]
    assert stem == [4 * (3 * 24 * 40 + 16 * 3 * 49 + 16 * 24 * 40)]


def test_cli_prints_a_table(capsys):
    assert roofline.main(["--model", "irflow-unet16-d3", "--resolution", "64x48", "--measured-ms", "1"]) == 0
    out = capsys.readouterr().out
    assert "| conv 3x3 |" in out and "**total**" in out and "TFLOP/s achieved" in out
