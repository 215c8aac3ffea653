"""restore_video / `irflow restore in.mp4 -o out.mp4` on clips built here with PyAV.

Clips: a pan across a photograph held out of the bundled models' training, fresh Gaussian noise
(σ = 25) in every frame, a 440 Hz sine track (`irflow_engine.video.synth`). Plumbing tests use
the tiny nf8 checkpoint; the quality test uses the bundled denoiser with one step.
"""

import subprocess
import threading
import time
from fractions import Fraction

import numpy as np
import pytest
import torch

av = pytest.importorskip("av")

from irflow_engine import Engine, pixfmt  # noqa: E402
from irflow_engine.cli import main  # noqa: E402
from irflow_engine.video import TruncatedVideoError, UnsupportedPixelFormatError, VideoError  # noqa: E402
from irflow_engine.video.avframes import copy_to_slot  # noqa: E402
from irflow_engine.video.encode import EncodeOptions, encoder_options  # noqa: E402
from irflow_engine.video.synth import write_noisy_pan  # noqa: E402

RATE = Fraction(24000, 1001)


def _packets(path, kind):
    """(pts, dts, duration) in seconds (exact fractions) and payload of each packet of a stream."""
    with av.open(str(path)) as c:
        s = getattr(c.streams, kind)[0]
        tb = s.time_base
        return [(p.pts * tb, p.dts * tb, p.duration * tb, bytes(p)) for p in c.demux(s) if p.size]


def _video(path):
    """(stream facts, decoded frames as rawvideo arrays, pts) of the first video stream."""
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        facts = dict(frames=s.frames, rate=s.average_rate, time_base=s.time_base,
                     duration=float(s.duration * s.time_base) if s.duration else None,
                     pix_fmt=s.codec_context.pix_fmt, codec=s.codec_context.name,
                     width=s.codec_context.width, height=s.codec_context.height,
                     tags=(s.codec_context.colorspace, s.codec_context.color_range,
                           s.codec_context.color_primaries, s.codec_context.color_trc),
                     streams=[(x.type, x.codec_context.name) for x in c.streams])
        decoded = list(c.decode(s))
    return facts, decoded


def _rgb(frames):
    return [f.to_ndarray(format="rgb24").astype(np.float32) / 255.0 for f in frames]


def _psnr(a, b):
    return float(10 * np.log10(1.0 / np.mean((a - b) ** 2)))


def _leftovers(folder, keep):
    return sorted(p.name for p in folder.iterdir() if p.name not in keep)


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return write_noisy_pan(tmp_path_factory.mktemp("clip") / "noisy.mp4", size=(96, 64), frames=10, rate=RATE,
                           sigma=25.0, options={"crf": "12"})


@pytest.fixture(scope="module")
def denoised(clip):
    """The bundled denoiser (1 step) run once on the clip through the whole pipeline."""
    engine = Engine.from_checkpoint("irflow-denoise-s", steps=1)
    out = clip.path.parent / "restored.mp4"
    report = engine.restore_video(clip.path, out, batch=4, progress=False)
    return out, report


def test_output_keeps_frames_timing_audio_and_colour(clip, denoised):
    out, report = denoised
    src, _ = _video(clip.path)
    dst, frames = _video(out)
    assert dst["frames"] == src["frames"] == 10 == report.frames == len(frames)
    assert dst["rate"] == src["rate"] == RATE
    assert dst["time_base"] == src["time_base"]
    assert abs(dst["duration"] - src["duration"]) <= 1 / float(RATE)
    with av.open(str(clip.path)) as c:
        src_pts = [f.pts for f in c.decode(video=0)]
    assert [f.pts for f in frames] == src_pts
    assert (dst["width"], dst["height"], dst["pix_fmt"], dst["codec"]) == (96, 64, "yuv420p", "h264")
    assert dst["tags"] == src["tags"] == (1, 1, 2, 2)                     # BT.709, limited, untagged rest
    assert dst["streams"] == [("video", "h264"), ("audio", "aac")]
    audio_in, audio_out = _packets(clip.path, "audio"), _packets(out, "audio")
    assert len(audio_in) > 5 and audio_out == audio_in                   # remuxed, not re-encoded
    assert set(report.stage_fps()) >= {"decode", "restore", "encode"}
    assert "fps end to end" in report.summary()


def test_restored_frames_are_closer_to_the_clean_ones(clip, denoised):
    noisy = _rgb(_video(clip.path)[1])
    restored = _rgb(_video(denoised[0])[1])
    before = np.mean([_psnr(a, b) for a, b in zip(noisy, clip.clean)])
    after = np.mean([_psnr(a, b) for a, b in zip(restored, clip.clean)])
    assert after > before + 2.0, (before, after)          # measured: 23.9 dB -> 28.5 dB


def test_lossless_output_equals_the_engine_on_the_decoded_frames(clip, tmp_path, tiny_checkpoint):
    """ffv1 output: every code equals pixfmt -> Engine.restore_batch -> pixfmt on the same batches."""
    engine = Engine.from_checkpoint(tiny_checkpoint, steps=1)
    out = tmp_path / "lossless.mkv"
    engine.restore_video(clip.path, out, codec="ffv1", batch=3, progress=False)
    _, decoded = _video(clip.path)
    raw = np.stack([f.to_ndarray() for f in decoded])                    # 10 × (H·3/2) × W yuv420p
    expected = []
    for i in range(0, len(raw), 3):                                      # the pipeline's batches: 3, 3, 3, 1
        x = pixfmt.frame_to_tensor(raw[i:i + 3], "yuv420p", matrix="bt709", range="limited")
        expected.append(pixfmt.tensor_to_frame(engine.restore_batch(x), "yuv420p", matrix="bt709",
                                               range="limited").numpy())
    facts, got = _video(out)
    assert facts["codec"] == "ffv1" and facts["pix_fmt"] == "yuv420p"
    np.testing.assert_array_equal(np.stack([f.to_ndarray() for f in got]), np.concatenate(expected))


def test_ten_bit_in_ten_bit_out(tmp_path, tiny_checkpoint):
    src = write_noisy_pan(tmp_path / "ten.mp4", size=(64, 48), frames=6, codec="libx265", pix_fmt="yuv420p10le",
                          matrix="bt2020", audio=False, options={"x265-params": "log-level=error"}).path
    out = tmp_path / "ten_out.mp4"
    Engine.from_checkpoint(tiny_checkpoint, steps=1).restore_video(src, out, progress=False)
    facts, frames = _video(out)
    assert (facts["codec"], facts["pix_fmt"], facts["frames"]) == ("hevc", "yuv420p10le", 6)
    assert facts["tags"][:2] == (9, 1)                                   # BT.2020 NCL, limited, kept
    codes = pixfmt.empty_frame("yuv420p10le", 48, 64, batch=len(frames), numpy=True)
    for f, slot in zip(frames, codes):
        copy_to_slot(f, slot, "yuv420p10le")
    assert codes.dtype == np.uint16 and codes.max() > 255 and (codes % 4 != 0).mean() > 0.5   # real 10-bit


