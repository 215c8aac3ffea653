"""HDR / BT.2020 video written as an animated image is tone-mapped to sRGB (`video/tonemap.py`):
the transfer curves against their published reference points, the roll-off's shape, and a PQ and an
HLG clip of known light levels through `irflow restore` with the network replaced by the identity."""

import logging
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from irflow_engine.video import tonemap

av = pytest.importorskip("av")


def test_pq_and_hlg_reach_their_reference_levels():
    # ST 2084 codes of 100, 203 and 1000 cd/m² (BT.2408's table), and HLG's reference white (75 %).
    nits = tonemap.pq_to_nits(torch.tensor([0.0, 0.508078, 0.580690, 0.751827, 1.0]))
    np.testing.assert_allclose(nits.numpy(), [0, 100, 203, 1000, 10000], rtol=2e-4, atol=1e-6)
    grey = tonemap.hlg_to_nits(torch.full((1, 3, 1, 1), 0.75))
    np.testing.assert_allclose(grey.flatten().numpy(), [203] * 3, rtol=2e-3)


def test_roll_off_keeps_the_shadows_and_never_reaches_white():
    x = torch.linspace(0, 50, 50001, dtype=torch.float64)
    y = tonemap.roll_off(x)
    below = x <= tonemap.KNEE
    assert torch.equal(y[below], x[below])
    assert bool((y.diff() > 0).all()) and float(y.max()) < 1
    slope = y.diff() / x.diff()
    k = int(below.sum())
    # No kink: the slope is 1 on both sides of the knee (it then falls at 2 / (1 - KNEE) per unit:
    # 0.015 over these 1.5e-3).
    assert abs(float(slope[k - 2]) - float(slope[k])) < 0.02


def test_bt2020_primaries_map_to_srgb_white_and_gamut():
    colour = SimpleNamespace(color_trc=1, color_primaries=tonemap.BT2020_PRIMARIES)
    white = tonemap.to_srgb(torch.ones(1, 3, 1, 1), colour).flatten()
    np.testing.assert_allclose(white.numpy(), [1, 1, 1], atol=2e-3)   # BT.2087's rows sum to 1
    green = tonemap.to_srgb(torch.tensor([0.0, 1.0, 0.0]).view(1, 3, 1, 1), colour).flatten()
    np.testing.assert_allclose(green.numpy(), [0, 1, 0], atol=1e-6)   # clipped to sRGB's gamut


def _hdr_clip(path, codes, trc):
    """An FFV1 10-bit BT.2020 clip (tagged `trc`) of two frames of grey bands at the given R'G'B' codes."""
    w = 16 * len(codes)
    rgb = np.repeat(np.repeat(np.array(codes)[None, :, None], 16, axis=1), 3, axis=2)
    rgb = np.ascontiguousarray(np.repeat(rgb, 8, axis=0) * 65535).round().astype(np.uint16)
    colour = dict(dst_colorspace="BT2020", dst_color_range="MPEG")
    with av.open(str(path), "w") as c:
        s = c.add_stream("ffv1", rate=10)
        s.width, s.height, s.pix_fmt = w, 8, "yuv444p10le"
        cc = s.codec_context
        cc.color_trc, cc.color_primaries, cc.colorspace, cc.color_range = trc, 9, 9, 1
        for i in range(2):
            f = av.VideoFrame.from_ndarray(rgb, format="rgb48le").reformat(format="yuv444p10le", **colour)
            f.pts = i
            f.color_trc, f.color_primaries, f.colorspace, f.color_range = trc, 9, 9, 1
            c.mux(s.encode(f))
        c.mux(s.encode(None))


@pytest.mark.parametrize("trc, codes, expected", [
    # PQ: 0, 100, 203 and 1000 cd/m² -> black, sRGB of 100/203 (186), reference white 0.9 (243), 0.99 (254)
    (tonemap.PQ, [0.0, 0.508078, 0.580690, 0.751827], [0, 186.3, 243.4, 254.0]),
    # HLG: 75 % is reference white (243); 50 % is 12 % of it in the scene (137)
    (tonemap.HLG, [0.75, 0.5], [243.5, 136.9]),
])
def test_hdr_video_into_an_animation_is_tone_mapped(trc, codes, expected, tmp_path, tiny_checkpoint, caplog):
    """Grey bands of known light come out where the mapping puts them (within 10-bit YUV rounding);
    written as they were, the PQ bands were 130, 148 and 192 (dim and flat)."""
    from irflow_engine import Engine
    from irflow_engine.animation import read_animation

    _hdr_clip(tmp_path / "hdr.mkv", codes, trc)
    engine = Engine.from_checkpoint(tiny_checkpoint, steps=1)
    engine.restore_batch = lambda y, **_: y.clone()   # the network as the identity
    with caplog.at_level(logging.WARNING):
        engine.restore_video(tmp_path / "hdr.mkv", tmp_path / "out.png", progress=False)
    assert "HDR video is tone-mapped to SDR for the 8-bit sRGB .png" in caplog.text
    picture = read_animation(tmp_path / "out.png").frames[0]   # (the writer merges the equal frames)
    bands = np.stack([picture[:, 16 * k + 2:16 * k + 14] for k in range(len(codes))])
    np.testing.assert_allclose(bands.reshape(len(codes), -1).mean(axis=1), expected, atol=1.5)
    assert int(np.ptp(bands, axis=(1, 2, 3)).max()) <= 2   # grey stays grey, flat stays flat


def test_sdr_video_into_an_animation_is_not_mapped(tmp_path, tiny_checkpoint, caplog):
    from irflow_engine import Engine
    from irflow_engine.video.synth import write_noisy_pan

    write_noisy_pan(tmp_path / "sdr.mkv", size=(32, 24), frames=2, audio=False)
    with caplog.at_level(logging.WARNING):
        Engine.from_checkpoint(tiny_checkpoint, steps=1).restore_video(tmp_path / "sdr.mkv", tmp_path / "out.gif",
                                                                       progress=False)
    assert "tone-mapped" not in caplog.text and "converted to sRGB" not in caplog.text


@pytest.mark.parametrize("pix_fmt, warned", [("yuv420p", True), ("yuv420p10le", False)])
def test_hdr_video_into_8_bits_is_warned_about(pix_fmt, warned, tmp_path, tiny_checkpoint, caplog):
    """A 10-bit PQ video written at 8 bits (the user's --pix-fmt, or a codec without 10 bits) bands;
    a warning says so and names the 10-bit way. A video output keeps PQ codes (no tone mapping)."""
    from irflow_engine import Engine

    _hdr_clip(tmp_path / "hdr.mkv", [0.3, 0.5], tonemap.PQ)
    engine = Engine.from_checkpoint(tiny_checkpoint, steps=1)
    with caplog.at_level(logging.WARNING):
        engine.restore_video(tmp_path / "hdr.mkv", tmp_path / "out.mkv", progress=False, codec="ffv1",
                             pix_fmt=pix_fmt)
    message = "the output's ffv1 video (yuv420p) has 8 bits per sample, the input 10: HDR (PQ, HLG) video"
    assert (message in caplog.text) is warned
    with av.open(str(tmp_path / "out.mkv")) as c:
        assert c.streams.video[0].codec_context.color_trc == tonemap.PQ
