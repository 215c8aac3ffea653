"""Animated images (APNG, animated WebP, GIF): every frame read whole, restored, and written back
with its timing, loop count, alpha and profile."""

import logging

import numpy as np
import pytest
from PIL import Image

from irflow_engine import Engine
from irflow_engine.animation import Animation, is_animation, read_animation, write_animation
from irflow_engine.cli import main
from irflow_engine.images import ImageFileError, read_image

SIZE = (21, 30)   # odd height


def _frames(n=3, seed=0, size=SIZE):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, size=(*size, 3), dtype=np.uint8) for _ in range(n)]


def _srgb_profile() -> bytes:
    from PIL import ImageCms

    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def _palette_frames(n=3, seed=0, size=SIZE):
    """Frames of at most 16 colours (exact in a GIF palette); after the first, only a block changes
    (so a GIF or APNG writer stores a partial frame, which reading must compose onto the canvas)."""
    rng = np.random.default_rng(seed)
    colours = rng.integers(0, 256, size=(16, 3), dtype=np.uint8)
    frames = [colours[rng.integers(0, 16, size=size)]]
    for _ in range(n - 1):
        nxt = frames[-1].copy()
        nxt[5:12, 7:19] = colours[rng.integers(0, 16, size=(7, 12))]
        frames.append(nxt)
    return frames


def test_apng_round_trip_is_exact(tmp_path):
    frames = _frames()
    alphas = [np.random.default_rng(9 + k).integers(0, 256, size=SIZE, dtype=np.uint8) for k in range(3)]
    anim = Animation(frames, [40, 70, 120], alphas, loop=3, icc_profile=_srgb_profile())
    path = tmp_path / "a.png"
    write_animation(path, anim)
    assert is_animation(path) and not is_animation(tmp_path / "missing.png")
    back = read_animation(path)
    assert back.source_format == "PNG" and back.durations == [40, 70, 120] and back.loop == 3
    assert back.icc_profile == anim.icc_profile
    for k in range(3):
        np.testing.assert_array_equal(back.frames[k], frames[k])
        np.testing.assert_array_equal(back.alphas[k], alphas[k])


@pytest.mark.parametrize("suffix", [".gif", ".png"])
def test_partial_frames_are_read_whole(tmp_path, suffix):
    """Writers store only the changed rectangle of frames 2.. (GIF, APNG); reading composes them."""
    frames = _palette_frames()
    ims = [Image.fromarray(f) for f in frames]
    ims[0].save(tmp_path / f"p{suffix}", save_all=True, append_images=ims[1:], duration=[30, 40, 50],
                optimize=False)
    with Image.open(tmp_path / f"p{suffix}") as im:   # the premise: a partial frame is stored
        im.seek(1)
        stored = im.dispose_extent if suffix == ".gif" else im.info["bbox"]
        assert tuple(stored) != (0, 0, SIZE[1], SIZE[0])
    back = read_animation(tmp_path / f"p{suffix}")
    assert back.durations == [30, 40, 50] and back.alphas is None
    for k in range(3):
        np.testing.assert_array_equal(back.frames[k], frames[k])


def test_gif_without_loop_count_plays_once(tmp_path):
    ims = [Image.fromarray(f) for f in _palette_frames(2)]
    ims[0].save(tmp_path / "once.gif", save_all=True, append_images=ims[1:], duration=50)
    anim = read_animation(tmp_path / "once.gif")
    assert anim.loop is None
    write_animation(tmp_path / "once.png", anim)          # APNG "play once" is num_plays 1
    with Image.open(tmp_path / "once.png") as im:
        assert im.info["loop"] == 1
    write_animation(tmp_path / "again.gif", anim)
    with Image.open(tmp_path / "again.gif") as im:
        assert "loop" not in im.info


def test_cli_restores_every_frame_of_an_apng(tmp_path, tiny_checkpoint, capsys):
    frames = _frames(5, seed=1)
    alphas = [np.full(SIZE, 200 + k, np.uint8) for k in range(5)]
    write_animation(tmp_path / "in.png", Animation(frames, [20, 30, 40, 50, 60], alphas, loop=0))
    out = tmp_path / "out.png"
    assert main(["restore", str(tmp_path / "in.png"), "-o", str(out), "--model", str(tiny_checkpoint),
                 "--steps", "2", "--backend", "eager", "--max-batch", "2"]) == 0
    assert "wrote" in capsys.readouterr().err
    got = read_animation(out)
    engine = Engine.from_checkpoint(tiny_checkpoint, steps=2)
    assert len(got.frames) == 5 and got.durations == [20, 30, 40, 50, 60] and got.loop == 0
    for k in range(5):
        np.testing.assert_array_equal(got.frames[k], engine.restore(frames[k]))
        np.testing.assert_array_equal(got.alphas[k], alphas[k])