def test_subtitles_are_copied(clip, tmp_path, tiny_checkpoint):
    ffmpeg = pytest.importorskip("imageio_ffmpeg").get_ffmpeg_exe()
    srt = tmp_path / "subs.srt"
    srt.write_text("1\n00:00:00,000 --> 00:00:00,200\nhello\n\n2\n00:00:00,200 --> 00:00:00,400\nworld\n")
    src = tmp_path / "subbed.mp4"
    subprocess.run([ffmpeg, "-v", "error", "-i", str(clip.path), "-i", str(srt), "-map", "0", "-map", "1",
                    "-c", "copy", "-c:s", "mov_text", str(src)], check=True)
    out = tmp_path / "subbed_out.mp4"
    Engine.from_checkpoint(tiny_checkpoint, steps=1).restore_video(src, out, progress=False)
    assert _video(out)[0]["streams"] == [("video", "h264"), ("audio", "aac"), ("subtitle", "mov_text")]
    subs = _packets(out, "subtitles")
    assert len(subs) >= 2 and subs == _packets(src, "subtitles")
    assert _packets(out, "audio") == _packets(src, "audio")


def test_cover_picture_is_copied_not_restored(clip, tmp_path, tiny_checkpoint, caplog):
    """An MP4's cover picture (an attached_pic video stream) is neither taken for the video nor
    lost: MP4 output keeps it byte for byte; Matroska, which has no place for it, says so."""
    import logging

    src = _covered_mp4(clip, tmp_path)
    engine = Engine.from_checkpoint(tiny_checkpoint, steps=1)
    with caplog.at_level(logging.WARNING):
        report = engine.restore_video(src, tmp_path / "out.mp4", progress=False)
    assert report.frames == 10 and "not kept" not in caplog.text
    with av.open(str(tmp_path / "out.mp4")) as c:
        covers = [x for x in c.streams.video if int(x.disposition) & 1024]
        assert [x.codec_context.name for x in covers] == ["mjpeg"]
        assert c.streams.video[0].codec_context.name == "h264"
    cover = _cover_bytes(src)
    assert len(cover) == 1 and _cover_bytes(tmp_path / "out.mp4") == cover
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        engine.restore_video(src, tmp_path / "out.mkv", progress=False)
    assert "the cover picture (stream #" in caplog.text and "matroska" in caplog.text
    assert _video(tmp_path / "out.mkv")[0]["streams"] == [("video", "h264"), ("audio", "aac")]


def _covered_mp4(clip, folder):
    """The clip with a 40×40 cover picture (an attached_pic MJPEG stream), made by ffmpeg."""
    from PIL import Image

    ffmpeg = pytest.importorskip("imageio_ffmpeg").get_ffmpeg_exe()
    Image.fromarray(np.full((40, 40, 3), 200, np.uint8)).save(folder / "cover.png")
    src = folder / "covered.mp4"
    subprocess.run([ffmpeg, "-v", "error", "-i", str(folder / "cover.png"), "-i", str(clip.path), "-map", "0",
                    "-map", "1", "-c", "copy", "-c:v:0", "mjpeg", "-disposition:v:0", "attached_pic", str(src)],
                   check=True)
    return src


def _cover_bytes(path):
    with av.open(str(path)) as c:
        cover = next(x for x in c.streams.video if int(x.disposition) & 1024)
        return [bytes(p) for p in c.demux(cover) if p.size]


@pytest.mark.parametrize("degrees", [90, -90, 180])
def test_display_rotation_is_kept(tmp_path, tiny_checkpoint, degrees):
    """A phone video's rotation (display-matrix side data) reaches the output; pixels stay as stored."""
    if not hasattr(av.video.stream.VideoStream, "set_display_rotation"):
        pytest.skip("PyAV < 18 cannot write a display rotation (the engine warns instead)")
    src = tmp_path / "turned.mp4"
    with av.open(str(src), "w") as c:
        s = c.add_stream("mpeg4", rate=10)
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
        s.set_display_rotation(degrees)
        rng = np.random.default_rng(5)
        for i in range(3):
            f = av.VideoFrame.from_ndarray(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8), format="rgb24")
            f.pts = i
            c.mux(s.encode(f))
        c.mux(s.encode(None))
    out = tmp_path / "turned_out.mp4"
    Engine.from_checkpoint(tiny_checkpoint, steps=1).restore_video(src, out, progress=False)
    with av.open(str(out)) as c:
        frame = next(c.decode(video=0))
        assert (frame.width, frame.height) == (64, 48)
        # PyAV reads angles back in [-180, 180): 180 comes back as -180.
        assert frame.rotation % 360 == degrees % 360


def test_unrotated_video_gets_no_rotation(clip, tmp_path, tiny_checkpoint):
    out = tmp_path / "plain_out.mp4"
    Engine.from_checkpoint(tiny_checkpoint, steps=1).restore_video(clip.path, out, progress=False)
    with av.open(str(out)) as c:
        assert next(c.decode(video=0)).rotation == 0


def test_a_format_converted_by_swscale_keeps_its_format(tmp_path, tiny_checkpoint):
    src = tmp_path / "444.mkv"
    with av.open(str(src), "w") as c:
        s = c.add_stream("ffv1", rate=10)
        s.width, s.height, s.pix_fmt = 32, 24, "yuv444p"
        rng = np.random.default_rng(4)
        for i in range(3):
            f = av.VideoFrame.from_ndarray(rng.integers(16, 235, (3, 24, 32), dtype=np.uint8),
                                           format="yuv444p")
            f.pts = i
            c.mux(s.encode(f))
        c.mux(s.encode(None))
    out = tmp_path / "444_out.mkv"
    Engine.from_checkpoint(tiny_checkpoint, steps=1).restore_video(src, out, progress=False)
    facts, frames = _video(out)
    assert (facts["codec"], facts["pix_fmt"], len(frames)) == ("ffv1", "yuv444p", 3)


