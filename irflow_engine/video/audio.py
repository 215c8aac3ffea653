"""Audio in the output: copied as it is where the container holds it, else re-encoded.

A restore never touches the sound, so the input's audio packets are copied unchanged. When the
output container cannot hold the input's audio codec (FLAC or Opus into .mov, Opus into .avi, AAC
into .webm, PCM into .ts), the stream is decoded and re-encoded with the container's usual codec
(AAC for MP4/MOV, Opus for WebM, MP2 for MPEG-TS/PS), at `BIT_RATE_PER_CHANNEL` (lossy codecs), and
a warning names the output that would keep it unchanged. Timestamps follow the decoded frames, so
the sound stays in sync, start offset included. PCM without a channel order (an AVI's, a WAV's) is
copied with the default order for its channel count (`default_layout`), which MP4 requires.

AVI stores no start time or encoder delay for audio (`muxers.UNTIMED_MUXERS`): its sound plays
from the video's first frame, sample by sample. Audio for an AVI is re-encoded as PCM (no delay), and
also when it would be copied but does not start with the video: silence leads it, or its head
before the video's start is cut.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import List, Optional

import numpy as np

from .muxers import UNTIMED_MUXERS, audio_fits, audio_rates, codec_name, copy_tags, muxer_takes

log = logging.getLogger(__name__)

# FFmpeg's default layout for a channel count (av_channel_layout_default).
DEFAULT_LAYOUTS = {1: "mono", 2: "stereo", 3: "2.1", 4: "quad", 5: "5.0", 6: "5.1", 7: "6.1", 8: "7.1"}
# The re-encoding for `UNTIMED_MUXERS` (AVI): PCM has no encoder delay, which they cannot store either.
UNTIMED_AUDIO_CODEC = "pcm_s16le"
# Codecs preferred to a container's default: AAC in MPEG-TS (HLS, DVB, ATSC 3.0 carry it; FFmpeg's
# default there, MP2, is the older broadcast codec and sounds worse at the same rate).
PREFERRED_AUDIO_CODECS = {"mpegts": "aac"}
# Sample formats of deep lossless sources (24-bit FLAC/ALAC/PCM decode to s32): their PCM
# re-encoding is 24-bit, not 16 (`choose_encoding`).
DEEP_SAMPLE_FORMATS = ("s32", "s32p", "s64", "s64p")
# Codecs tried after the container's own default, in order.
FALLBACK_CODECS = ("aac", "opus", "mp3", "ac3", "mp2", "flac", "pcm_s16le")
# Bit rate of a re-encoding, per channel, and at most per stream (the codecs' limits).
BIT_RATE_PER_CHANNEL = {"aac": 96_000, "opus": 64_000, "mp3": 96_000, "ac3": 96_000, "eac3": 96_000, "mp2": 96_000,
                        "vorbis": 80_000}
MAX_BIT_RATE = {"mp3": 320_000, "mp2": 384_000, "ac3": 640_000}


def default_layout(layout) -> Optional[str]:
    """The named layout for a layout of unspecified channel order ("2 channels" -> "stereo": an AVI's
    or a WAV's PCM without a channel mask), else None. MP4 cannot store an unspecified order."""
    n = layout.nb_channels
    if layout.name == f"{n} channels" and n in DEFAULT_LAYOUTS:
        return DEFAULT_LAYOUTS[n]
    return None


@dataclass(frozen=True)
class AudioEncoding:
    """How one audio stream is re-encoded."""

    encoder: str                 # FFmpeg encoder name
    codec: str                   # its codec name
    rate: int
    layout: str
    bit_rate: Optional[int]      # None: lossless


def start_offset(container, stream, video_start: float) -> float:
    """Seconds an audio `stream` starts after the video (negative: before) where the output `container`
    cannot store it (`UNTIMED_MUXERS`) and it is over a millisecond; else 0."""
    if stream.type != "audio" or container.format.name not in UNTIMED_MUXERS or stream.start_time is None:
        return 0.0
    offset = float(stream.start_time * stream.time_base) - video_start
    return offset if abs(offset) > 1e-3 else 0.0


def _encoder(name: str):
    import av

    try:
        codec = av.codec.Codec(name, "w")
    except (av.codec.codec.UnknownCodecError, ValueError):
        return None
    return None if codec.type != "audio" or codec.experimental else codec


def _rate(codec, rate: int, allowed=None) -> int:
    """`rate`, or the nearest higher one that the encoder (and the container: `allowed`) takes."""
    rates = [r for r in (codec.audio_rates or allowed or ()) if allowed is None or r in allowed]
    if not rates or rate in rates:
        return rate
    higher = [r for r in rates if r >= rate]
    return min(higher) if higher else max(rates)


def _opens(codec, rate: int, layout: str, bit_rate: Optional[int]) -> bool:
    """Whether the encoder opens with these settings (channel counts and layouts differ per codec)."""
    import av

    ctx = av.CodecContext.create(codec.name, "w")
    try:
        ctx.sample_rate, ctx.layout = rate, layout
        ctx.format = codec.audio_formats[0] if codec.audio_formats else "s16"
        if bit_rate:
            ctx.bit_rate = bit_rate
        ctx.open()
        return True
    except (av.FFmpegError, ValueError):
        return False


def choose_encoding(container, stream) -> Optional[AudioEncoding]:
    """The first encoder, the output container's default codec first, that the container takes and that
    opens for the stream's rate and channels (downmixed to stereo where only that opens); None if none.
    16-bit PCM becomes 24-bit for a deep lossless source (24-bit FLAC into an MXF or AVI)."""
    cc = stream.codec_context
    layout = default_layout(cc.layout) or cc.layout.name
    untimed = UNTIMED_AUDIO_CODEC if container.format.name in UNTIMED_MUXERS else None
    preferred = PREFERRED_AUDIO_CODECS.get(container.format.name)
    names = (untimed, preferred, container.default_audio_codec) + FALLBACK_CODECS
    if cc.format is not None and (cc.format.name in DEEP_SAMPLE_FORMATS or cc.name.startswith("pcm_f")):
        names = tuple(n for pcm in names for n in (("pcm_s24le", pcm) if pcm == "pcm_s16le" else (pcm,)))
    tried = dict.fromkeys(names)
    for name in tried:
        codec = _encoder(name) if name else None
        if codec is None or not muxer_takes(container, codec.canonical_name) \
                or not audio_fits(container, codec.canonical_name):
            continue
        rate = _rate(codec, cc.sample_rate, audio_rates(container))
        for out_layout in dict.fromkeys((layout, "stereo")):
            try:
                bit_rate = _bit_rate(codec.canonical_name, out_layout)
            except ValueError:   # a layout FFmpeg cannot name again
                continue
            if _opens(codec, rate, out_layout, bit_rate):
                return AudioEncoding(codec.name, codec.canonical_name, rate, out_layout, bit_rate)
    return None


def _bit_rate(codec: str, layout: str) -> Optional[int]:
    import av

    per = BIT_RATE_PER_CHANNEL.get(codec)
    if per is None:
        return None
    total = per * av.AudioLayout(layout).nb_channels
    return min(total, MAX_BIT_RATE.get(codec, total))


class AudioReencoder:
    """Decodes one input audio stream's packets and encodes them into `out`, an output stream.

    `video_start`: the input video's start time (s). In an `UNTIMED_MUXERS` output, audio that
    starts later than the video is led by that much silence, and audio before it is cut."""

    def __init__(self, container, stream, encoding: AudioEncoding, video_start: float = 0.0):
        self.decoder, self.index, self.damaged = stream.codec_context, stream.index, 0
        self.align_to = video_start if container.format.name in UNTIMED_MUXERS else None
        self.trim = 0   # samples still to cut from the start
        out = container.add_stream(encoding.encoder, rate=encoding.rate)
        out.layout = encoding.layout
        if encoding.bit_rate:
            out.bit_rate = encoding.bit_rate
        copy_tags(stream, out)
        self.out = out

    def encode(self, packet) -> List:
        """The output packets that `packet` (None: flush) completes. A packet that does not decode (a
        damaged one) is skipped, with one warning per stream."""
        import av

        try:
            frames = list(self.decoder.decode(packet))
        except av.FFmpegError as e:
            if not self.damaged:
                log.warning("audio stream #%d: a packet that does not decode is skipped (%s)", self.index, e)
            self.damaged += 1
            frames = []
        out = []
        for frame in frames:
            for aligned in self._aligned(frame):
                out += self.out.encode(aligned)
        if packet is None:
            out += self.out.encode(None)
        return out

    def _aligned(self, frame) -> List:
        """`frame` as an `UNTIMED_MUXERS` output must get it: the first one led by the silence
        between the video's start and it, or the samples before the video's start cut."""
        import av

        if self.align_to is not None and frame.pts is not None and frame.time_base is not None:
            start, self.align_to = self.align_to, None
            gap = int(round((float(frame.pts * frame.time_base) - start) * frame.sample_rate))
            if gap > 0:
                silence = av.AudioFrame(format=frame.format.name, layout=frame.layout.name, samples=gap)
                for plane in silence.planes:
                    plane.update(bytes(plane.buffer_size))
                silence.sample_rate, silence.time_base = frame.sample_rate, frame.time_base
                silence.pts = frame.pts - int(round(gap / frame.sample_rate / frame.time_base))
                return [silence, frame]
            self.trim = -gap
        if not self.trim:
            return [frame]
        if frame.samples <= self.trim:
            self.trim -= frame.samples
            return []
        cut, self.trim = self.trim, 0
        samples = frame.to_ndarray()
        tail = samples[:, cut:] if frame.format.is_planar else samples[:, cut * frame.layout.nb_channels:]
        rest = av.AudioFrame.from_ndarray(np.ascontiguousarray(tail), format=frame.format.name,
                                          layout=frame.layout.name)
        rest.sample_rate, rest.time_base = frame.sample_rate, frame.time_base
        rest.pts = frame.pts + int(round(cut / frame.sample_rate / frame.time_base))
        return [rest]


def describe(stream, encoding: AudioEncoding) -> str:
    """'pcm_s16le -> aac (192 kb/s)' for a warning, with a resampling or downmix."""
    cc = stream.codec_context
    kind = "PCM" if encoding.codec.startswith("pcm_") else "lossless"
    parts = [f"{encoding.bit_rate // 1000} kb/s" if encoding.bit_rate else kind]
    if encoding.rate != cc.sample_rate:
        parts.append(f"resampled to {encoding.rate} Hz")
    if encoding.layout != (default_layout(cc.layout) or cc.layout.name):
        parts.append(f"downmixed to {encoding.layout}")
    return f"{codec_name(stream)} -> {encoding.codec} ({', '.join(parts)})"
