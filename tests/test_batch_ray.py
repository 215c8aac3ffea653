"""restore-batch on a local Ray instance (2 CPUs): outputs equal the single-process Engine's,
a task that fails once is retried, a rerun skips finished outputs, the manifest is complete."""

import json

import numpy as np
import pytest

from irflow_engine import Engine
from irflow_engine.batch import BatchJob, plan_work, restore_batch
from irflow_engine.images import load_image, read_image, write_image

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'irflow-engine[ray]')")


@pytest.fixture(scope="module")
def local_ray():
    from irflow_engine.batch.ray_runner import start_local_ray

    start_local_ray(ray, num_cpus=2)   # retried once: a start can time out on a busy machine
    yield
    ray.shutdown()


def _profile() -> bytes:
    from PIL import ImageCms

    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def _camera_exif() -> bytes:
    from PIL import Image

    exif = Image.Exif()
    exif[0x010F], exif[0x0132] = "TestCam", "2026:11:27 10:00:00"   # Make, DateTime
    return exif.tobytes()


@pytest.fixture(scope="module")
def photo_folder(tmp_path_factory):
    """Five crops of real photographs (two share a size, so they are restored together; one is a
    16-bit PNG with alpha) and a bad file."""
    import skimage.data

    folder = tmp_path_factory.mktemp("photos")
    astronaut, coffee = skimage.data.astronaut(), skimage.data.coffee()
    write_image(folder / "a.png", astronaut[100:140, 180:228], text={"parameters": "an astronaut, steps: 20"})
    write_image(folder / "b.png", astronaut[300:340, 200:248])
    write_image(folder / "c.png", coffee[50:83, 100:151], icc_profile=_profile(), dpi=(300, 300))   # odd size, ICC
    write_image(folder / "d.jpg", coffee[200:248, 300:340], exif=_camera_exif())
    deep = coffee[120:150, 200:236].astype(np.uint16) * 257 + np.random.default_rng(0).integers(0, 257, (30, 36, 3))
    write_image(folder / "e.png", deep.astype(np.uint16), np.full((30, 36), 40000, np.uint16))   # 16-bit, alpha
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n but not really")
    return folder