def test_prores_4444_with_alpha_stays_444(tmp_path, tiny_checkpoint, caplog):
    """ProRes 4444 decodes as yuva444p12le, which the ProRes encoder does not take: the output is
    4:4:4 ProRes with alpha at the 10 bits it does take (refused before; the alpha was dropped until
    2026-11-28, see test_video_alpha.py)."""
    import logging

    from irflow_engine.video.formats import plan_format

    assert plan_format("yuva444p12le", 32, 24).output_candidates[:2] == ("yuva444p12le", "yuva444p10le")
    src = tmp_path / "graphics.mov"
    rng = np.random.default_rng(9)
    with av.open(str(src), "w") as c:
        s = c.add_stream("prores_ks", rate=25)
        s.width, s.height, s.pix_fmt = 32, 24, "yuva444p10le"
        for i in range(2):
            f = av.VideoFrame.from_ndarray(rng.integers(0, 256, (24, 32, 4), dtype=np.uint8), format="rgba")
            f = f.reformat(format="yuva444p10le")
            f.pts = i
            c.mux(s.encode(f))
        c.mux(s.encode(None))
    out = tmp_path / "out.mov"
    with caplog.at_level(logging.WARNING):
        Engine.from_checkpoint(tiny_checkpoint, steps=1).restore_video(src, out, progress=False)
    assert "alpha" not in caplog.text
    facts, frames = _video(out)
    assert facts["codec"] == "prores" and facts["pix_fmt"] == "yuva444p12le" and len(frames) == 2


@pytest.mark.parametrize("codec, pix_fmt, suffix", [("ffv1", "gray16le", ".mkv"), ("png", "ya16be", ".mov"),
                                                     ("ffv1", "ya8", ".mkv")])
def test_grey_video_keeps_its_format(codec, pix_fmt, suffix, tmp_path, tiny_checkpoint):
    """Grey video (16-bit from scientific cameras, grey + alpha from PNG sequences in MOV; refused
    before) is restored through RGB and written back in its own format; 16-bit stays 16-bit."""
    src = tmp_path / f"grey{suffix}"
    rng = np.random.default_rng(10)
    with av.open(str(src), "w") as c:
        s = c.add_stream(codec, rate=25)
        s.width, s.height, s.pix_fmt = 32, 24, pix_fmt
        for i in range(2):
            grey = rng.integers(0, 65536, (24, 32), dtype=np.uint16)
            f = av.VideoFrame.from_ndarray(np.repeat(grey[..., None], 3, axis=2), format="rgb48le")
            f = f.reformat(format=pix_fmt)
            f.pts = i
            c.mux(s.encode(f))
        c.mux(s.encode(None))
    out = tmp_path / f"out{suffix}"
    Engine.from_checkpoint(tiny_checkpoint, steps=1).restore_video(src, out, progress=False)
    facts, frames = _video(out)
    assert facts["pix_fmt"] == pix_fmt and len(frames) == 2
    if pix_fmt != "ya8":
        codes = _plane_codes(frames[0], np.dtype(">u2" if pix_fmt.endswith("be") else "<u2"))[0]
        if pix_fmt.startswith("ya"):
            codes = codes[:, 0::2]   # grey and alpha interleaved: the grey samples
        assert (codes % 257 != 0).mean() > 0.5, "the output's low 8 bits carry nothing: it went through 8 bits"


HDR10_PARAMS = ("master-display=G(13250,34500)B(7500,3000)R(34000,16000)WP(15635,16450)L(10000000,1):"
                "max-cll=1000,400")


def test_hdr10_metadata_is_written_again(tmp_path, tiny_checkpoint, caplog):
    """An HDR10 HEVC clip's mastering display and light levels (frame side data) are written by the
    output's x265 exactly; an encoder that cannot carry them (x264) says so."""
    import logging

    from irflow_engine.video.hdr import from_frame

    src = write_noisy_pan(tmp_path / "hdr.mp4", size=(64, 48), frames=3, codec="libx265", pix_fmt="yuv420p10le",
                          matrix="bt2020", audio=False,
                          options={"x265-params": "log-level=error:" + HDR10_PARAMS}).path

    def metadata(path):
        with av.open(str(path)) as c:
            return from_frame(next(c.decode(video=0)))

    assert metadata(src).x265_params() == HDR10_PARAMS   # the premise, and the parser
    engine = Engine.from_checkpoint(tiny_checkpoint, steps=1)
    engine.restore_video(src, tmp_path / "out.mp4", progress=False)
    got = metadata(tmp_path / "out.mp4")
    assert got == metadata(src) and got.max_cll == 1000 and got.luminance[1] == 1000
    with caplog.at_level(logging.WARNING):
        engine.restore_video(src, tmp_path / "x264.mp4", progress=False, codec="libx264")
    assert "HDR mastering display and light levels are not written: libx264" in caplog.text
    assert metadata(tmp_path / "x264.mp4") is None


def test_hdr10plus_metadata_that_is_lost_is_warned_about(tmp_path, tiny_checkpoint, caplog):
    """HDR10+ metadata (a Samsung phone's or a master's, in an SEI of every picture) is decoded but no
    encoder here writes it back: a warning names it; the output keeps PQ and has none."""
    import logging

    from irflow_engine.video.hdr import dynamic_metadata
    from irflow_engine.video.synth import write_hdr10plus_clip

    src = tmp_path / "hdr10plus.ts"
    write_hdr10plus_clip(src)

    def first_frame(path):
        with av.open(str(path)) as c:
            return next(c.decode(video=0))

    assert dynamic_metadata(first_frame(src)) == "HDR10+ (SMPTE ST 2094-40)"   # the premise
    with caplog.at_level(logging.WARNING):
        Engine.from_checkpoint(tiny_checkpoint, steps=1).restore_video(src, tmp_path / "out.mkv", progress=False)
    assert "the HDR10+ (SMPTE ST 2094-40) dynamic metadata (per-scene tone mapping) is not kept" in caplog.text
    out = first_frame(tmp_path / "out.mkv")
    assert dynamic_metadata(out) is None and out.color_trc == 16


def test_interlaced_video_is_reported(tmp_path, tiny_checkpoint, caplog):
    import logging

    src = tmp_path / "broadcast.ts"
    _clip_in(src, "mpeg2video", None)   # progressive: no warning
    engine = Engine.from_checkpoint(tiny_checkpoint, steps=1)
    with caplog.at_level(logging.WARNING):
        engine.restore_video(src, tmp_path / "p.ts", progress=False)
    assert "interlaced" not in caplog.text
    src = tmp_path / "interlaced.ts"   # fields coded apart (interlaced DCT and motion estimation)
    _clip_in(src, "mpeg2video", None, options={"flags": "+ildct+ilme"})
    with caplog.at_level(logging.WARNING):
        engine.restore_video(src, tmp_path / "i.ts", progress=False)
    assert "is interlaced" in caplog.text and "deinterlace it first" in caplog.text


def test_hdr_params_keep_the_users_own():
    from fractions import Fraction as F

    from irflow_engine.video.hdr import HdrMetadata, encoder_params

    hdr = HdrMetadata(((F(17, 25), F(8, 25)), (F(53, 200), F(69, 100)), (F(3, 20), F(3, 50))),
                      (F(3127, 10000), F(329, 1000)), (F(1, 10000), F(1000)), 1000, 400)
    assert hdr.x265_params() == HDR10_PARAMS
    assert hdr.svtav1_params() == ("mastering-display=G(0.2650,0.6900)B(0.1500,0.0600)R(0.6800,0.3200)"
                                   "WP(0.3127,0.3290)L(1000.0000,0.0001):content-light=1000,400")
    merged = encoder_params("libx265", hdr, {"x265-params": "log-level=error:max-cll=500,100", "crf": "20"})
    assert merged == {"x265-params": "log-level=error:max-cll=500,100:" + HDR10_PARAMS.split(":")[0], "crf": "20"}
    assert encoder_params("libx264", hdr, {}) is None


