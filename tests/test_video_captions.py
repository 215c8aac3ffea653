"""Closed captions (CEA-608/708 as ATSC A/53 carries them in the video stream) survive a restore
where the output's encoder writes them (H.264, MPEG-2), frame by frame; elsewhere a warning says
they are lost. Clips: `synth.write_captioned_clip` (x264 with an A/53 SEI in every picture)."""

import logging

import numpy as np
import pytest

av = pytest.importorskip("av")

from irflow_engine import Engine  # noqa: E402
from irflow_engine.video.synth import write_captioned_clip  # noqa: E402

# CEA-608 byte pairs for field 1: a control code pair, then text ("E", "O"), then padding.
CAPTIONS = [[(0x94, 0x20), (0x94, 0x2C)], [(0xC8, 0x45)], [(0xCC, 0x4F)], [(0x80, 0x80)]] * 3


def _expected():
    return [b"".join(bytes([0xFC, a, b]) for a, b in pairs) for pairs in CAPTIONS]


def _decoded(path):
    """(A/53 caption bytes, rgb24 picture) of each frame, in display order."""
    with av.open(str(path)) as c:
        frames = list(c.decode(video=0))
    kind = av.sidedata.sidedata.Type.A53_CC
    return ([bytes(f.side_data.get(kind) or b"") for f in frames],
            [f.to_ndarray(format="rgb24").astype(np.float64) for f in frames])


@pytest.mark.parametrize("suffix", [".ts", ".mp4", ".mkv"])
def test_captions_are_kept_frame_by_frame(suffix, tmp_path, tiny_checkpoint, caplog):
    """Each output frame carries its input frame's captions (x264 with B-frames reorders them, the
    batches of 5 split them), and its picture is the restored one, not the 2×2 frame that carried
    the captions."""
    src, dst = tmp_path / "news.ts", tmp_path / f"out{suffix}"
    write_captioned_clip(src, CAPTIONS)
    with caplog.at_level(logging.WARNING):
        Engine.from_checkpoint(tiny_checkpoint, steps=1).restore_video(src, dst, progress=False, batch=5)
    assert "captions" not in caplog.text
    captions, pictures = _decoded(dst)
    assert captions == _expected()
    engine = Engine.from_checkpoint(tiny_checkpoint, steps=1)
    for picture, source in zip(pictures, _decoded(src)[1]):
        expected = engine.restore(source.astype(np.uint8)).astype(np.float64)
        assert np.abs(picture - expected).mean() < 10   # 4:2:0 and crf 18 (a wrong frame is ~60 away)
        assert np.abs(picture - picture.mean()).mean() > 30   # random blocks, not an upscaled 2×2 carrier


def test_mpeg2_keeps_captions_and_other_codecs_say_they_drop_them(tmp_path, tiny_checkpoint, caplog):
    """H.264 -> MPEG-2 (a DVD or broadcast encode) keeps the captions, and an MPEG-2 input keeps them
    in its own codec; HEVC has no captions here, which a warning says."""
    engine = Engine.from_checkpoint(tiny_checkpoint, steps=1)
    write_captioned_clip(tmp_path / "news.ts", CAPTIONS)
    engine.restore_video(tmp_path / "news.ts", tmp_path / "mpeg2.ts", progress=False, codec="mpeg2video")
    assert _decoded(tmp_path / "mpeg2.ts")[0] == _expected()
    engine.restore_video(tmp_path / "mpeg2.ts", tmp_path / "again.mpg", progress=False)
    with av.open(str(tmp_path / "again.mpg")) as c:
        assert c.streams.video[0].codec_context.name == "mpeg2video"
    assert _decoded(tmp_path / "again.mpg")[0] == _expected()
    with caplog.at_level(logging.WARNING):
        engine.restore_video(tmp_path / "news.ts", tmp_path / "hevc.mkv", progress=False, codec="libx265")
    assert "the closed captions (CEA-608/708 in the video stream) are not kept: the output's libx265" in caplog.text
    assert set(_decoded(tmp_path / "hevc.mkv")[0]) == {b""}


def test_captions_that_begin_late_are_kept_or_warned_about(tmp_path, tiny_checkpoint, caplog):
    """A recording whose captions begin after its first frames (an advert, then the programme) keeps
    them in H.264, uncaptioned frames staying uncaptioned; HEVC drops them and says from which frame."""
    late = [[]] * 4 + CAPTIONS[:6]
    src = tmp_path / "late.ts"
    write_captioned_clip(src, late)
    engine = Engine.from_checkpoint(tiny_checkpoint, steps=1)
    with caplog.at_level(logging.WARNING):
        engine.restore_video(src, tmp_path / "h264.mp4", progress=False, batch=3)
    assert "captions" not in caplog.text
    assert _decoded(tmp_path / "h264.mp4")[0] == [b""] * 4 + _expected()[:6]
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        engine.restore_video(src, tmp_path / "hevc.mkv", progress=False, codec="libx265")
    assert ("the closed captions (CEA-608/708 in the video stream) (from frame 4 on) are not kept: "
            "the output's libx265") in caplog.text