def test_images_equal_engine_retry_skip_and_manifest(tmp_path, local_ray, photo_folder, tiny_checkpoint):
    out = tmp_path / "out"
    marker = tmp_path / "fail.once"
    marker.write_text("")
    job = BatchJob(out_dir=str(out), model=str(tiny_checkpoint), steps=2, workers=2, batch_size=2,
                   fail_once=str(marker))
    summary = restore_batch(job, [str(photo_folder)], progress=False)

    assert not marker.exists(), "the injected failure never ran"
    assert (summary.done, summary.failed, summary.skipped) == (5, 1, 0)
    engine = Engine.from_checkpoint(tiny_checkpoint, steps=2)
    for name in ("a.png", "b.png", "c.png", "d.jpg"):
        src, _ = read_image(photo_folder / name)
        expected = engine.restore(src)
        got, _ = read_image(out / name)
        if name.endswith(".jpg"):  # compare against the same JPEG encoding of the expected output
            write_image(tmp_path / name, expected)
            expected, _ = read_image(tmp_path / name)
            assert np.abs(got.astype(int) - expected.astype(int)).mean() < 0.5
            continue
        # Same weights and schedule; only the CPU thread count differs (1 vs the test's), which can
        # move a float across a rounding boundary: at most 1 code, rarely.
        diff = np.abs(got.astype(int) - expected.astype(int))
        assert diff.max() <= 1 and (diff > 0).mean() < 0.01, (name, diff.max(), (diff > 0).mean())
    deep, restored = load_image(photo_folder / "e.png"), load_image(out / "e.png")   # 16-bit in, 16-bit out
    expected = engine.restore(deep.rgb16).astype(int)
    assert restored.rgb16 is not None and np.abs(restored.rgb16.astype(int) - expected).max() <= 2
    np.testing.assert_array_equal(restored.alpha16, deep.alpha16)
    assert not (out / "broken.png").exists()
    profile = load_image(photo_folder / "c.png").icc_profile
    assert profile and load_image(out / "c.png").icc_profile == profile, "the colour profile was lost on the way"
    assert load_image(out / "d.jpg").exif == load_image(photo_folder / "d.jpg").exif == _camera_exif(), "EXIF lost"
    assert load_image(out / "c.png").dpi == (300, 300), "the resolution was lost"
    assert load_image(out / "a.png").text == {"parameters": "an astronaut, steps: 20"}, "PNG text lost"
    assert not [p for p in out.iterdir() if p.name.startswith(".")], "temporary files left behind"

    manifest = json.loads((out / "manifest.json").read_text())
    records = manifest["inputs"]
    assert set(records) == {str(photo_folder / n) for n in ("a.png", "b.png", "c.png", "d.jpg", "e.png", "broken.png")}
    assert manifest["counts"] == {"pending": 0, "done": 5, "skipped": 0, "failed": 1}
    bad = records[str(photo_folder / "broken.png")]
    assert bad["status"] == "failed" and "broken.png" in bad["error"]
    for name in ("a.png", "c.png"):
        rec = records[str(photo_folder / name)]
        assert rec["status"] == "done" and rec["frames"] == 1 and rec["seconds"] > 0 and rec["error"] is None
        assert rec["output"] == str(out / name)

    # A rerun skips what is finished (only the broken input is tried again).
    mtimes = {p.name: p.stat().st_mtime_ns for p in out.iterdir() if p.name != "manifest.json"}
    again = restore_batch(BatchJob(out_dir=str(out), model=str(tiny_checkpoint), steps=2, workers=1),
                          [str(photo_folder)], progress=False)
    assert (again.done, again.failed, again.skipped) == (0, 1, 5)
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir() if p.name != "manifest.json"} == mtimes


def test_plan_work(tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "y").mkdir()
    for d in ("x", "y"):
        write_image(tmp_path / d / "same.png", np.full((4, 4, 3), 7, np.uint8))
    with pytest.raises(ValueError, match="share the file name 'same.png'"):
        plan_work([str(tmp_path / "x"), str(tmp_path / "y")], tmp_path / "out")
    with pytest.raises(ValueError, match="is the input itself"):
        plan_work([str(tmp_path / "x")], tmp_path / "x")
    with pytest.raises(ValueError, match="does not exist"):
        plan_work([str(tmp_path / "missing.png")], tmp_path / "out")
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(ValueError, match="not an image or video"):
        plan_work([str(tmp_path / "notes.txt")], tmp_path / "out")
    write_image(tmp_path / "out" / "same.png", np.full((4, 4, 3), 7, np.uint8))
    todo, done = plan_work([str(tmp_path / "x")], tmp_path / "out")
    assert (len(todo), len(done)) == (0, 1) and done[0].dst == str(tmp_path / "out" / "same.png")
    todo, done = plan_work([str(tmp_path / "x")], tmp_path / "out", overwrite=True)
    assert (len(todo), len(done)) == (1, 0) and todo[0].kind == "image"


def test_bad_job_options():
    with pytest.raises(ValueError, match="workers"):
        BatchJob(out_dir="o", model="m", workers=0)
    with pytest.raises(ValueError, match="gpus_per_worker"):
        BatchJob(out_dir="o", model="m", gpus_per_worker=-1)


class _FlakyRay:
    """Stands in for the `ray` module: `init` raises Ray's start-up timeout `failures` times."""

    def __init__(self, failures):
        self.failures, self.calls = failures, []

    def is_initialized(self):
        return False

    def init(self, **kwargs):
        self.calls.append(("init", kwargs.get("address")))
        if self.failures:
            self.failures -= 1
            raise Exception("The current node timed out during startup.")

    def shutdown(self):
        self.calls.append(("shutdown", None))