@pytest.mark.parametrize("codec, profile, pix_fmt, suffix", [
    ("dnxhd", "dnxhr_hq", "yuv422p", ".mov"),       # refused before: the encoder fell back to DNxHD's sizes
    ("dnxhd", "dnxhr_hqx", "yuv422p10le", ".mxf"),  # and MXF was said not to hold DNxHD
    ("prores_ks", "1", "yuv422p10le", ".mov"),      # ProRes LT stayed ProRes, but became Standard
])
def test_intermediate_codecs_keep_their_profile(codec, profile, pix_fmt, suffix, tmp_path, tiny_checkpoint):
    src = tmp_path / f"edit{suffix}"
    _clip_in(src, codec, None, frames=2, options={"profile": profile}, size=(144, 256), pix_fmt=pix_fmt)
    out = tmp_path / f"out{suffix}"
    Engine.from_checkpoint(tiny_checkpoint, steps=1).restore_video(src, out, progress=False)
    with av.open(str(src)) as a, av.open(str(out)) as b:
        want, got = a.streams.video[0].codec_context, b.streams.video[0].codec_context
        assert (got.name, got.profile, got.pix_fmt) == (want.name, want.profile, want.pix_fmt)
        assert len(list(b.decode(video=0))) == 2


def _plane_codes(frame, dtype=np.uint16):
    """Each plane of a planar PyAV frame as an int array (row pitch dropped)."""
    size = np.dtype(dtype).itemsize
    return [np.frombuffer(p, dtype).reshape(-1, p.line_size // size)[:p.height, :p.width].astype(int)
            for p in frame.planes]


@pytest.mark.parametrize("pix_fmt, worst, mean", [("yuv422p10le", 12, 0.1), ("yuv444p12le", 1, 0.25),
                                                   ("gbrp10le", 0, 0.0)])
def test_deep_422_444_and_rgb_video_keep_their_chroma(pix_fmt, worst, mean, tmp_path, tiny_checkpoint):
    """ProRes/DNxHR-like 4:2:2, 4:4:4 and RGB video go through 16-bit R'G'B' (rgb48le), not 4:2:0:
    with the network replaced by the identity, output codes equal the input's (measured, largest /
    mean difference: 4:2:2 9 / 0.02 codes, where random per-pixel colour leaves a few pixels out of
    gamut; 4:4:4 12-bit 1 / 0.16; RGB exact), while the input's chroma changes from row to row by
    100-570 codes on average, which averaging to 4:2:0 would halve."""
    src = tmp_path / "deep.mkv"
    rng = np.random.default_rng(7)
    colour = dict(src_colorspace="ITU709", dst_colorspace="ITU709", src_color_range="MPEG", dst_color_range="MPEG")
    with av.open(str(src), "w") as c:
        s = c.add_stream("ffv1", rate=10)
        s.width, s.height, s.pix_fmt = 32, 24, pix_fmt
        for i in range(3):
            rgb = rng.integers(10000, 55000, (24, 32, 3), dtype=np.uint16)   # away from the gamut's edges
            f = av.VideoFrame.from_ndarray(rgb, format="rgb48le").reformat(format=pix_fmt, **colour)
            f.pts = i
            c.mux(s.encode(f))
        c.mux(s.encode(None))
    engine = Engine.from_checkpoint(tiny_checkpoint, steps=1)
    engine.restore_batch = lambda y, **_: y.clone()
    out = tmp_path / "deep_out.mkv"
    report = engine.restore_video(src, out, progress=False)
    facts, frames = _video(out)
    _, inputs = _video(src)
    assert (facts["pix_fmt"], len(frames), report.frames) == (pix_fmt, 3, 3)
    for a, b in zip(inputs, frames):
        codes_in, codes_out = _plane_codes(a), _plane_codes(b)
        assert [x.shape for x in codes_in] == [x.shape for x in codes_out]
        for x, y in zip(codes_in, codes_out):
            assert np.abs(x - y).max() <= worst and np.abs(x - y).mean() <= mean
        assert np.abs(codes_in[1][0::2] - codes_in[1][1::2]).mean() > 40


@pytest.mark.parametrize("suffix", [".mov", ".mkv"])
def test_start_timecode_is_kept(suffix, tmp_path, tiny_checkpoint, caplog):
    """A camera file's start timecode (MOV: the video's tag and a tmcd data track) survives: the
    output's video stream carries it (MOV/MP4 write a new tmcd track from it), and the timecode
    track is not reported as a lost stream."""
    import logging

    src = tmp_path / "cam.mov"
    with av.open(str(src), "w") as c:
        s = c.add_stream("mpeg4", rate=25)
        s.width, s.height, s.pix_fmt = 32, 24, "yuv420p"
        s.metadata["timecode"] = "01:02:03:04"
        for i in range(3):
            f = av.VideoFrame.from_ndarray(np.full((24, 32, 3), 60 * i + 40, np.uint8), format="rgb24")
            f.pts = i
            c.mux(s.encode(f))
        c.mux(s.encode(None))
    with av.open(str(src)) as c:
        assert [x.type for x in c.streams] == ["video", "data"]            # the tmcd track
    out = tmp_path / f"out{suffix}"
    with caplog.at_level(logging.WARNING):
        Engine.from_checkpoint(tiny_checkpoint, steps=1).restore_video(src, out, progress=False)
    assert "not kept" not in caplog.text
    with av.open(str(out)) as c:
        tags = {k.lower(): v for k, v in c.streams.video[0].metadata.items()}
        assert tags.get("timecode") == "01:02:03:04"


def _klv_ts(path, frames=6):
    """An MPEG-TS like a drone's: MPEG-2 video and a KLV metadata stream, one packet per frame."""
    with av.open(str(path), "w") as c:
        v = c.add_stream("mpeg2video", rate=25)
        v.width, v.height, v.pix_fmt = 32, 24, "yuv420p"
        d = c.add_data_stream("klv")
        rng = np.random.default_rng(5)
        for i in range(frames):
            f = av.VideoFrame.from_ndarray(rng.integers(0, 256, (24, 32, 3), dtype=np.uint8), format="rgb24")
            f.pts = i
            c.mux(v.encode(f))
            # a KLV set: 16-byte universal key, BER length, value
            p = av.Packet(bytes([6, 14, 43, 52, 2, 11, 1, 1, 14, 1, 3, 1, 1, 0, 0, 0, 5]) + bytes([i, 7, 7, 9, i]))
            p.stream, p.time_base = d, Fraction(1, 90000)
            p.pts = p.dts = 3600 * i
            c.mux(p)
        c.mux(v.encode(None))


@pytest.mark.parametrize("suffix", [".ts", ".mkv", ".m2ts"])
def test_klv_data_stream_is_copied_where_the_container_holds_it(suffix, tmp_path, tiny_checkpoint, caplog):
    """A KLV stream is copied packet for packet (payload and time) into MPEG-TS; Matroska and
    Blu-ray TS (.m2ts) cannot hold it, so it is dropped with a warning that names it, and the video
    is still written. The MPEG-2 video is re-encoded on its frame grid (its encoder refuses the
    stream's 1/90000 time base)."""
    import logging

    src = tmp_path / "drone.ts"
    _klv_ts(src)
    out = tmp_path / f"out{suffix}"
    with caplog.at_level(logging.WARNING):
        Engine.from_checkpoint(tiny_checkpoint, steps=1).restore_video(src, out, progress=False)
    with av.open(str(out)) as c:
        assert c.streams.video[0].frames in (0, 6) and len(list(c.decode(video=0))) == 6
        kinds = [x.type for x in c.streams]
    want = _data_packets(src)
    assert len(want) == 6 and len({w[1] for w in want}) == 6
    if suffix == ".ts":
        assert kinds == ["video", "data"] and "not kept" not in caplog.text
        assert _data_packets(out) == want
    else:
        assert kinds == ["video"] and "klv data stream #1 is not kept" in caplog.text


@pytest.mark.parametrize("suffix", [".ts", ".m2ts"])
def test_h264_aac_transport_stream(suffix, tmp_path, tiny_checkpoint):
    """H.264 + AAC in MPEG-TS (broadcast captures, AVCHD .m2ts/.mts) into MPEG-TS: the muxer has no
    codec table, so PyAV's list of what it holds names only MPEG-2 video and MP2 audio; the codecs
    the muxer does not refuse are written. Frames and audio packets kept."""
    src = tmp_path / "capture.ts"
    write_noisy_pan(src, size=(48, 32), frames=5, rate=25, seed=3)
    out = tmp_path / f"out{suffix}"
    Engine.from_checkpoint(tiny_checkpoint, steps=1).restore_video(src, out, progress=False)
    facts, decoded = _video(out)
    assert facts["streams"] == [("video", "h264"), ("audio", "aac")] and len(decoded) == 5
    assert [p[3] for p in _packets(out, "audio")] == [p[3] for p in _packets(src, "audio")]


def _clip_in(path, video_codec, audio_codec, frames=4, options=None, seed=7, size=(24, 32), pix_fmt="yuv420p"):
    """A short clip in the container of `path`'s suffix: random frames (`size` is H, W), silent audio."""
    rng = np.random.default_rng(seed)
    with av.open(str(path), "w") as c:
        v = c.add_stream(video_codec, rate=25, options=options or {})
        v.height, v.width = size
        v.pix_fmt = pix_fmt
        a = c.add_stream(audio_codec, rate=48000) if audio_codec else None
        for i in range(frames):
            f = av.VideoFrame.from_ndarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8), format="rgb24")
            f = f.reformat(format=pix_fmt)
            f.pts = i
            c.mux(v.encode(f))
        if a is not None:
            size = a.codec_context.frame_size or 1024
            for i in range(4):
                af = av.AudioFrame(format=a.codec_context.format.name, layout=a.codec_context.layout.name,
                                   samples=size)
                for plane in af.planes:
                    plane.update(bytes(plane.buffer_size))
                af.sample_rate, af.pts = 48000, i * size
                c.mux(a.encode(af))
            c.mux(a.encode(None))
        c.mux(v.encode(None))