@pytest.mark.parametrize("dst_suffix", [".gif", ".webp"])
def test_cli_converts_between_animation_formats(tmp_path, tiny_checkpoint, dst_suffix):
    """A smooth animation restored from WebP into GIF (and GIF into WebP): frames and timing kept,
    pixels within the lossy formats' error of the engine's restoration."""
    yy, xx = np.mgrid[0:SIZE[0], 0:SIZE[1]]
    frames = [np.stack([(xx * 8 + 40 * k) % 256, yy * 10, np.full(SIZE, 90 + 30 * k)], -1).astype(np.uint8)
              for k in range(3)]
    src = tmp_path / ("in.webp" if dst_suffix == ".gif" else "in.gif")
    write_animation(src, Animation(frames, [100, 150, 200], loop=2))
    source = read_animation(src)
    dst = tmp_path / f"out{dst_suffix}"
    assert main(["restore", str(src), "-o", str(dst), "--model", str(tiny_checkpoint), "--steps", "1",
                 "--backend", "eager"]) == 0
    got = read_animation(dst)
    assert len(got.frames) == 3 and got.durations == [100, 150, 200] and got.loop == 2
    engine = Engine.from_checkpoint(tiny_checkpoint, steps=1)
    for k in range(3):
        expected = engine.restore(source.frames[k]).astype(np.float64)
        mae = np.abs(got.frames[k] - expected).mean()
        # measured: GIF (palette) 0.6, lossy WebP (q 95) 3-5 levels; another frame's pixels are ~40 away
        assert mae < 8, f"frame {k}: mean error {mae:.1f} levels"


def test_still_output_restores_the_first_frame_and_says_so(tmp_path, tiny_checkpoint, caplog):
    frames = _frames(3, seed=2)
    write_animation(tmp_path / "in.png", Animation(frames, [50, 50, 50]))
    with caplog.at_level(logging.WARNING):
        assert main(["restore", str(tmp_path / "in.png"), "-o", str(tmp_path / "o.tif"), "--model",
                     str(tiny_checkpoint), "--steps", "1"]) == 0
    assert "only the first is restored" in caplog.text and "keeps every frame" in caplog.text
    expected = Engine.from_checkpoint(tiny_checkpoint, steps=1).restore(frames[0])
    np.testing.assert_array_equal(read_image(tmp_path / "o.tif")[0], expected)


def test_folder_restores_gif_files(tmp_path, tiny_checkpoint):
    src = tmp_path / "in"
    src.mkdir()
    write_animation(src / "a.gif", Animation(_palette_frames(2), [60, 60], loop=0))
    assert main(["restore", str(src), "-o", str(tmp_path / "out"), "--model", str(tiny_checkpoint),
                 "--steps", "1"]) == 0
    assert len(read_animation(tmp_path / "out" / "a.gif").frames) == 2


