"""CPU threads (irflow_engine/cpus.py): a container's CPU quota lowers torch's thread count."""

import pytest
import torch

from irflow_engine import Engine, cpus


def test_quota_from_cgroup_files(tmp_path):
    v2 = tmp_path / "v2"
    v2.mkdir()
    (v2 / "cpu.max").write_text("150000 100000\n")
    assert cpus.cgroup_cpu_quota(v2) == 1.5
    (v2 / "cpu.max").write_text("max 100000\n")
    assert cpus.cgroup_cpu_quota(v2) is None
    v1 = tmp_path / "v1"
    v1.mkdir()
    (v1 / "cpu.cfs_quota_us").write_text("300000\n")
    (v1 / "cpu.cfs_period_us").write_text("100000\n")
    assert cpus.cgroup_cpu_quota(v1) == 3.0
    (v1 / "cpu.cfs_quota_us").write_text("-1\n")   # v1's "no quota"
    assert cpus.cgroup_cpu_quota(v1) is None
    assert cpus.cgroup_cpu_quota(tmp_path / "none") is None


def test_available_cpus_is_the_mask_lowered_to_the_tightest_quota(tmp_path, monkeypatch):
    monkeypatch.setattr(cpus, "affinity_cpus", lambda: 64)
    pod, container = tmp_path / "pod", tmp_path / "pod" / "container"
    container.mkdir(parents=True)
    (container / "cpu.max").write_text("max 100000\n")
    (pod / "cpu.max").write_text("150000 100000\n")   # 1.5 CPUs on the parent: two threads, rounded up
    assert cpus.available_cpus([container, pod]) == 2
    (container / "cpu.max").write_text("20000 100000\n")    # a fifth of a CPU: still one thread
    assert cpus.available_cpus([container, pod]) == 1
    (container / "cpu.max").write_text("max 100000\n")
    (pod / "cpu.max").write_text("max 100000\n")
    assert cpus.available_cpus([container, pod]) == 64
    assert 1 <= cpus.available_cpus() <= cpus.affinity_cpus()   # this machine's own cgroups


@pytest.fixture
def threads_restored(monkeypatch):
    before = torch.get_num_threads()
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    yield
    torch.set_num_threads(before)


def test_fit_threads_lowers_to_the_quota(threads_restored, monkeypatch):
    torch.set_num_threads(3)
    monkeypatch.setattr(cpus, "available_cpus", lambda: 1)
    assert cpus.fit_threads() == 1 and torch.get_num_threads() == 1
    monkeypatch.setattr(cpus, "available_cpus", lambda: 8)   # never raised above torch's own count
    torch.set_num_threads(2)
    assert cpus.fit_threads() == 2 and torch.get_num_threads() == 2
    monkeypatch.setenv("OMP_NUM_THREADS", "2")               # the user's explicit choice stands
    monkeypatch.setattr(cpus, "available_cpus", lambda: 1)
    assert cpus.fit_threads() == 2 and torch.get_num_threads() == 2
    assert cpus.fit_threads(3) == 3 and torch.get_num_threads() == 3
    with pytest.raises(ValueError, match="threads must be a positive integer"):
        cpus.fit_threads(0)


def test_engine_and_cli_threads(threads_restored, tiny_checkpoint):
    from irflow_engine.cli import build_parser

    torch.set_num_threads(2)
    engine = Engine.from_checkpoint(tiny_checkpoint, steps=1, threads=1)
    assert torch.get_num_threads() == 1 and engine.config.threads == 1
    with pytest.raises(ValueError, match="threads must be a positive integer"):
        Engine.from_checkpoint(tiny_checkpoint, threads=0)
    args = build_parser().parse_args(["restore", "in.png", "-o", "out.png", "--model", "m", "--threads", "3"])
    assert args.threads == 3