@pytest.mark.parametrize("suffix,video_codec,audio_codec", [
    (".mpg", "mpeg2video", "mp2"),     # a DVD-style program stream (refused before: "holds neither")
    (".y4m", "rawvideo", None),        # refused before: PyAV names only wrapped_avframe for y4m
    (".mts", "libx264", "ac3"),        # AVCHD
    (".avi", "mpeg4", "mp2"),
    (".ts", "mpeg2video", "libmp3lame"),   # MP3 (its decoder is named "mp3float")
])
def test_containers_without_codec_tables_round_trip(suffix, video_codec, audio_codec, tmp_path, tiny_checkpoint):
    src = tmp_path / f"in{suffix}"
    _clip_in(src, video_codec, audio_codec)
    out = tmp_path / f"out{suffix}"
    Engine.from_checkpoint(tiny_checkpoint, steps=1).restore_video(src, out, progress=False)
    with av.open(str(src)) as a, av.open(str(out)) as b:
        assert [(s.type, s.codec_context.name) for s in b.streams] == [(s.type, s.codec_context.name) for s in a.streams]
        assert len(list(b.decode(video=0))) == 4


def _data_packets(path):
    """(pts in seconds relative to the first video frame, payload) of the first data stream."""
    with av.open(str(path)) as c:
        s, v = c.streams.data[0], c.streams.video[0]
        start = v.start_time * v.time_base
        return [((p.pts * s.time_base) - start, bytes(p)) for p in c.demux(s) if p.size]


def _odd_clip(path, pix_fmt, frames=2):
    """An FFV1 clip of a smooth picture, 33×25 pixels, in `pix_fmt`."""
    y, x = np.mgrid[0:25, 0:33]
    with av.open(str(path), "w") as c:
        s = c.add_stream("ffv1", rate=10)
        s.width, s.height, s.pix_fmt = 33, 25, pix_fmt
        for i in range(frames):
            rgb = np.stack([x * 6 + 30, y * 7 + 20 + 2 * i, (x + y) * 3 + 35], -1).astype(np.uint8)
            f = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format=pix_fmt)
            f.pts = i
            c.mux(s.encode(f))
        c.mux(s.encode(None))
    return path


@pytest.mark.parametrize("pix_fmt", ["yuv420p", "yuv420p10le"])
def test_odd_sized_420_video(pix_fmt, tmp_path, tiny_checkpoint):
    """VP9, AV1 and FFV1 allow 4:2:0 frames of odd width or height, which pixfmt cannot convert
    alone: they are held in even slots (the last row and column repeated) and come out in their
    own format and size; with the identity for a network a smooth picture's codes come back to
    ±1 (luma) and ±2 (chroma, which goes through bilinear upsampling and 2×2 averaging), counted
    in 8-bit steps."""
    src = _odd_clip(tmp_path / "odd.mkv", pix_fmt)
    engine = Engine.from_checkpoint(tiny_checkpoint, steps=1)
    engine.restore_batch = lambda y, **_: y.clone()
    out = tmp_path / "odd_out.mkv"
    engine.restore_video(src, out, progress=False)
    facts, frames = _video(out)
    assert (facts["pix_fmt"], facts["width"], facts["height"], len(frames)) == (pix_fmt, 33, 25, 2)
    _, inputs = _video(src)
    dtype, step = (np.uint16, 4) if pix_fmt.endswith("10le") else (np.uint8, 1)
    for a, b in zip(inputs, frames):
        planes_in, planes_out = _plane_codes(a, dtype), _plane_codes(b, dtype)
        assert [p.shape for p in planes_in] == [p.shape for p in planes_out] == [(25, 33), (13, 17), (13, 17)]
        assert np.abs(planes_in[0] - planes_out[0]).max() <= step
        assert max(np.abs(x - y).max() for x, y in zip(planes_in[1:], planes_out[1:])) <= 2 * step


