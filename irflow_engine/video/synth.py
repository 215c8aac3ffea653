"""Small synthetic clips for tests, examples and benchmarks: a pan across a real photograph with
fresh Gaussian noise in every frame, and a sine-wave audio track; an H.264 clip with closed captions;
an HEVC clip with HDR10+ metadata.

The photograph is one of scikit-image's (the test/train extras install it); `coffee` is held out
of the bundled models' training. Frames are converted to YUV with `irflow_engine.pixfmt` (so the
clip's codes follow its colour tags exactly) and encoded with PyAV.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import List, Optional, Tuple

import numpy as np
import torch

from .. import pixfmt
from ..degrade import gaussian_noise
from .avframes import frame_from_slot
from .formats import MATRIX_TAGS, RANGE_TAGS


@dataclass
class Clip:
    """What was written: the clean and the noisy frames (float32 H×W×3 in [0, 1], before encoding)."""

    path: Path
    clean: List[np.ndarray]
    noisy: List[np.ndarray]
    rate: Fraction


def pan_frames(size: Tuple[int, int], frames: int, photo: str = "coffee", step: Tuple[int, int] = (3, 1)) -> List[np.ndarray]:
    """`frames` crops of size (W, H) moving `step` (dx, dy) pixels per frame across the photograph."""
    from ..datasets import skimage_image

    image = skimage_image(photo).astype(np.float32) / 255.0
    w, h = size
    while image.shape[0] < h + frames * step[1] or image.shape[1] < w + frames * step[0]:
        image = np.concatenate([image, image[::-1]], axis=0)   # mirror-tile for large sizes
        image = np.concatenate([image, image[:, ::-1]], axis=1)
    return [np.ascontiguousarray(image[i * step[1]:i * step[1] + h, i * step[0]:i * step[0] + w]) for i in range(frames)]


def write_noisy_pan(path, size: Tuple[int, int] = (96, 64), frames: int = 8, rate=25, sigma: float = 25.0,
                    seed: int = 0, codec: str = "libx264", pix_fmt: str = "yuv420p", matrix: str = "bt709",
                    yuv_range: str = "limited", audio: bool = True, options: Optional[dict] = None,
                    photo: str = "coffee") -> Clip:
    """Write a clip of `frames` W×H frames (noise σ in 0–255 units) with a 440 Hz sine track."""
    import av

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rate = Fraction(rate).limit_denominator(1001)
    rng = np.random.default_rng(seed)
    clean = pan_frames(size, frames, photo)
    noisy = [gaussian_noise(f, sigma, rng) for f in clean]
    av_fmt = {"p010": "p010le"}.get(pix_fmt, pix_fmt)
    pf = {"p010le": "p010"}.get(pix_fmt, pix_fmt)
    with av.open(str(path), mode="w") as out:
        vs = out.add_stream(codec, rate=rate, options=dict(options or {}))
        vs.width, vs.height, vs.pix_fmt = size[0], size[1], av_fmt
        yuv = pixfmt.FORMATS[pf].yuv
        tags = dict(colorspace=MATRIX_TAGS[matrix] if yuv else 0, color_range=RANGE_TAGS[yuv_range] if yuv else 2)
        for k, v in tags.items():
            setattr(vs.codec_context, k, v)
        streams = [vs]
        if audio:
            sr = 48000
            aus = out.add_stream("aac", rate=sr)
            aus.layout = "mono"
            streams.append(aus)
        for i, rgb in enumerate(noisy):
            x = torch.from_numpy(rgb).permute(2, 0, 1).contiguous()
            slot = pixfmt.tensor_to_frame(x, pf, matrix=matrix, range=yuv_range).numpy()
            frame = frame_from_slot(slot, av_fmt, size[0], size[1])
            frame.pts, frame.time_base = i, 1 / rate
            for k, v in tags.items():
                setattr(frame, k, v)
            out.mux(vs.encode(frame))
        out.mux(vs.encode(None))
        if audio:
            n = int(round(sr * frames / rate))
            t = np.arange(n) / sr
            wave = (0.25 * np.sin(2 * np.pi * 440.0 * t)).astype(np.float32)[None]
            for k in range(0, n, 1024):
                af = av.AudioFrame.from_ndarray(np.ascontiguousarray(wave[:, k:k + 1024]), format="fltp", layout="mono")
                af.sample_rate, af.pts, af.time_base = sr, k, Fraction(1, sr)
                out.mux(aus.encode(af))
            out.mux(aus.encode(None))
    return Clip(path, clean, noisy, rate)


def a53_sei(cc_pairs: List[Tuple[int, int]]) -> bytes:
    """An H.264 SEI NAL unit (Annex B) holding CEA-608 caption byte pairs for field 1 as ATSC A/53
    carries them: registered user data (ITU-T T.35, country 0xB5, provider 0x0031, "GA94", type 3)."""
    cc_data = bytes([0x40 | len(cc_pairs), 0xFF]) + b"".join(bytes([0xFC, a, b]) for a, b in cc_pairs) + b"\xFF"
    payload = b"\xB5\x00\x31GA94\x03" + cc_data
    if len(payload) > 255 or b"\x00\x00" in payload:
        raise ValueError("caption pairs too many, or needing emulation prevention")
    return b"\x00\x00\x00\x01" + bytes([0x06, 0x04, len(payload)]) + payload + b"\x80"


def _with_nal(packet, nal: bytes, is_slice):
    """A copy of the Annex B `packet` with `nal` inserted before its first slice NAL unit (the first
    whose header byte `is_slice` accepts), on the same stream and times."""
    import av

    data = bytes(packet)
    at = next(i for i in range(len(data) - 3) if data[i:i + 3] == b"\x00\x00\x01" and is_slice(data[i + 3]))
    at -= 1 if at and data[at - 1] == 0 else 0   # a four-byte start code
    out = av.Packet(data[:at] + nal + data[at:])
    out.pts, out.dts, out.duration = packet.pts, packet.dts, packet.duration
    out.time_base, out.is_keyframe, out.stream = packet.time_base, packet.is_keyframe, packet.stream
    return out


def write_captioned_clip(path, captions: List[List[Tuple[int, int]]], size: Tuple[int, int] = (64, 48),
                         rate=25) -> None:
    """An H.264 clip (pictures of random 8×8 blocks, no B-frames; .ts, .mkv, .mp4, ...) of one frame per entry of
    `captions`, each access unit carrying its CEA-608 byte pairs in an A/53 SEI, as a broadcast
    recording does (an empty entry: a picture without captions)."""
    import av

    w, h = size
    rate = Fraction(rate)
    with av.open(str(path), "w") as out:
        vs = out.add_stream("libx264", rate=rate, options={"bf": "0"})
        vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
        packets = []
        rng = np.random.default_rng(len(captions))
        for i in range(len(captions)):
            blocks = rng.integers(0, 256, (h // 8 + 1, w // 8 + 1, 3), dtype=np.uint8)
            rgb = np.ascontiguousarray(blocks.repeat(8, 0).repeat(8, 1)[:h, :w])
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
            frame.pts = i
            packets += vs.encode(frame)
        packets += vs.encode(None)
        for packet in packets:   # no B-frames: the i-th packet is the i-th frame
            pairs = captions[round(packet.pts * packet.time_base * rate)]
            out.mux(_with_nal(packet, a53_sei(pairs) if pairs else b"", lambda header: header & 0x1F in (1, 5)))


def _bits(fields: List[Tuple[int, int]]) -> bytes:
    """(value, width) fields written most significant bit first, zero-padded to whole bytes."""
    text = "".join(format(value, f"0{width}b") for value, width in fields)
    text += "0" * (-len(text) % 8)
    return bytes(int(text[i:i + 8], 2) for i in range(0, len(text), 8))


def hdr10plus_t35(target_nits: int = 400) -> bytes:
    """An ITU-T T.35 message of SMPTE ST 2094-40 (HDR10+) metadata as CTA-861 lays it out: one window,
    a target display of `target_nits`, a maxRGB distribution of nine percentiles, no tone curve."""
    percentiles = [(1, 10), (5, 100), (10, 400), (25, 1000), (50, 2000), (75, 4000), (90, 6000), (95, 7000),
                   (99, 9000)]
    fields = [(1, 8), (1, 2), (target_nits, 27), (0, 1)]                 # version, windows, target, no peak map
    fields += [(9000, 17)] * 3 + [(1500, 17), (len(percentiles), 4)]      # maxSCL (R, G, B), average maxRGB
    fields += [f for pct, value in percentiles for f in ((pct, 7), (value, 17))]
    fields += [(2, 10), (0, 1), (0, 1), (0, 1)]   # bright pixels; no mastering peak map, tone curve, saturation
    return b"\xB5\x00\x3C\x00\x01\x04" + _bits(fields)   # US, Samsung's provider code, ST 2094-40, app 4


def hevc_prefix_sei(payload_type: int, payload: bytes) -> bytes:
    """An HEVC prefix SEI NAL unit (Annex B) holding one message, with emulation prevention."""
    size = payload_type.to_bytes(1, "big") + bytes([255] * (len(payload) // 255) + [len(payload) % 255])
    rbsp = size + payload + b"\x80"
    escaped, zeros = bytearray(), 0
    for byte in rbsp:
        if zeros >= 2 and byte <= 3:
            escaped.append(3)
            zeros = 0
        escaped.append(byte)
        zeros = zeros + 1 if byte == 0 else 0
    return b"\x00\x00\x00\x01\x4E\x01" + bytes(escaped)


def write_hdr10plus_clip(path, frames: int = 2, size: Tuple[int, int] = (64, 64)) -> None:
    """A 10-bit HEVC PQ clip (pictures of random blocks; .ts) whose every picture carries HDR10+ metadata
    (`hdr10plus_t35`) in a prefix SEI before its first slice, as an HDR10+ camera or master does."""
    import av

    w, h = size
    sei = hevc_prefix_sei(4, hdr10plus_t35())   # 4: user data registered by ITU-T T.35
    with av.open(str(path), "w") as out:
        vs = out.add_stream("libx265", rate=25, options={"x265-params": "log-level=error"})
        vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p10le"
        cc = vs.codec_context
        cc.color_trc, cc.color_primaries, cc.colorspace = 16, 9, 9   # PQ, BT.2020
        rng = np.random.default_rng(frames)
        packets = []
        for i in range(frames):
            rgb = rng.integers(0, 256, (h // 8, w // 8, 3), dtype=np.uint8).repeat(8, 0).repeat(8, 1)
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24").reformat(format="yuv420p10le")
            frame.pts = i
            packets += vs.encode(frame)
        packets += vs.encode(None)
        for packet in packets:
            out.mux(_with_nal(packet, sei, lambda header: (header >> 1) & 0x3F < 32))
