"""The CPU memory budget (irflow_engine/memory.py): fewer frames per call, then tiles; CPU
allocation failures retried in tiles; --memory-limit."""

import logging

import pytest
import torch

from irflow_engine import Engine, memory
from irflow_engine.memory import PassPlan, plan_pass
from irflow_engine.tiling import restore_tiled

BPP = memory.CPU_BYTES_PER_PIXEL


def test_plan_closed_form():
    frame = 720 * 1280 * BPP
    assert plan_pass(720, 1280, 4, None, 8) == PassPlan(4)                     # no budget known
    assert plan_pass(720, 1280, 4, 10 * frame, 8) == PassPlan(4)               # max_batch bounds it
    assert plan_pass(720, 1280, 4, 2 * frame + 5, 8) == PassPlan(2)            # two frames fit
    assert plan_pass(720, 1280, 4, frame, 8) == PassPlan(1)                    # exactly one
    # One frame is too large: the largest square tile that fits, a multiple of 8, one per call.
    budget = 600 * 600 * BPP
    assert plan_pass(720, 1280, 4, budget, 8) == PassPlan(1, 600)
    assert plan_pass(720, 1280, 4, budget + 1, 16) == PassPlan(1, 592)
    # Large tiles (the attention sees more), never below MIN_AUTO_TILE, whatever the budget.
    assert plan_pass(4000, 3000, 4, 2 * 256 * 256 * BPP + 1, 8) == PassPlan(1, 360)
    assert plan_pass(4000, 3000, 4, 1000, 8) == PassPlan(1, memory.MIN_AUTO_TILE)
    # A small frame over a tiny budget: tiles could not be smaller than it, so it runs whole.
    assert plan_pass(100, 120, 4, 1000, 8) == PassPlan(1)


def test_budget_setting():
    assert memory.memory_budget(0) is None and memory.memory_budget(12345) == 12345
    available = memory.available_memory()
    assert available is not None and available > 0   # Linux: /proc/meminfo
    auto = memory.memory_budget(None)
    assert 0 < auto <= available


def test_container_limit_lowers_the_available_memory(tmp_path):
    """Docker/Kubernetes limit a container's cgroup while /proc/meminfo shows the host: the room
    under the tightest limit (page cache counted as free) must win."""
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       65536000 kB\nMemAvailable:   60000000 kB\n")
    host = 60000000 * 1024
    v2 = tmp_path / "v2"
    v2.mkdir()
    (v2 / "memory.max").write_text("4000000000\n")
    (v2 / "memory.current").write_text("1500000000\n")
    (v2 / "memory.stat").write_text("anon 1000000000\ninactive_file 500000000\nactive_file 1\n")
    assert memory.cgroup_room(v2) == 4_000_000_000 - 1_000_000_000
    assert memory.available_memory(meminfo, [v2]) == 3_000_000_000
    (v2 / "memory.max").write_text("max\n")
    assert memory.cgroup_room(v2) is None and memory.available_memory(meminfo, [v2]) == host
    v1 = tmp_path / "v1"
    v1.mkdir()
    (v1 / "memory.limit_in_bytes").write_text("2000000000\n")
    (v1 / "memory.usage_in_bytes").write_text("2500000000\n")   # over the limit: no room
    (v1 / "memory.stat").write_text("cache 9\ntotal_inactive_file 100000000\n")
    assert memory.available_memory(meminfo, [v2, v1]) == 0       # the tightest folder wins
    (v1 / "memory.limit_in_bytes").write_text("9223372036854771712\n")   # v1's "unlimited"
    assert memory.available_memory(meminfo, [v1]) == host
    assert memory.available_memory(meminfo, [tmp_path / "none"]) == host   # no cgroup files at all
    assert memory.available_memory(tmp_path / "no-meminfo", []) > 0   # half the physical memory


@pytest.fixture
def spied(tiny_checkpoint):
    """An engine whose backend records the shapes it is called with."""
    def make(budget):
        engine = Engine.from_checkpoint(tiny_checkpoint, steps=1, memory_budget=budget)
        real, seen = engine.backend.restore, []
        engine.backend.restore = lambda y: seen.append(tuple(y.shape)) or real(y)
        return engine, seen, real
    return make


def test_fewer_frames_per_call_give_the_same_result(spied):
    y = torch.rand(5, 3, 24, 40, generator=torch.Generator().manual_seed(1))
    engine, seen, real = spied(2 * 24 * 40 * BPP + 7)   # two frames per call fit, not three
    out = engine.restore_batch(y)
    assert [s[0] for s in seen] == [2, 2, 1]
    # Equal up to float rounding: oneDNN's convolutions block by batch size, so 2 and 5 frames per
    # call sum in another order (1.2e-6 apart on an AVX-512 EPYC; a lost frame is ~0.1 away).
    torch.testing.assert_close(out, real(y), rtol=0, atol=1e-5)


def test_a_frame_over_the_budget_is_tiled_and_says_so(spied, monkeypatch, caplog):
    monkeypatch.setattr(memory, "MIN_AUTO_TILE", 16)
    y = torch.rand(1, 3, 50, 70, generator=torch.Generator().manual_seed(2))
    engine, seen, real = spied(32 * 32 * BPP + 1)   # one 32×32 tile per call
    with caplog.at_level(logging.WARNING):
        out = engine.restore_batch(y)
    assert seen and all(s == (1, 3, 32, 32) for s in seen)
    assert "restoring it in 32×32 tiles" in caplog.text and "70×50 frame" in caplog.text
    engine.backend.restore = real
    torch.testing.assert_close(out, restore_tiled(engine.restore_batch, y, 32, 8), rtol=0, atol=0)
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        engine.restore_batch(y)
    assert "tiles" not in caplog.text, "the warning repeats for every frame of one size"


