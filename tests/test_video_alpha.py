"""Video with an alpha channel (`irflow_engine.video.alpha`): the alpha plane is carried past the
network unchanged and written where the output's encoder stores one; where it does not, a warning
says which encoders do. Clips are built here with PyAV; the colour goes through the tiny checkpoint.
"""

import logging
import os
from fractions import Fraction

import numpy as np
import pytest

av = pytest.importorskip("av")

from irflow_engine import Engine  # noqa: E402
from irflow_engine.animation import Animation, read_animation, write_animation  # noqa: E402
from irflow_engine.cli import main  # noqa: E402
from irflow_engine.video.alpha import (alpha_bits, alpha_decoder, read_alpha, rescale,  # noqa: E402
                                       write_alpha)
from irflow_engine.video.encode import choose_pix_fmt  # noqa: E402
from irflow_engine.video.formats import alpha_twin, plan_format  # noqa: E402

H, W = 24, 32


def _alpha(k: int, smooth: bool) -> np.ndarray:
    """A frame's 8-bit alpha: random, or a ramp with a clear hole (what lossy VP9 alpha keeps)."""
    if not smooth:
        return np.random.default_rng(100 + k).integers(0, 256, (H, W), dtype=np.uint8)
    yy, xx = np.mgrid[0:H, 0:W]
    alpha = np.clip(xx * 8 + k * 6, 0, 255).astype(np.uint8)
    alpha[6:14, 8:20] = 0
    return alpha


def _colour(k: int) -> np.ndarray:
    return np.random.default_rng(k).integers(30, 226, (H, W, 3), dtype=np.uint8)


def _write(path, codec, pix_fmt, frames=3, smooth=False, options=None):
    """A clip of random colour with `_alpha`, encoded as `pix_fmt` (alpha written exactly)."""
    with av.open(str(path), "w") as c:
        s = c.add_stream(codec, rate=10, options=options or {})
        s.width, s.height, s.pix_fmt = W, H, pix_fmt
        for k in range(frames):
            f = av.VideoFrame.from_ndarray(_colour(k), format="rgb24").reformat(format=pix_fmt)
            write_alpha(f, _alpha(k, smooth), 8)
            f.pts = k
            c.mux(s.encode(f))
        c.mux(s.encode(None))


def _decoded(path):
    """The decoded frames of the first video stream, through libvpx where WebM stores alpha."""
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        decoder = alpha_decoder(s)
        frames = []
        for p in c.demux(s):
            frames += decoder.decode(p if p.size else None) if decoder else p.decode()
    return frames


def _restore(src, dst, tiny_checkpoint, **options):
    Engine.from_checkpoint(tiny_checkpoint, steps=1).restore_video(src, dst, progress=False, **options)


# ---- the plane itself ----------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", ["rgba", "argb", "bgra", "ya8", "ya16be", "rgba64le", "yuva420p", "yuva444p12le",
                                 "gbrap10le"])
def test_alpha_is_read_and_written_where_the_format_keeps_it(fmt):
    """write_alpha puts the plane where FFmpeg's format has it (checked by swscale's rgba64le view,
    within its one level of rounding), and read_alpha gives it back exactly, at the format's depth."""
    bits = alpha_bits(fmt)
    alpha = np.random.default_rng(1).integers(0, 1 << bits, (H, W)).astype(np.uint8 if bits <= 8 else np.uint16)
    frame = av.VideoFrame(W, H, fmt)
    for plane in frame.planes:   # poison: unwritten samples show up
        np.frombuffer(plane, np.uint8)[:] = 0x5A
    write_alpha(frame, alpha, bits)
    np.testing.assert_array_equal(read_alpha(frame), alpha)
    seen = frame.reformat(format="rgba64le").to_ndarray()[..., 3].astype(np.int64)
    assert np.abs(seen - rescale(alpha, bits, 16).astype(np.int64)).max() <= 257