def test_corrupt_animation_names_the_file(tmp_path, tiny_checkpoint, capsys):
    write_animation(tmp_path / "ok.gif", Animation(_frames(4, seed=3), [50] * 4, loop=0))
    data = (tmp_path / "ok.gif").read_bytes()
    (tmp_path / "cut.gif").write_bytes(data[: len(data) * 2 // 3])
    with pytest.raises(ImageFileError, match="cut.gif"):
        read_animation(tmp_path / "cut.gif")
    dst = tmp_path / "out.gif"
    assert main(["restore", str(tmp_path / "cut.gif"), "-o", str(dst), "--model", str(tiny_checkpoint),
                 "--steps", "1"]) == 1
    assert "cut.gif" in capsys.readouterr().err and not dst.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cut.gif", "ok.gif"], "a temporary file was left"


def test_animation_checks_its_frames():
    frames = _frames(2)
    with pytest.raises(ValueError, match="durations"):
        Animation(frames, [50])
    with pytest.raises(ValueError, match="one size"):
        Animation([frames[0], frames[1][:-1]], [50, 50])
    with pytest.raises(ValueError, match="at least one frame"):
        Animation([], [])
    with pytest.raises(ImageFileError, match="cannot hold an animation"):
        write_animation("x.jpg", Animation(frames, [50, 50]))


def test_avif_sequence_round_trip(tmp_path, tiny_checkpoint):
    """An AVIF image sequence (read as a still before: its first frame only) has every frame restored,
    with its durations, alpha and profile; pixels within lossy AVIF's error of the engine's result."""
    pytest.importorskip("PIL.AvifImagePlugin")
    from PIL import features

    if not features.check("avif"):
        pytest.skip("this Pillow has no AVIF codec")
    yy, xx = np.mgrid[0:SIZE[0], 0:SIZE[1]]
    frames = [np.stack([(xx * 8 + 40 * k) % 256, yy * 10, np.full(SIZE, 90 + 30 * k)], -1).astype(np.uint8)
              for k in range(3)]
    alphas = [np.full(SIZE, 180 + 20 * k, np.uint8) for k in range(3)]
    src = tmp_path / "in.avif"
    write_animation(src, Animation(frames, [100, 150, 200], alphas, icc_profile=_srgb_profile()))
    assert is_animation(src)
    source = read_animation(src)
    assert source.source_format == "AVIF" and source.durations == [100, 150, 200]
    dst = tmp_path / "out.avif"
    assert main(["restore", str(src), "-o", str(dst), "--model", str(tiny_checkpoint), "--steps", "1",
                 "--backend", "eager"]) == 0
    got = read_animation(dst)
    assert len(got.frames) == 3 and got.durations == [100, 150, 200] and got.icc_profile == source.icc_profile
    assert source.icc_profile is not None
    engine = Engine.from_checkpoint(tiny_checkpoint, steps=1)
    for k in range(3):
        expected = engine.restore(source.frames[k]).astype(np.float64)
        mae = np.abs(got.frames[k] - expected).mean()
        assert mae < 8, f"frame {k}: mean error {mae:.1f} levels"
        assert np.abs(got.alphas[k].astype(int) - alphas[k]).max() <= 3


@pytest.mark.parametrize("src_suffix, dst_suffix, size, codec, pix_fmt, transparent", [
    (".gif", ".mp4", (32, 48), "h264", "yuv420p", True),
    (".webp", ".webm", SIZE, "vp9", "yuv444p", False),    # odd size: 4:4:4; FFmpeg cannot read animated WebP
])
def test_animation_restored_into_a_video(src_suffix, dst_suffix, size, codec, pix_fmt, transparent, tmp_path,
                                         tiny_checkpoint, caplog):
    """`irflow restore anim.gif -o out.mp4` (refused before: "no image suffix") gives a video of every
    frame, each at its start time, in the container's usual codec, within lossy coding's error of the
    engine's restoration; an alpha channel H.264 cannot hold is reported as not kept (VP9 keeps it:
    test_video_alpha.py)."""
    yy, xx = np.mgrid[0:size[0], 0:size[1]]
    frames = [np.stack([(xx * 5 + 40 * k) % 256, yy * 7, np.full(size, 90 + 30 * k)], -1).astype(np.uint8)
              for k in range(4)]
    alphas = [np.full(size, 255, np.uint8) for _ in range(4)]
    alphas[0][0, 0] = 0
    alphas = alphas if transparent else None
    src = tmp_path / f"in{src_suffix}"
    write_animation(src, Animation(frames, [100, 150, 200, 1000], alphas, loop=0))   # a closing pause
    source = read_animation(src)
    dst = tmp_path / f"out{dst_suffix}"
    with caplog.at_level(logging.WARNING):
        assert main(["restore", str(src), "-o", str(dst), "--model", str(tiny_checkpoint), "--steps", "1",
                     "--backend", "eager", "--no-progress"]) == 0
    assert ("the alpha channel (transparency) is not kept" in caplog.text) == transparent
    assert not transparent or f"in{src_suffix}.mkv: the alpha channel" in caplog.text   # names the user's file
    assert ("is an odd size, so the video is 4:4:4" in caplog.text) == (pix_fmt == "yuv444p")
    av = pytest.importorskip("av")
    with av.open(str(dst)) as c:
        cc = c.streams.video[0].codec_context
        assert (cc.name, cc.pix_fmt) == (codec, pix_fmt)
        assert abs(c.duration / 1e6 - 1.45) < 0.011   # the last frame keeps its 1 s (it got ~0.05 s)
        decoded = list(c.decode(video=0))
    assert [round(float(f.pts * f.time_base), 3) for f in decoded] == [0.0, 0.1, 0.25, 0.45]
    engine = Engine.from_checkpoint(tiny_checkpoint, steps=1)
    for k, frame in enumerate(decoded):
        expected = engine.restore(source.frames[k]).astype(np.float64)
        mae = np.abs(frame.to_ndarray(format="rgb24") - expected).mean()
        assert mae < 8, f"frame {k}: mean error {mae:.1f} levels"   # another frame's pixels are ~40 away
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([src.name, dst.name])