def test_no_limit_runs_whole(spied):
    engine, seen, _ = spied(0)
    engine.restore_batch(torch.rand(6, 3, 24, 40, generator=torch.Generator().manual_seed(3)))
    assert [s[0] for s in seen] == [4, 2]   # max_batch only


def test_cpu_allocation_failure_is_retried_in_tiles(spied, caplog):
    engine, seen, real = spied(0)

    def restore(y):
        if y.shape[-2] * y.shape[-1] > 48 * 48:
            raise RuntimeError("[enforce fail at alloc_cpu.cpp:127] DefaultCPUAllocator: can't allocate memory: "
                               "you tried to allocate 40000000000 bytes (fake)")
        return real(y)

    engine.backend.restore = restore
    y = torch.rand(1, 3, 72, 96, generator=torch.Generator().manual_seed(4))
    with caplog.at_level(logging.WARNING):
        out = engine.restore_batch(y)
    assert engine.oom_tile == 48 and "out of memory" in caplog.text
    engine.backend.restore = real
    torch.testing.assert_close(out, restore_tiled(engine.restore_batch, y, 48, 12), rtol=0, atol=0)


def test_allocation_failure_in_budget_tiles_retries_smaller_tiles(spied, monkeypatch):
    """The budget chose 64-px tiles and even those fail: the retry halves them (not FALLBACK_TILE, 512)."""
    monkeypatch.setattr(memory, "MIN_AUTO_TILE", 16)
    engine, seen, real = spied(64 * 64 * BPP + 1)

    def restore(y):
        seen.append(tuple(y.shape))
        if y.shape[-2] * y.shape[-1] > 32 * 32:
            raise RuntimeError("DefaultCPUAllocator: can't allocate memory (fake)")
        return real(y)

    engine.backend.restore = restore
    y = torch.rand(1, 3, 72, 136, generator=torch.Generator().manual_seed(5))
    out = engine.restore_batch(y)
    assert seen[0] == (1, 3, 64, 64) and engine.oom_tile == 32
    engine.backend.restore = real
    torch.testing.assert_close(out, restore_tiled(engine.restore_batch, y, 32, 8), rtol=0, atol=0)


def test_other_runtime_errors_are_not_mistaken_for_memory(spied):
    engine, _, _ = spied(0)

    def restore(y):
        raise RuntimeError("shape mismatch (fake)")

    engine.backend.restore = restore
    with pytest.raises(RuntimeError, match="shape mismatch"):
        engine.restore_batch(torch.rand(1, 3, 40, 40))
    assert engine.oom_tile is None


def test_memory_limit_option():
    from irflow_engine.cli import build_parser

    parser = build_parser()
    args = parser.parse_args(["restore", "a.png", "-o", "b.png", "--model", "m", "--memory-limit", "2.5"])
    assert args.memory_limit == 2_500_000_000
    for bad in ("-1", "lots", "nan"):
        with pytest.raises(SystemExit):
            parser.parse_args(["restore", "a.png", "-o", "b.png", "--model", "m", "--memory-limit", bad])
    with pytest.raises(ValueError, match="memory_budget"):
        Engine.from_checkpoint("irflow-unet16-d3", memory_budget=-5)


def test_automatic_budget_is_fixed_at_the_first_call(spied, monkeypatch):
    """Memory that the first call leaves allocated (allocator arenas) must not make the next frames
    of a video tiled or batched differently."""
    free = [24 * 40 * BPP * 10 / memory.BUDGET_FRACTION]   # room for ten frames, then for none
    monkeypatch.setattr(memory, "available_memory", lambda: int(free[0]))
    engine, seen, _ = spied(None)
    y = torch.rand(4, 3, 24, 40, generator=torch.Generator().manual_seed(5))
    first = engine.restore_batch(y)
    free[0] = 1000
    second = engine.restore_batch(y)
    assert [s[0] for s in seen] == [4, 4]
    torch.testing.assert_close(second, first, rtol=0, atol=0)


def test_progress_reports_every_backend_call(tiny_checkpoint):
    engine = Engine.from_checkpoint(tiny_checkpoint, steps=1, max_batch=2, memory_budget=0)
    calls = []
    y = torch.rand(5, 3, 16, 24, generator=torch.Generator().manual_seed(6))
    out = engine.restore_batch(y, progress=lambda done, total: calls.append((done, total)))
    assert calls == [(1, 3), (2, 3), (3, 3)]
    torch.testing.assert_close(out, engine.restore_batch(y), rtol=0, atol=0)
    calls.clear()
    engine.restore_batch(y[:1], progress=lambda done, total: calls.append((done, total)))
    assert calls == [(1, 1)]
    calls.clear()   # 40×40 in 16-px tiles, overlap 4: a 3×3 grid, two tiles per call
    engine.restore(torch.rand(3, 40, 40), tile=16, tile_overlap=4, progress=lambda d, t: calls.append((d, t)))
    assert calls == [(i, 5) for i in range(1, 6)]


def test_cli_parts_bar_closes_and_restarts():
    from irflow_engine.cli import _PartsBar

    bar = _PartsBar()
    bar(1, 1)
    assert bar.bar is None   # one call: no bar
    bar(1, 3)
    assert bar.bar is not None and bar.done == 1
    bar(1, 9)                # a retry in tiles: a new bar
    assert bar.bar.total == 9
    for i in range(2, 10):
        bar(i, 9)
    assert bar.bar is None
