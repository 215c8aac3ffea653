"""The threaded pipeline (order, errors, early stop) and Engine.stream (== Engine.restore per frame)."""

import random
import threading
import time

import numpy as np
import pytest
import torch

from irflow_engine import Engine, InputError
from irflow_engine.video.pipeline import StopFlag, run_ordered


def _threads():
    return {t for t in threading.enumerate() if t.name.startswith("irflow-")}


def _wait_for_no_threads(timeout=5.0):
    deadline = time.time() + timeout
    while _threads() and time.time() < deadline:
        time.sleep(0.02)
    return _threads()


def test_results_come_in_order_with_stages_overlapping():
    rng = random.Random(0)
    busy = {"source": 0, "work": 0}
    overlap = []

    def source():
        for i in range(40):
            busy["source"] += 1
            time.sleep(rng.random() * 0.002)
            if busy["work"]:
                overlap.append(i)
            busy["source"] -= 1
            yield i

    def work(i):
        busy["work"] += 1
        time.sleep(rng.random() * 0.004)
        busy["work"] -= 1
        return i * i

    assert list(run_ordered(source(), work, depth=2)) == [i * i for i in range(40)]
    assert overlap, "the source never ran while the work stage was busy"
    assert not _wait_for_no_threads()


@pytest.mark.parametrize("where", ["source", "work"])
def test_an_error_arrives_after_the_results_before_it(where):
    def source():
        for i in range(10):
            if where == "source" and i == 6:
                raise RuntimeError("source broke at 6")
            yield i

    def work(i):
        if where == "work" and i == 6:
            raise RuntimeError("work broke at 6")
        return i

    got = []
    with pytest.raises(RuntimeError, match=f"{where} broke at 6"):
        for r in run_ordered(source(), work, depth=3):
            got.append(r)
    assert got == list(range(6))
    assert not _wait_for_no_threads()


def test_a_consumer_that_stops_early_stops_the_stages():
    produced = []
    closed = threading.Event()

    def endless():
        try:
            i = 0
            while True:
                produced.append(i)
                yield i
                i += 1
        finally:
            closed.set()

    gen = run_ordered(endless(), lambda i: i, depth=2)
    assert [next(gen) for _ in range(3)] == [0, 1, 2]
    gen.close()
    assert not _wait_for_no_threads()
    assert closed.is_set() and len(produced) <= 3 + 2 * 2 + 3     # bounded by the queues


def test_stop_flag_breaks_a_blocked_stage():
    stop = StopFlag()
    import queue

    q = queue.Queue(1)
    q.put(0)
    t0 = time.time()
    threading.Timer(0.1, stop.set).start()
    from irflow_engine.video.pipeline import Aborted

    with pytest.raises(Aborted):
        stop.put(q, 1)
    assert time.time() - t0 < 2


@pytest.fixture(scope="module")
def engine(tiny_checkpoint):
    return Engine.from_checkpoint(tiny_checkpoint, steps=1)


def test_stream_of_numpy_frames_equals_restore(engine):
    rng = np.random.default_rng(5)
    frames = [rng.integers(0, 256, (24, 40, 3), dtype=np.uint8) for _ in range(4)]
    frames += [rng.integers(0, 256, (18, 20, 3), dtype=np.uint8) for _ in range(2)]   # size change: new batch
    out = list(engine.stream(iter(frames), batch=3))
    assert len(out) == 6
    for f, r in zip(frames, out):
        assert r.dtype == np.uint8 and r.shape == f.shape
        np.testing.assert_array_equal(r, engine.restore(f))


def test_stream_of_torch_frames_equals_restore(engine):
    g = torch.Generator().manual_seed(6)
    frames = [torch.rand(3, 20, 28, generator=g) for _ in range(4)] + [torch.rand(3, 20, 28, generator=g).half()]
    out = list(engine.stream(frames, batch=2))
    for f, r in zip(frames, out):
        assert r.dtype == f.dtype and r.shape == f.shape and r.device == f.device
        torch.testing.assert_close(r, engine.restore(f), rtol=0, atol=1e-5)


def test_stream_yields_good_frames_before_a_bad_one(engine):
    good = [np.full((16, 16, 3), 100, np.uint8)] * 3
    bad = np.zeros((16, 16, 4), np.uint8)
    got = []
    with pytest.raises(InputError, match="3 channels"):
        for r in engine.stream(good + [bad] + good, batch=1):
            got.append(r)
    assert len(got) == 3
    assert not _wait_for_no_threads()


def test_stream_is_lazy_and_can_be_abandoned(engine):
    pulled = []

    def frames():
        for i in range(1000):
            pulled.append(i)
            yield np.full((16, 16, 3), i % 256, np.uint8)

    s = engine.stream(frames(), batch=2)
    assert pulled == []                       # nothing happens before the first next()
    first = next(s)
    assert first.shape == (16, 16, 3)
    s.close()
    assert not _wait_for_no_threads()
    assert len(pulled) < 30


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_stream_on_cuda(tiny_checkpoint, engine):
    """numpy frames through pinned buffers and side streams; CUDA tensors stay on the device."""
    gpu = Engine.from_checkpoint(tiny_checkpoint, steps=1, device="cuda")
    rng = np.random.default_rng(9)
    frames = [rng.integers(0, 256, (32, 48, 3), dtype=np.uint8) for _ in range(7)]
    out = list(gpu.stream(frames, batch=3))
    for f, r in zip(frames, out):
        assert np.abs(r.astype(int) - engine.restore(f).astype(int)).max() <= 1
    tensors = [torch.rand(3, 32, 48, device="cuda") for _ in range(3)]
    for t, r in zip(tensors, gpu.stream(tensors, batch=2)):
        assert r.is_cuda and r.shape == t.shape
        torch.testing.assert_close(r, gpu.restore(t))