def test_odd_size_restores_like_the_engine(tmp_path, tiny_checkpoint):
    """The pixels the network sees for an odd frame are the frame itself (no repeated edge)."""
    src = _odd_clip(tmp_path / "odd.mkv", "yuv420p", frames=1)
    engine = Engine.from_checkpoint(tiny_checkpoint, steps=1)
    seen = []
    engine.restore_batch = lambda y, **_: seen.append(y.clone()) or y
    engine.restore_video(src, tmp_path / "o.mkv", progress=False)
    _, (frame,) = _video(src)
    assert seen[0].shape == (1, 3, 25, 33)
    rgb = frame.to_ndarray(format="rgb24").astype(np.float32) / 255   # swscale's conversion, for scale
    assert np.abs(seen[0][0].permute(1, 2, 0).numpy() - rgb).mean() < 0.02


def test_deep_odd_sized_video_through_swscale_is_refused(tmp_path, tiny_checkpoint):
    src = _odd_clip(tmp_path / "odd10.mkv", "yuv444p10le", frames=1)
    engine = Engine.from_checkpoint(tiny_checkpoint, steps=1)
    with pytest.raises(UnsupportedPixelFormatError, match="yuv444p10le video of odd size 33x25 is not supported"):
        engine.restore_video(src, tmp_path / "o.mkv", progress=False)
    assert _leftovers(tmp_path, {"odd10.mkv"}) == []


def test_unsupported_pixel_format_is_refused(tmp_path, tiny_checkpoint):
    src = tmp_path / "cinema.nut"   # a digital cinema package's XYZ colours, 12-bit
    with av.open(str(src), "w") as c:
        s = c.add_stream("rawvideo", rate=10)
        s.width, s.height, s.pix_fmt = 32, 24, "xyz12le"
        f = av.VideoFrame.from_ndarray(np.full((24, 32, 3), 90, np.uint8), format="rgb24").reformat(format="xyz12le")
        f.pts = 0
        c.mux(s.encode(f))
        c.mux(s.encode(None))
    engine = Engine.from_checkpoint(tiny_checkpoint, steps=1)
    with pytest.raises(UnsupportedPixelFormatError, match="xyz12le .12-bit. is not supported"):
        engine.restore_video(src, tmp_path / "o.mkv", progress=False)
    assert _leftovers(tmp_path, {"cinema.nut"}) == []