def test_rescale_rounds_to_the_nearest_level_and_round_trips():
    a8 = np.arange(256, dtype=np.uint8)
    np.testing.assert_array_equal(rescale(a8, 8, 16), a8.astype(np.uint16) * 257)
    np.testing.assert_array_equal(rescale(rescale(a8, 8, 16), 16, 8), a8)
    a10 = np.arange(1024, dtype=np.uint16)
    np.testing.assert_array_equal(rescale(rescale(a10, 10, 12), 12, 10), a10)
    exact = a10.astype(np.float64) * 255 / 1023
    assert np.abs(rescale(a10, 10, 8) - exact).max() <= 0.5 + 1e-9


def test_formats_with_alpha_come_first_for_a_source_with_alpha():
    assert alpha_twin("yuv444p10le") == "yuva444p10le" and alpha_twin("rgb24") == "rgba"
    assert alpha_twin("gbrp") == "gbrap" and alpha_twin("nv12") is None and alpha_twin("argb") == "argb"
    prores = plan_format("yuva444p12le", W, H)
    assert prores.alpha_bits == 12
    assert prores.output_candidates[:2] == ("yuva444p12le", "yuva444p10le")   # the ProRes encoder's
    assert plan_format("yuv444p12le", W, H).output_candidates[0] == "yuv444p12le"   # no alpha: unchanged
    assert all(alpha_bits(f) == 0 for f in plan_format("yuv420p", W, H).output_candidates)


def test_an_encoder_that_cannot_open_with_alpha_is_not_given_it(tmp_path):
    """This FFmpeg's libx265 lists yuva420p but refuses to open with it: a 10-bit source with alpha
    gets 10-bit HEVC without alpha, not an encoder error."""
    _write(tmp_path / "a.mkv", "ffv1", "yuva420p10le")
    from irflow_engine.video.decode import VideoSource

    source = VideoSource(tmp_path / "a.mkv")
    try:
        chosen = choose_pix_fmt("libx265", source.info, None)
    finally:
        source.close()
    assert chosen == "yuv420p10le"


# ---- videos --------------------------------------------------------------------------------------

@pytest.mark.parametrize("codec, pix_fmt, suffix, worst", [
    ("ffv1", "yuva420p", ".mkv", 0),          # lossless: exactly the input's alpha
    ("ffv1", "yuva444p", ".mkv", 0),
    ("png", "rgba", ".mov", 0),                # a PNG sequence in MOV (motion graphics)
    ("qtrle", "argb", ".mov", 0),              # QuickTime Animation
    ("ffv1", "gbrap10le", ".mkv", 0),          # 10-bit RGB with alpha
    ("prores_ks", "yuva444p10le", ".mov", 4),  # ProRes 4444: decoded at 12 bits, encoded at 10
])
def test_alpha_is_kept(codec, pix_fmt, suffix, worst, tmp_path, tiny_checkpoint, caplog):
    """The output stores the input's alpha plane, exactly for lossless codecs (ProRes within one
    10-bit level: 4 at 12 bits), while the colour is restored: it equals the engine's restoration
    of the input's colour (lossless 4:4:4 FFV1)."""
    src, dst = tmp_path / f"in{suffix}", tmp_path / f"out{suffix}"
    _write(src, codec, pix_fmt)
    with caplog.at_level(logging.WARNING):
        _restore(src, dst, tiny_checkpoint)
    assert "alpha channel" not in caplog.text
    before, after = _decoded(src), _decoded(dst)
    assert len(after) == len(before) == 3
    assert after[0].format.name == before[0].format.name
    for f_in, f_out in zip(before, after):
        diff = np.abs(read_alpha(f_out).astype(np.int64) - read_alpha(f_in).astype(np.int64))
        assert diff.max() <= worst
    if pix_fmt == "yuva444p":
        engine = Engine.from_checkpoint(tiny_checkpoint, steps=1)
        for f_in, f_out in zip(before, after):
            expected = engine.restore(f_in.to_ndarray(format="rgb24")).astype(np.float64)
            got = f_out.to_ndarray(format="rgb24").astype(np.float64)
            assert np.abs(got - expected).mean() < 1   # 8-bit YUV rounding of the restored colour
            assert np.abs(got - f_in.to_ndarray(format="rgb24")).mean() > 3   # and it was restored