def test_a_local_ray_start_that_times_out_is_retried_once(caplog):
    from irflow_engine.batch.ray_runner import RayStartError, _init_ray

    job = BatchJob(out_dir="o", model="m")
    flaky = _FlakyRay(failures=1)
    assert _init_ray(job, flaky, retry_wait_s=0) is True
    assert flaky.calls == [("init", None), ("shutdown", None), ("init", None)]
    assert "trying again" in caplog.text and "timed out during startup" in caplog.text
    broken = _FlakyRay(failures=5)
    with pytest.raises(RayStartError, match=r"2 attempts; last: Exception: The current node timed out.*--ray-address"):
        _init_ray(job, broken, retry_wait_s=0)
    assert broken.calls == [("init", None), ("shutdown", None)] * 2
    # A cluster given by address is not retried: its error is the user's to see.
    remote = _FlakyRay(failures=1)
    with pytest.raises(Exception, match="timed out during startup"):
        _init_ray(BatchJob(out_dir="o", model="m", ray_address="ray://head:10001"), remote, retry_wait_s=0)
    assert remote.calls == [("init", "ray://head:10001")]


def test_cpu_workers_share_the_memory_budget(tiny_checkpoint, monkeypatch):
    """Workers of one node run side by side: each gets its CPUs' share of the automatic budget
    (2 of 8 CPUs: a quarter), and an explicit budget is each worker's own."""
    import torch

    from irflow_engine import cpus, memory
    from irflow_engine.batch.ray_runner import build_engine

    monkeypatch.setattr(memory, "available_memory", lambda: 10_000_000_000)
    monkeypatch.setattr(cpus, "available_cpus", lambda: 8)
    job = BatchJob(out_dir="o", model=str(tiny_checkpoint), steps=1)
    before = torch.get_num_threads()
    try:
        engine = build_engine(job, 2)
        assert engine.config.threads == 2 and torch.get_num_threads() == 2   # the worker's CPUs
    finally:
        torch.set_num_threads(before)
    assert engine.config.memory_budget == int(10e9 * memory.BUDGET_FRACTION * 0.25)
    assert build_engine(job).config.memory_budget == int(10e9 * memory.BUDGET_FRACTION)
    job = BatchJob(out_dir="o", model=str(tiny_checkpoint), steps=1, memory_budget=123_000_000)
    assert build_engine(job, 2).config.memory_budget == 123_000_000


def _decoded(path):
    import av

    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


def _packets(path, kind):
    import av

    with av.open(str(path)) as c:
        stream = getattr(c.streams, kind)[0]
        return [(p.pts, bytes(p)) for p in c.demux(stream) if p.size]


def test_videos_whole_and_segmented(tmp_path, local_ray, tiny_checkpoint):
    """Two clips (a short one restored whole, a long one split at keyframes into parts restored in
    parallel and joined): frames equal the single-process Engine's; count, duration, audio kept."""
    import av

    from irflow_engine.video.synth import write_noisy_pan

    clips = tmp_path / "clips"
    write_noisy_pan(clips / "short.mkv", size=(64, 48), frames=6, rate=25, seed=1)
    write_noisy_pan(clips / "long.mkv", size=(64, 48), frames=24, rate=25, seed=2,
                    options={"g": "6", "keyint_min": "6", "sc_threshold": "0"})
    lossless = {"codec": "ffv1"}  # so frames can be compared exactly after decoding
    out = tmp_path / "out"
    marker = tmp_path / "fail.once"
    marker.write_text("")
    job = BatchJob(out_dir=str(out), model=str(tiny_checkpoint), steps=2, workers=2, video_options=lossless,
                   segment_seconds=0.3, fail_once=str(marker))
    summary = restore_batch(job, [str(clips)], progress=False)
    assert (summary.done, summary.failed) == (2, 0), json.loads((out / "manifest.json").read_text())
    assert not marker.exists()
    assert not [p for p in out.iterdir() if p.name.startswith(".")], "part folders or temp files left behind"

    engine = Engine.from_checkpoint(tiny_checkpoint, steps=2)
    for name, frames in (("short.mkv", 6), ("long.mkv", 24)):
        single = tmp_path / f"single-{name}"
        engine.restore_video(clips / name, single, progress=False, **lossless)
        got, want = _decoded(out / name), _decoded(single)
        assert len(got) == len(want) == frames
        diff = np.abs(np.stack(got).astype(int) - np.stack(want).astype(int))
        assert diff.max() <= 2 and (diff > 0).mean() < 0.02, (name, diff.max(), (diff > 0).mean())
        assert _packets(out / name, "audio") == _packets(clips / name, "audio")
        with av.open(str(out / name)) as a, av.open(str(clips / name)) as b:
            assert a.streams.video[0].average_rate == b.streams.video[0].average_rate == 25
            assert abs(a.duration - b.duration) / 1e6 <= 1 / 25
        record = json.loads((out / "manifest.json").read_text())["inputs"][str(clips / name)]
        assert record["status"] == "done" and record["frames"] == frames
        assert sorted(p[0] for p in _packets(out / name, "video")) == sorted(p[0] for p in _packets(clips / name, "video"))
    records = json.loads((out / "manifest.json").read_text())["inputs"]
    assert records[str(clips / "long.mkv")]["parts"] == 2  # keyframes every 0.24 s, parts of >= 0.3 s and records[str(clips / "short.mkv")]["parts"] is None


