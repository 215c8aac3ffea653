"""`irflow-bench-latency`: --help, a tiny CPU run, its JSON, and the FLOP counter."""

import json
import shutil
import subprocess
import sys

import pytest

from irflow_engine import ModelConfig
from irflow_engine.bench import flops_per_evaluation, main


def _cmd():
    exe = shutil.which("irflow-bench-latency")
    return [exe] if exe else [sys.executable, "-m", "irflow_engine.bench"]


def test_help():
    proc = subprocess.run(_cmd() + ["--help"], capture_output=True, text=True)
    assert proc.returncode == 0
    assert "--resolution" in proc.stdout and "--json" in proc.stdout


def test_tiny_cpu_run_writes_json(tmp_path, tiny_checkpoint, capsys):
    out = tmp_path / "r" / "bench.json"
    rc = main(["--model", str(tiny_checkpoint), "--device", "cpu", "--resolution", "16x8,9x9",
               "--batch", "1,2", "--steps", "1,2", "--iters", "3", "--warmup", "0",
               "--precision", "fp32", "--json", str(out)])
    assert rc == 0
    data = json.loads(out.read_text())
    assert data["model_config"] == {"nf": 8, "depth": 3, "in_nc": 3, "out_nc": 3}
    rows = data["results"]
    assert len(rows) == 2 * 2 * 2
    for r in rows:
        assert r["ms_per_frame_p50"] > 0 and r["ms_per_frame_p50"] <= r["ms_per_frame_p99"]
        assert r["tflops"] > 0 and r["pct_of_ceiling"] > 0
        assert r["evaluations"] == r["steps"]
        expected = flops_per_evaluation(ModelConfig(nf=8, depth=3), r["batch"], r["height"], r["width"])
        assert r["flop_per_frame"] == expected * r["steps"] / r["batch"]
    table = capsys.readouterr().out
    assert "p50 ms" in table and "16x8" in table


def test_explicit_runs(tiny_checkpoint, capsys, tmp_path):
    out = tmp_path / "bench.json"
    rc = main(["--model", str(tiny_checkpoint), "--device", "cpu", "--resolution", "8x8", "--iters", "1",
               "--runs", "eager:fp32,eager:bf16", "--no-ceiling", "--json", str(out)])
    assert rc == 0
    lines = [l for l in capsys.readouterr().out.splitlines() if l.strip().startswith("eager")]
    assert [l.split()[1] for l in lines] == ["fp32", "bf16"]
    # Each run's output is compared with the first run's on the same input: bf16 (8 bits of mantissa)
    # differs from fp32 by more than fp32 rounding and less than 5 %.
    fp32, bf16 = json.loads(out.read_text())["results"]
    assert fp32["rel_err"] is None and fp32["rel_err_vs"] is None
    assert 1e-4 < bf16["rel_err"] < 5e-2 and bf16["rel_err_vs"] == "eager:fp32"
    assert lines[0].split()[-1] == "-" and float(lines[1].split()[-1]) == pytest.approx(bf16["rel_err"], rel=0.1)


def test_bad_arguments(capsys):
    assert main(["--runs", "eager:fp64", "--iters", "1"]) == 1
    assert "unknown precision" in capsys.readouterr().err
    assert main(["--backend", "nope", "--iters", "1"]) == 1
    assert "unknown backend" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--resolution", "12by7"])


def test_flop_count_matches_design():
    # DESIGN.md §3: 11.6 MFLOP/px for nf64/d4, 3.04 for nf32/d4, 2.4 for nf32/d3.
    px = 1280 * 720
    assert flops_per_evaluation(ModelConfig(nf=64, depth=4), 1, 720, 1280) / px / 1e6 == pytest.approx(11.6, abs=0.05)
    assert flops_per_evaluation(ModelConfig(nf=32, depth=4), 1, 720, 1280) / px / 1e6 == pytest.approx(3.04, abs=0.01)
    assert flops_per_evaluation(ModelConfig(nf=32, depth=3), 1, 720, 1280) / px / 1e6 == pytest.approx(2.40, abs=0.01)
    # The convolutions scale with the batch; only the tiny time MLPs (run once per call) do not.
    one = flops_per_evaluation(ModelConfig(nf=8, depth=3), 1, 16, 16)
    assert flops_per_evaluation(ModelConfig(nf=8, depth=3), 2, 16, 16) == pytest.approx(2 * one, rel=1e-3)