@pytest.mark.parametrize("codec", ["libvpx-vp9", "libvpx"])
def test_webm_alpha_is_read_and_kept(codec, tmp_path, tiny_checkpoint):
    """WebM's VP9 and VP8 alpha (a second stream in each block, which FFmpeg's own decoders skip) is
    read through libvpx and written again (VP8 only without alt-ref frames); both code alpha lossily,
    so within their error."""
    src, dst = tmp_path / "in.webm", tmp_path / "out.webm"
    _write(src, codec, "yuva420p", smooth=True, options={"auto-alt-ref": "0"} if codec == "libvpx" else None)
    with av.open(str(src)) as c:   # the premise: FFmpeg's own decoder drops the alpha
        assert c.streams.video[0].metadata.get("alpha_mode") == "1"
        assert next(c.decode(video=0)).format.name == "yuv420p"
    _restore(src, dst, tiny_checkpoint)
    after = _decoded(dst)
    assert len(after) == 3 and after[0].format.name == "yuva420p"
    for k, f in enumerate(after):
        diff = np.abs(read_alpha(f).astype(np.int64) - _alpha(k, True))
        assert diff.mean() < 2 and diff.max() <= 24


def test_alpha_that_the_output_cannot_keep_is_reported(tmp_path, tiny_checkpoint, caplog):
    """H.264 has no alpha: the output is written without it and a warning names encoders that keep it."""
    src = tmp_path / "in.mov"
    _write(src, "prores_ks", "yuva444p10le")
    with caplog.at_level(logging.WARNING):
        _restore(src, tmp_path / "out.mp4", tiny_checkpoint, codec="libx264")
    assert "the alpha channel (transparency) is not kept: the output's libx264 video" in caplog.text
    assert "--codec prores_ks" in caplog.text
    frames = _decoded(tmp_path / "out.mp4")
    assert len(frames) == 3 and alpha_bits(frames[0].format.name) == 0


def test_size_change_mid_stream_keeps_alpha(tmp_path, tiny_checkpoint, caplog):
    """A PNG-in-MOV sequence whose second picture is larger: it is scaled to the start's size,
    alpha and all."""
    src = tmp_path / "switch.mov"
    with av.open(str(src), "w") as c:
        s = c.add_stream("png", rate=10)
        s.width, s.height, s.pix_fmt = W, H, "rgba"
        for k, (w, h) in enumerate([(W, H), (W * 2, H * 2)]):
            encoder = av.CodecContext.create("png", "w")   # each PNG stands alone: any size
            encoder.width, encoder.height, encoder.pix_fmt = w, h, "rgba"
            encoder.time_base = Fraction(1, 10)
            f = av.VideoFrame.from_ndarray(np.full((h, w, 4), 200, np.uint8), format="rgba")
            write_alpha(f, np.full((h, w), 60 + 100 * k, np.uint8), 8)
            f.pts = k
            for packet in encoder.encode(f):
                packet.stream, packet.pts, packet.dts, packet.duration = s, k, k, 1
                c.mux(packet)
    with caplog.at_level(logging.WARNING):
        _restore(src, tmp_path / "out.mov", tiny_checkpoint)
    assert "but it started at 32x24" in caplog.text
    alphas = [read_alpha(f) for f in _decoded(tmp_path / "out.mov")]
    assert [a.shape for a in alphas] == [(H, W)] * 2
    assert int(alphas[0].min()) == int(alphas[0].max()) == 60
    assert 159 <= int(alphas[1].min()) <= int(alphas[1].max()) <= 161   # swscale's scaler: within one level


# ---- animations ----------------------------------------------------------------------------------