def test_animations_restore_every_frame(tmp_path, local_ray, tiny_checkpoint):
    """An APNG and an animated GIF in a batch are restored whole (every frame, timing kept), beside a still."""
    from irflow_engine.animation import Animation, read_animation, write_animation

    rng = np.random.default_rng(4)
    frames = [rng.integers(0, 256, size=(17, 26, 3), dtype=np.uint8) for _ in range(3)]
    src = tmp_path / "in"
    write_animation(src / "anim.png", Animation(frames, [30, 60, 90], loop=0))
    palette = rng.integers(0, 256, size=(8, 3), dtype=np.uint8)   # a GIF holds these exactly
    gif_frames = [palette[rng.integers(0, 8, size=(15, 22))] for _ in range(2)]
    write_animation(src / "anim.gif", Animation(gif_frames, [70, 80], loop=1))
    write_image(src / "still.png", frames[0])
    out = tmp_path / "out"
    summary = restore_batch(BatchJob(out_dir=str(out), model=str(tiny_checkpoint), steps=1, workers=1),
                            [str(src)], progress=False)
    assert (summary.done, summary.failed) == (3, 0)
    records = json.loads((out / "manifest.json").read_text())["inputs"]
    assert records[str(src / "anim.png")]["kind"] == "animation" and records[str(src / "anim.png")]["frames"] == 3
    assert records[str(src / "still.png")]["kind"] == "image"
    engine = Engine.from_checkpoint(tiny_checkpoint, steps=1)
    got = read_animation(out / "anim.png")
    assert got.durations == [30, 60, 90] and got.loop == 0
    for k in range(3):
        np.testing.assert_array_equal(got.frames[k], engine.restore(frames[k]))
    got = read_animation(out / "anim.gif")
    assert len(got.frames) == 2 and got.durations == [70, 80] and got.loop == 1
    for k in range(2):   # quantised to the GIF's palette on writing
        assert np.abs(got.frames[k] - engine.restore(gif_frames[k]).astype(float)).mean() < 4


def test_split_makes_keyframe_parts(tmp_path):
    from irflow_engine.batch.segments import split_at_keyframes
    from irflow_engine.video.synth import write_noisy_pan

    write_noisy_pan(tmp_path / "v.mkv", size=(32, 32), frames=20, rate=25, audio=False,
                    options={"g": "5", "keyint_min": "5", "sc_threshold": "0"})
    parts = split_at_keyframes(tmp_path / "v.mkv", tmp_path / "parts", 0.35)
    counts = [len(_decoded(p)) for p in parts]
    assert sum(counts) == 20 and len(parts) == 2 and counts == [10, 10], counts
