"""Raw frame pipes: a real ffmpeg on both sides, short final frames, readers that close early."""

import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from irflow_engine import Engine, pixfmt
from irflow_engine.cli import main
from irflow_engine.video import VideoError, raw_layout, run_raw_pipe

ROOT = Path(__file__).resolve().parents[1]


def _expected(engine, raw, fmt, batch):
    """What the pipe must write for `raw` (N frames in rawvideo layout): pixfmt -> engine -> pixfmt."""
    out = []
    for i in range(0, len(raw), batch):
        x = pixfmt.frame_to_tensor(raw[i:i + batch], fmt)
        out.append(pixfmt.tensor_to_frame(engine.restore_batch(x), fmt).numpy())
    return np.concatenate(out)


@pytest.fixture(scope="module")
def engine(tiny_checkpoint):
    return Engine.from_checkpoint(tiny_checkpoint, steps=1)


def test_ffmpeg_to_irflow_to_ffmpeg(tmp_path, tiny_checkpoint, engine):
    """ffmpeg decodes to yuv420p rawvideo | irflow restore - -o - | ffmpeg encodes losslessly (ffv1)."""
    ffmpeg = pytest.importorskip("imageio_ffmpeg").get_ffmpeg_exe()
    from irflow_engine.video.synth import write_noisy_pan

    clip = write_noisy_pan(tmp_path / "in.mp4", size=(64, 48), frames=7, audio=False).path
    out = tmp_path / "out.mkv"
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    producer = subprocess.Popen([ffmpeg, "-v", "error", "-i", str(clip), "-f", "rawvideo", "-pix_fmt", "yuv420p", "-"],
                                stdout=subprocess.PIPE)
    irflow = subprocess.Popen([sys.executable, "-m", "irflow_engine.cli", "restore", "-", "-o", "-", "--raw-size",
                               "64x48", "--pix-fmt", "yuv420p", "--model", str(tiny_checkpoint), "--steps", "1",
                               "--device", "cpu", "--max-batch", "3"],
                              stdin=producer.stdout, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    producer.stdout.close()
    consumer = subprocess.Popen([ffmpeg, "-v", "error", "-f", "rawvideo", "-pix_fmt", "yuv420p", "-s", "64x48",
                                 "-r", "25", "-i", "-", "-c:v", "ffv1", str(out)], stdin=irflow.stdout)
    irflow.stdout.close()
    err = irflow.stderr.read().decode()
    assert consumer.wait(60) == 0 and irflow.wait(60) == 0 and producer.wait(60) == 0, err
    assert "7 frames (64x48)" in err and "frame/s" in err          # summary and progress on stderr

    raw_in = subprocess.run([ffmpeg, "-v", "error", "-i", str(clip), "-f", "rawvideo", "-pix_fmt", "yuv420p", "-"],
                            check=True, capture_output=True).stdout
    raw_out = subprocess.run([ffmpeg, "-v", "error", "-i", str(out), "-f", "rawvideo", "-pix_fmt", "yuv420p", "-"],
                             check=True, capture_output=True).stdout
    frames_in = np.frombuffer(raw_in, np.uint8).reshape(7, 72, 64)
    np.testing.assert_array_equal(np.frombuffer(raw_out, np.uint8).reshape(7, 72, 64),
                                  _expected(engine, frames_in, "yuv420p", 3))


@pytest.mark.parametrize("fmt", ["rgb24", "yuv420p10le"])
def test_short_final_frame_is_dropped_with_a_message(engine, fmt):
    layout = raw_layout(20, 12, fmt)
    rng = np.random.default_rng(7)
    frames = pixfmt.empty_frame(fmt, 12, 20, batch=3, numpy=True)
    frames[...] = rng.integers(0, 1024 if frames.dtype == np.uint16 else 256, frames.shape)
    data = frames.tobytes() + frames[0].tobytes()[:100]              # 3 frames and a partial one
    sink = io.BytesIO()
    report = run_raw_pipe(engine, io.BytesIO(data), sink, layout, batch=2, progress=False)
    assert report.frames == 3 and report.ended == "short-frame" and report.short_bytes == 100
    assert "input ended inside frame 4 (100 of" in report.ending()
    got = np.frombuffer(sink.getvalue(), frames.dtype).reshape(frames.shape)
    np.testing.assert_array_equal(got, _expected(engine, frames, fmt, 2))


class _ClosingWriter(io.RawIOBase):
    """A reader that goes away after `frames` frames: writes then fail with EPIPE."""

    def __init__(self, allowed):
        self.allowed, self.writes = allowed, 0

    def writable(self):
        return True

    def write(self, b):
        if self.writes >= self.allowed:
            raise BrokenPipeError(32, "Broken pipe")
        self.writes += 1
        return len(b)


def test_a_closed_output_pipe_stops_cleanly(engine):
    layout = raw_layout(16, 16, "rgb24")
    data = np.random.default_rng(8).integers(0, 256, (50, 16, 16, 3), dtype=np.uint8).tobytes()
    report = run_raw_pipe(engine, io.BytesIO(data), _ClosingWriter(2), layout, batch=1, progress=False)
    assert report.ended == "output-closed" and report.frames == 2
    assert "closed by its reader after 2 frames" in report.ending()


def test_raw_pipe_option_errors(capsys, tiny_checkpoint):
    base = ["restore", "-", "--model", str(tiny_checkpoint)]
    cases = [(["-o", "-", "--pix-fmt", "rgb24"], "needs --raw-size"),
             (["-o", "out.mp4", "--raw-size", "8x8", "--pix-fmt", "rgb24"], "pass -o -"),
             (["-o", "-", "--raw-size", "7x8", "--pix-fmt", "yuv420p"], "even width and height"),
             (["-o", "-", "--raw-size", "8by8", "--pix-fmt", "rgb24"], "like 1280x720"),
             (["-o", "-", "--raw-size", "8x8", "--pix-fmt", "yuv444p"], "raw pipes take")]
    for extra, message in cases:
        assert main(base + extra) == 1
        assert message in capsys.readouterr().err
    with pytest.raises(VideoError):
        raw_layout(8, 8, "rgb24", matrix="bt2021")


def test_rgb48le_pipe_equals_numpy(engine):
    """16-bit R'G'B' frames (all codes, including those above 32767): each written code is
    round(clamp(engine(code / 65535)) · 65535), computed here with numpy in float64, to ±1 code."""
    import torch

    layout = raw_layout(20, 12, "rgb48le")
    frames = np.random.default_rng(9).integers(0, 65536, (3, 12, 20, 3), dtype=np.uint16)
    frames[0, 0, 0] = (0, 32767, 65535)
    sink = io.BytesIO()
    report = run_raw_pipe(engine, io.BytesIO(frames.tobytes()), sink, layout, batch=2, progress=False)
    assert report.frames == 3 and report.frame_bytes == 12 * 20 * 6
    x = torch.from_numpy(frames.astype(np.float64) / 65535).permute(0, 3, 1, 2).float()
    assert np.abs(x.permute(0, 2, 3, 1).double().numpy() * 65535 - frames).max() < 0.01   # exact inputs
    expected = []
    for i in range(0, 3, 2):
        y = engine.restore_batch(x[i:i + 2]).permute(0, 2, 3, 1).double().numpy()
        expected.append(np.round(np.clip(y, 0, 1) * 65535).astype(np.uint16))
    got = np.frombuffer(sink.getvalue(), np.uint16).reshape(frames.shape).astype(int)
    diff = np.abs(got - np.concatenate(expected))
    # The layout rounds in float32 (as pixfmt does): a value within ~0.004 of a half may go either way.
    assert diff.max() <= 1 and (diff > 0).mean() < 0.005


def test_rgb48_layout_round_trip_and_poisoned_output():
    import torch

    from irflow_engine.video.layouts import RGB48Layout

    layout = RGB48Layout(5, 7)
    codes = torch.from_numpy(np.random.default_rng(10).integers(0, 65536, (2, 5, 7, 3), dtype=np.uint16).view(np.int16))
    x = layout.to_tensor(codes)
    assert x.shape == (2, 3, 5, 7) and x.dtype == torch.float32 and 0 <= x.min() and x.max() <= 1
    out = layout.empty(2).fill_(-12345)                       # poisoned
    torch.testing.assert_close(layout.from_tensor(x, out), codes, rtol=0, atol=0)
    x[0, 1, 2, 3], x[1, 0, 0, 0], x[1, 2, 4, 6] = float("nan"), -0.5, 7.0
    back = layout.from_tensor(x, layout.empty(2).fill_(-12345)).numpy().view(np.uint16)
    assert (back[0, 2, 3, 1], back[1, 0, 0, 0], back[1, 4, 6, 2]) == (0, 0, 65535)   # NaN -> 0, clamped