def test_truncated_mp4_gives_a_clear_error_and_no_output(clip, tmp_path, tiny_checkpoint):
    data = clip.path.read_bytes()
    src = tmp_path / "cut.mp4"
    src.write_bytes(data[: len(data) // 2])            # PyAV writes the index (moov) last: it is gone
    with pytest.raises(VideoError, match="cannot read .*cut.mp4.*truncated or corrupt"):
        Engine.from_checkpoint(tiny_checkpoint, steps=1).restore_video(src, tmp_path / "o.mp4", progress=False)
    assert _leftovers(tmp_path, {"cut.mp4"}) == []


def test_avi_with_skipped_frames_is_not_truncated(tmp_path, tiny_checkpoint):
    """A variable-rate capture in AVI: skipped frames are empty index entries that the header counts
    as frames. The file is whole (its frames span the announced length): restored, with the times of
    the frames it holds."""
    src = tmp_path / "capture.avi"
    held = [0, 2, 3, 4, 6, 7]
    rng = np.random.default_rng(6)
    with av.open(str(src), "w") as c:
        s = c.add_stream("mjpeg", rate=25)
        s.width, s.height, s.pix_fmt = 32, 24, "yuvj420p"
        for t in held:
            f = av.VideoFrame.from_ndarray(rng.integers(0, 256, (24, 32, 3), dtype=np.uint8), format="rgb24")
            f.pts = t
            c.mux(s.encode(f))
        c.mux(s.encode(None))
    with av.open(str(src)) as c:
        assert c.streams.video[0].frames == 8            # the premise: 2 empty entries counted
    out = tmp_path / "out.avi"
    Engine.from_checkpoint(tiny_checkpoint, steps=1).restore_video(src, out, progress=False)
    with av.open(str(out)) as c:
        assert [f.pts for f in c.decode(video=0)] == held
    cut = tmp_path / "cut.avi"   # but a file that ends early is still caught
    data = src.read_bytes()
    cut.write_bytes(data[: len(data) * 3 // 4])
    with pytest.raises(TruncatedVideoError, match="of its 8 frames"):
        Engine.from_checkpoint(tiny_checkpoint, steps=1).restore_video(cut, tmp_path / "cut_out.avi", progress=False)
    assert not (tmp_path / "cut_out.avi").exists()


def test_b_frames_in_avi_get_ordered_times(tmp_path, tiny_checkpoint):
    """AVI stores decoding times only, so H.264 with B-frames decodes with times out of order
    (1, 2, 4, 3, ...), which encoders and muxers refuse. The output holds every frame, in display
    order, with the input's times sorted."""
    src = tmp_path / "camera.avi"
    _clip_in(src, "libx264", None, frames=12, options={"bframes": "3", "b-pyramid": "normal"}, seed=8)
    with av.open(str(src)) as c:
        times = [f.pts for f in c.decode(video=0)]
    assert times != sorted(times), f"the premise: decoded times out of order, got {times}"
    out = tmp_path / "out.mkv"
    Engine.from_checkpoint(tiny_checkpoint, steps=1).restore_video(src, out, progress=False)
    with av.open(str(out)) as c:
        got = [f.time for f in c.decode(video=0)]
    assert len(got) == 12 and got == sorted(got)
    assert np.allclose(got, [t / 25 for t in sorted(times)], atol=1e-3)


def test_size_change_mid_stream_is_scaled_to_the_start(tmp_path, tiny_checkpoint, caplog):
    """A transport stream that switches from 64x48 to 48x32 (a broadcast going from HD to SD) is
    restored whole: later frames are scaled to the starting size (refused before), with a warning."""
    import logging

    def segment(path, width, height, start):
        with av.open(str(path), "w") as c:
            s = c.add_stream("mpeg2video", rate=25)
            s.width, s.height, s.pix_fmt = width, height, "yuv420p"
            for i in range(3):
                f = av.VideoFrame.from_ndarray(np.full((height, width, 3), 40 * i + 50, np.uint8), format="rgb24")
                f.pts = start + i
                c.mux(s.encode(f))
            c.mux(s.encode(None))

    segment(tmp_path / "hd.ts", 64, 48, 0)
    segment(tmp_path / "sd.ts", 48, 32, 3)
    src = tmp_path / "switch.ts"   # transport streams concatenate as bytes
    src.write_bytes((tmp_path / "hd.ts").read_bytes() + (tmp_path / "sd.ts").read_bytes())
    with av.open(str(src)) as c:
        sizes = [(f.width, f.height) for f in c.decode(video=0)]
    assert sizes[0] == (64, 48) and sizes[-1] == (48, 32)   # the premise
    with caplog.at_level(logging.WARNING):
        Engine.from_checkpoint(tiny_checkpoint, steps=1).restore_video(src, tmp_path / "out.mkv", progress=False)
    assert "the video is 48x32 yuv420p, but it started at 64x48" in caplog.text
    with av.open(str(tmp_path / "out.mkv")) as c:
        assert [(f.width, f.height) for f in c.decode(video=0)] == [(64, 48)] * len(sizes)


def test_repeated_frame_times_are_made_increasing(tmp_path, tiny_checkpoint, caplog):
    """Matroska may hold two frames at one time; MP4 and the encoders refuse that ("non
    monotonically increasing dts"). The second frame is written one tick later, and a warning says so."""
    import logging

    src = tmp_path / "screen.mkv"
    rng = np.random.default_rng(13)
    with av.open(str(src), "w") as c:
        s = c.add_stream("ffv1", rate=25)
        s.width, s.height, s.pix_fmt = 32, 24, "yuv420p"
        for t in (0, 1, 1, 2, 3):
            f = av.VideoFrame.from_ndarray(rng.integers(0, 256, (24, 32, 3), dtype=np.uint8), format="rgb24")
            f.pts = t
            c.mux(s.encode(f))
        c.mux(s.encode(None))
    with av.open(str(src)) as c:
        assert [f.time for f in c.decode(video=0)] == [0, 0.04, 0.04, 0.08, 0.12]   # the premise
    with caplog.at_level(logging.WARNING):
        Engine.from_checkpoint(tiny_checkpoint, steps=1).restore_video(src, tmp_path / "out.mp4", progress=False)
    assert "1 frames had the time of the frame before them" in caplog.text
    with av.open(str(tmp_path / "out.mp4")) as c:
        assert np.allclose([f.time for f in c.decode(video=0)], [0, 0.04, 0.041, 0.08, 0.12], atol=1e-4)


def test_truncated_mkv_is_detected_after_decoding(tmp_path, tiny_checkpoint):
    full = write_noisy_pan(tmp_path / "full.mkv", size=(64, 48), frames=12, codec="ffv1", audio=False).path
    data = full.read_bytes()
    src = tmp_path / "cut.mkv"
    src.write_bytes(data[: int(len(data) * 0.55)])      # Matroska announces its duration up front
    with pytest.raises(TruncatedVideoError, match=r"ended after \d+ frames.*announces about 12"):
        Engine.from_checkpoint(tiny_checkpoint, steps=1).restore_video(src, tmp_path / "o.mkv", progress=False)
    assert _leftovers(tmp_path, {"full.mkv", "cut.mkv"}) == []


def test_interrupted_run_leaves_no_output_and_stops_its_threads(clip, tmp_path, tiny_checkpoint):
    engine = Engine.from_checkpoint(tiny_checkpoint, steps=1)
    real, calls = engine.backend.restore, []

    def restore(y):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt          # what Ctrl-C raises, here in the restoring thread
        return real(y)

    engine.backend.restore = restore
    with pytest.raises(KeyboardInterrupt):
        engine.restore_video(clip.path, tmp_path / "o.mp4", batch=2, progress=False)
    assert _leftovers(tmp_path, set()) == []
    deadline = time.time() + 5
    while _pipeline_threads() and time.time() < deadline:
        time.sleep(0.05)
    assert not _pipeline_threads()


def _pipeline_threads():
    return [t for t in threading.enumerate() if t.name.startswith("irflow-")]


def test_path_errors(clip, tmp_path, tiny_checkpoint):
    engine = Engine.from_checkpoint(tiny_checkpoint, steps=1)
    existing = tmp_path / "exists.mp4"
    existing.write_bytes(b"precious")
    with pytest.raises(VideoError, match="exists; pass --overwrite"):
        engine.restore_video(clip.path, existing, progress=False)
    assert existing.read_bytes() == b"precious"
    with pytest.raises(VideoError, match="output is the input"):
        engine.restore_video(clip.path, clip.path, overwrite=True, progress=False)
    with pytest.raises(VideoError, match="does not exist"):
        engine.restore_video(tmp_path / "missing.mp4", tmp_path / "o.mp4", progress=False)
    with pytest.raises(VideoError, match="container format"):
        engine.restore_video(clip.path, tmp_path / "o.unknownsuffix", progress=False)
    not_video = tmp_path / "text.mp4"
    not_video.write_text("not a video")
    with pytest.raises(VideoError, match="cannot read"):
        engine.restore_video(not_video, tmp_path / "o.mp4", progress=False)
    with pytest.raises(TypeError, match="unknown video option"):
        engine.restore_video(clip.path, tmp_path / "o.mp4", quality=3)
    with pytest.raises(VideoError, match=r"a \.jpg file holds one picture, not a video.*-frames:v 1"):
        engine.restore_video(clip.path, tmp_path / "o.jpg", progress=False)   # was FFmpeg's "[mjpeg] Non full-range"
    assert _leftovers(tmp_path, {"exists.mp4", "text.mp4"}) == []


def test_encoder_options_follow_the_codec():
    assert encoder_options("libx264", EncodeOptions()) == {"crf": "18"}
    assert encoder_options("libx264", EncodeOptions(crf=23, preset="fast")) == {"crf": "23", "preset": "fast"}
    assert encoder_options("libvpx-vp9", EncodeOptions())["b"] == "0"
    assert encoder_options("ffv1", EncodeOptions()) == {}
    assert encoder_options("libx265", EncodeOptions(options={"tune": "grain"})) == {
        "x265-params": "log-level=error", "crf": "20", "tune": "grain"}
    with pytest.raises(VideoError, match="--crf applies to"):
        encoder_options("ffv1", EncodeOptions(crf=20))
    with pytest.raises(VideoError, match="--preset applies to"):
        encoder_options("mpeg4", EncodeOptions(preset="slow"))


def test_cli_restores_a_video(clip, tmp_path, tiny_checkpoint, capsys):
    out = tmp_path / "cli.mkv"
    args = ["restore", str(clip.path), "-o", str(out), "--model", str(tiny_checkpoint), "--steps", "1",
            "--device", "cpu", "--codec", "libx264", "--crf", "20", "--preset", "ultrafast", "--no-progress"]
    assert main(args) == 0
    err = capsys.readouterr().err
    assert "wrote" in err and "fps end to end" in err and "restore" in err
    facts, frames = _video(out)
    assert (facts["codec"], len(frames)) == ("h264", 10)
    # MP4 -> Matroska: the same payloads; Matroska shifts the AAC priming delay to start at 0.
    assert [p[3] for p in _packets(out, "audio")] == [p[3] for p in _packets(clip.path, "audio")]
    assert main(args) == 1
    assert "exists; pass --overwrite" in capsys.readouterr().err
    assert main(args[:-1] + ["--codec", "nosuchcodec", "--overwrite"]) == 1
    assert "unknown video encoder" in capsys.readouterr().err


def test_cli_ctrl_c_says_nothing_was_written(clip, tmp_path, tiny_checkpoint, capsys, monkeypatch):
    def interrupted(self, *a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(Engine, "restore_video", interrupted)
    out = tmp_path / "o.mp4"
    assert main(["restore", str(clip.path), "-o", str(out), "--model", str(tiny_checkpoint)]) == 130
    assert "interrupted" in capsys.readouterr().err and not out.exists()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("pix_fmt", ["yuv420p", "yuv420p10le"])
def test_cuda_pipeline_matches_cpu(pix_fmt, tmp_path, tiny_checkpoint):
    """CUDA path (pinned buffers, side streams, conversion on the GPU) == the CPU path, to ±1 code."""
    src = write_noisy_pan(tmp_path / "in.mkv", size=(64, 48), frames=7, codec="ffv1", pix_fmt=pix_fmt).path
    cpu_out, gpu_out = tmp_path / "cpu.mkv", tmp_path / "gpu.mkv"
    Engine.from_checkpoint(tiny_checkpoint, steps=1).restore_video(src, cpu_out, progress=False)
    gpu = Engine.from_checkpoint(tiny_checkpoint, steps=1, device="cuda")
    report = gpu.restore_video(src, gpu_out, batch=3, progress=False)
    codes = []
    for path in (cpu_out, gpu_out):
        facts, frames = _video(path)
        assert facts["pix_fmt"] == pix_fmt
        slots = pixfmt.empty_frame(pix_fmt, 48, 64, batch=len(frames), numpy=True)
        for f, slot in zip(frames, slots):
            copy_to_slot(f, slot, pix_fmt)
        codes.append(slots.astype(int))
    assert codes[0].shape == codes[1].shape == (7, 72, 64) and np.abs(codes[0] - codes[1]).max() <= 1
    assert report.stages["restore"].frames == 7 and report.stages["convert"].frames == 0   # converted on the GPU


def test_readme_video_example_runs(tmp_path, monkeypatch):
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    block = next(b for b in re.findall(r"```python\n(.*?)```", text, flags=re.S) if "restore_video" in b)
    monkeypatch.chdir(tmp_path)
    exec(compile(block, "README.md", "exec"), {})
    facts, _ = _video(tmp_path / "demo_out" / "restored.mp4")
    assert facts["frames"] == 8 and facts["streams"] == [("video", "h264"), ("audio", "aac")]


def _with_font(path):
    """A Matroska clip with a font attached (what styled ASS subtitles carry)."""
    font = b"OTTO" + bytes(range(256)) * 4
    with av.open(str(path), "w") as c:
        v = c.add_stream("libx264", rate=25)
        v.width, v.height, v.pix_fmt = 32, 24, "yuv420p"
        c.add_attachment("subs-font.otf", "application/vnd.ms-opentype", font)
        for i in range(3):
            f = av.VideoFrame.from_ndarray(np.full((24, 32, 3), 30 * i + 40, np.uint8), format="rgb24")
            f.pts = i
            c.mux(v.encode(f))
        c.mux(v.encode(None))
    return font


def _attachments(path):
    with av.open(str(path)) as c:
        return [(s.metadata.get("filename"), s.metadata.get("mimetype"), bytes(s.data)) for s in c.streams.attachments]


@pytest.mark.parametrize("suffix", [".mkv", ".mp4"])
def test_attachments_are_copied_into_matroska(suffix, tmp_path, tiny_checkpoint, caplog):
    """A Matroska file's attached fonts are copied into a Matroska output (refused to be kept before);
    an MP4 cannot hold them, and a warning names the file."""
    import logging

    from irflow_engine.batch.segments import join_parts, split_at_keyframes

    src = tmp_path / "anime.mkv"
    font = _with_font(src)
    out = tmp_path / f"out{suffix}"
    with caplog.at_level(logging.WARNING):
        Engine.from_checkpoint(tiny_checkpoint, steps=1).restore_video(src, out, progress=False)
        parts = split_at_keyframes(src, tmp_path / "parts", 100.0)   # restore-batch's split path joins too
        join_parts(parts, src, tmp_path / f"joined{suffix}")
    want = [("subs-font.otf", "application/vnd.ms-opentype", font)] if suffix == ".mkv" else []
    assert _attachments(out) == want and _attachments(tmp_path / f"joined{suffix}") == want
    assert ("'subs-font.otf' (stream #1) is not kept" in caplog.text) == (suffix == ".mp4")
    assert "not kept: #1 (attachment)" not in caplog.text


def test_split_and_join_say_the_cover_picture_is_dropped(clip, tmp_path, caplog):
    """restore-batch's segmented path (split, restore the parts, join; no Ray needed here): the
    parts hold the main video, and the join says the MP4's cover picture is not kept."""
    import logging

    from irflow_engine.batch.segments import join_parts, split_at_keyframes

    src = _covered_mp4(clip, tmp_path)
    parts = split_at_keyframes(src, tmp_path / "parts", 100.0)
    with caplog.at_level(logging.WARNING):
        frames = join_parts(parts, src, tmp_path / "joined.mp4")
    assert frames == 10 and "the cover picture (stream #" in caplog.text
    facts, decoded = _video(tmp_path / "joined.mp4")
    assert facts["codec"] == "h264" and len(decoded) == 10


def test_main_video_is_never_a_cover_picture():
    from types import SimpleNamespace

    from irflow_engine.video.decode import main_video

    cover = SimpleNamespace(type="video", disposition=1024, index=0)
    film = SimpleNamespace(type="video", disposition=1, index=1)
    assert main_video(SimpleNamespace(streams=SimpleNamespace(video=[cover, film]))) is film
    with pytest.raises(VideoError, match="has no video stream .only a cover picture."):
        main_video(SimpleNamespace(streams=SimpleNamespace(video=[cover])), "x.mp4")