def _animation_with_alpha(path, size=(H, W)):
    yy, xx = np.mgrid[0:size[0], 0:size[1]]
    frames = [np.stack([(xx * 5 + 40 * k) % 256, yy * 7, np.full(size, 90 + 30 * k)], -1).astype(np.uint8)
              for k in range(3)]
    alphas = [np.clip(xx * 8 + 10 * k, 0, 255).astype(np.uint8) for k in range(3)]
    write_animation(path, Animation(frames, [100, 150, 200], alphas, loop=0))
    return alphas


@pytest.mark.parametrize("size", [(H, W), (H - 1, W - 1)])
def test_animation_into_webm_keeps_its_alpha(size, tmp_path, tiny_checkpoint, caplog):
    """An animated WebP with transparency restored into WebM keeps it (VP9 alpha, 4:2:0 even at an odd
    size, where VP9 refuses 4:4:4 alpha); into MP4 (H.264) a warning says it is lost."""
    src = tmp_path / "in.webp"
    alphas = _animation_with_alpha(src, size)
    with caplog.at_level(logging.WARNING):
        assert main(["restore", str(src), "-o", str(tmp_path / "out.webm"), "--model", str(tiny_checkpoint),
                     "--steps", "1", "--backend", "eager", "--no-progress"]) == 0
    assert "alpha channel" not in caplog.text
    frames = _decoded(tmp_path / "out.webm")
    assert [f.format.name for f in frames] == ["yuva420p"] * 3
    for f, alpha in zip(frames, alphas):
        assert np.abs(read_alpha(f).astype(np.int64) - alpha).mean() < 2
    with caplog.at_level(logging.WARNING):
        assert main(["restore", str(src), "-o", str(tmp_path / "out.mp4"), "--model", str(tiny_checkpoint),
                     "--steps", "1", "--backend", "eager", "--no-progress"]) == 0
    assert "the alpha channel (transparency) is not kept" in caplog.text
    assert sorted(os.listdir(tmp_path)) == ["in.webp", "out.mp4", "out.webm"]


def test_video_with_alpha_into_an_animation_keeps_it(tmp_path, tiny_checkpoint):
    """FFV1 video with alpha restored into an animated PNG: every frame's alpha exactly."""
    src = tmp_path / "in.mkv"
    _write(src, "ffv1", "yuva444p")
    _restore(src, tmp_path / "out.png", tiny_checkpoint)
    animation = read_animation(tmp_path / "out.png")
    assert animation.alphas is not None and len(animation.alphas) == 3
    for k, alpha in enumerate(animation.alphas):
        np.testing.assert_array_equal(alpha, _alpha(k, False))


def test_split_restore_keeps_webm_alpha(tmp_path, tiny_checkpoint):
    """restore-batch's split path: parts copied from a WebM with alpha keep its AlphaMode mark (the
    muxer drops it from a copied stream), are restored with alpha, and the joined file has it."""
    from irflow_engine.batch.segments import PART_ENCODER_OPTIONS, join_parts, split_at_keyframes

    src = tmp_path / "long.webm"
    with av.open(str(src), "w") as c:
        s = c.add_stream("libvpx-vp9", rate=10, options={"g": "4"})
        s.width, s.height, s.pix_fmt = W, H, "yuva420p"
        for k in range(10):
            f = av.VideoFrame.from_ndarray(_colour(k), format="rgb24").reformat(format="yuva420p")
            write_alpha(f, np.full((H, W), 20 * k + 10, np.uint8), 8)
            f.pts = k
            c.mux(s.encode(f))
        c.mux(s.encode(None))
    parts = split_at_keyframes(src, tmp_path / "parts", 0.35)
    assert len(parts) == 3
    engine = Engine.from_checkpoint(tiny_checkpoint, steps=1)
    restored = []
    for part in parts:
        restored.append(part.with_name(f"restored-{part.name}"))
        engine.restore_video(part, restored[-1], progress=False, encoder_options=PART_ENCODER_OPTIONS)
    join_parts(restored, src, tmp_path / "joined.webm")
    frames = _decoded(tmp_path / "joined.webm")
    assert [f.format.name for f in frames] == ["yuva420p"] * 10
    assert [round(float(read_alpha(f).mean())) for f in frames] == [20 * k + 10 for k in range(10)]
