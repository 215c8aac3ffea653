"""Reading a video file with PyAV: what it holds (`VideoInfo`) and its frames, in batches.

The first video stream is decoded with FFmpeg's frame/slice threads; its frames are copied into
batch buffers in the rawvideo layout of the plan's work format (a frame whose size or format
changed midway is scaled to the start's first). Audio, subtitle and data packets are demuxed
alongside and handed on untouched, attached to the batch they arrived with, so the muxer can
interleave them with the re-encoded video. At the end, frames that do not span the length the
header announces are an error (`TruncatedVideoError`). An alpha plane, when asked for, is read
from each frame into the batch beside it (`alpha.py`; WebM's VP8/VP9 alpha through libvpx's decoder),
and closed captions ride on a small copy of each frame (`captions.py`).
"""

from __future__ import annotations

import logging
import struct
import threading
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional

import numpy as np
import torch

from .alpha import alpha_decoder, alpha_dtype, read_alpha
from .avframes import copy_to_slot
from .captions import carrier, has_captions
from .errors import TruncatedVideoError, VideoError
from .formats import Colour, FormatPlan, colour_of, describe_conversion, plan_format
from .hdr import HdrMetadata, dynamic_metadata
from .hdr import from_frame as hdr_from_frame
from .layouts import layout_for
from .pipeline import StageClock

log = logging.getLogger(__name__)

# A time base whose reciprocal is above this (fps) is a clock, not a frame rate (Matroska's 1/1000).
MAX_TIME_BASE_RATE = 240
COPIED_TYPES = ("audio", "subtitle", "attachment")   # attachments: Matroska's fonts for styled subtitles
ATTACHED_PIC = 1024   # FFmpeg's AV_DISPOSITION_ATTACHED_PIC: a cover image stored as a one-packet video stream
# Video stream tags that describe the old encode (the muxer writes its own) and are not carried over:
# Matroska's statistics (BPS, DURATION, NUMBER_OF_FRAMES, ... with a language suffix), the encoder,
# and old FFmpeg's "rotate" (the display rotation is written as side data instead).
# Matroska's alpha_mode is written by the muxer from the output's pixel format.
STALE_TAGS = ("encoder", "duration", "bps", "number_of_frames", "number_of_bytes", "vendor_id", "_statistics",
              "rotate", "alpha_mode")


def kept_tags(stream, container) -> Dict[str, str]:
    """The video stream's tags worth keeping (language, title, creation time, start timecode, ...);
    a timecode that only a QuickTime timecode (tmcd) data track holds is taken from that track, so
    that the muxer writes a new one."""
    tags = {k: v for k, v in stream.metadata.items() if not k.lower().split("-")[0].startswith(STALE_TAGS)}
    if "timecode" not in tags:
        for other in container.streams:
            if other.type == "data" and other.metadata.get("timecode"):
                tags["timecode"] = other.metadata["timecode"]
                break
    return tags


def is_cover_art(stream) -> bool:
    """A video stream that holds an album/cover picture (copied as it is, never restored)."""
    flags = getattr(stream, "disposition", 0) or 0
    flags = getattr(flags, "value", flags)   # PyAV < 16 gives an enum.Flag, which int() refuses
    return stream.type == "video" and bool(int(flags) & ATTACHED_PIC)


def main_video(container, path="input"):
    """The video stream to restore: the first one that is not a cover picture."""
    videos = [s for s in container.streams.video if not is_cover_art(s)]
    if not videos:
        cover = " (only a cover picture)" if container.streams.video else ""
        raise VideoError(f"{path} has no video stream{cover}")
    return videos[0]


def is_timecode_track(stream) -> bool:
    """A data stream that only carries a start timecode (rewritten from the video's tag)."""
    return stream.type == "data" and bool(stream.metadata.get("timecode"))


# AVDISCARD_ALL: a stream its demuxer itself skips (MP4's chapter text track; the chapters are
# copied as chapters).
DISCARD_ALL = 48


def is_discarded(stream) -> bool:
    """A stream the demuxer marks as not to be read (an MP4's chapter track)."""
    try:
        return int(getattr(stream, "discard", 0) or 0) >= DISCARD_ALL
    except (TypeError, ValueError):
        return False


def is_copyable_data(stream) -> bool:
    """A data stream whose codec FFmpeg names (KLV metadata, timed ID3): copied where the output's
    muxer stores that codec (`muxers.muxer_takes`). Codec-less ones (GoPro's GPMF) cannot be muxed
    through PyAV; a timecode track is rewritten from the video's tag instead."""
    return (stream.type == "data" and not is_timecode_track(stream) and not is_discarded(stream)
            and bool(getattr(stream, "name", None)))


def tag_seconds(text: Optional[str]) -> Optional[float]:
    """Seconds in a Matroska DURATION tag ("01:02:03.500000000"), or None."""
    try:
        h, m, sec = (text or "").split(":")
        return int(h) * 3600 + int(m) * 60 + float(sec)
    except ValueError:
        return None


@dataclass(frozen=True)
class VideoInfo:
    """What the output should keep of the input's video stream."""

    path: Path
    width: int
    height: int
    codec: str
    rate: Optional[Fraction]
    time_base: Fraction
    frames: Optional[int]        # announced by the container (exact for MP4/MOV), else estimated
    frames_exact: bool
    duration: Optional[float]    # seconds
    bit_rate: int
    plan: FormatPlan
    colour: Colour
    rotation: float = 0.0        # display rotation, degrees counter-clockwise (phone videos: 90, 270)
    tags: Dict[str, str] = field(default_factory=dict, compare=False)   # the video stream's, see kept_tags
    hdr: Optional[HdrMetadata] = field(default=None, compare=False)     # mastering display, light levels
    profile: Optional[str] = None   # the decoder's name of the stream's profile ("DNXHR HQ", "4444", "High")
    start: float = 0.0              # seconds: the stream's start time (where its first frame is shown)
    captions: bool = False          # its first frames carry closed captions (A/53 CEA-608/708)
    dynamic_hdr: Optional[str] = None   # the per-scene HDR metadata its first frame carries (not kept)

    @property
    def layout(self):
        """The layout of decoded batches (`layouts.layout_for`)."""
        return layout_for(self.plan.av_work, self.height, self.width, self.colour.matrix, self.colour.range)


@dataclass
class DecodedBatch:
    """`n` frames in `raw[:n]`, their timestamps, and the packets of copied streams demuxed meanwhile;
    `alpha[:n]` their alpha planes (n × height × width, the plan's `alpha_bits`) and `carriers[:n]`
    2×2 copies of the decoded frames holding their side data (closed captions), when asked for."""

    raw: Optional[torch.Tensor]
    n: int
    pts: List[int]
    durations: List[int]
    packets: list = field(default_factory=list)
    alpha: Optional[np.ndarray] = None
    carriers: Optional[list] = None


def open_input(path):
    """Open a media file with PyAV; a clear `VideoError` for missing, unreadable or corrupt files."""
    import av

    path = Path(path)
    if not path.exists():
        raise VideoError(f"input {path} does not exist")
    if path.is_dir():
        raise VideoError(f"input {path} is a folder, not a video")
    try:
        return av.open(str(path), mode="r")
    except av.FFmpegError as e:
        raise VideoError(f"cannot read {path} as a video: {e.strerror or e} (not a video, truncated or corrupt?)") from None


@dataclass(frozen=True)
class FirstFrame:
    """What only a decoded frame tells (PyAV exposes FFmpeg's side data and flags on frames)."""

    rotation: float = 0.0                 # display rotation, degrees counter-clockwise
    hdr: Optional[HdrMetadata] = None     # HDR10 static metadata
    interlaced: bool = False              # the picture is two fields (DVD, broadcast)
    interval: Optional[int] = None        # time base ticks from the first frame to the second
    captions: bool = False                # closed captions in the first two frames
    dynamic_hdr: Optional[str] = None     # HDR10+ or Dolby Vision metadata (`hdr.dynamic_metadata`)


def probe_first_frame(path) -> FirstFrame:
    """The first video frame's display rotation, HDR10 and dynamic HDR metadata and interlacing, and the
    time to the second frame and whether either carries closed captions, decoded from a second, short-lived
    opening of the file."""
    import av

    try:
        with av.open(str(path), mode="r") as container:
            decoded = container.decode(main_video(container, path))
            frame, second = next(decoded, None), next(decoded, None)
            if frame is None:
                return FirstFrame()
            interval = None
            if second is not None and frame.pts is not None and second.pts is not None and second.pts > frame.pts:
                interval = second.pts - frame.pts
            return FirstFrame(float(getattr(frame, "rotation", 0) or 0), hdr_from_frame(frame),
                              bool(getattr(frame, "interlaced_frame", False)), interval,
                              has_captions(frame) or (second is not None and has_captions(second)),
                              dynamic_metadata(frame))
    except (av.FFmpegError, StopIteration, ValueError, IndexError, struct.error):
        return FirstFrame()  # unreadable here: the main decode reports the file's problem itself


class VideoSource:
    """An open input: `info`, the streams to copy, and `batches()` of decoded frames."""

    def __init__(self, path):
        self.path = Path(path)
        self.container = open_input(self.path)
        # Held while the decoding thread uses the container, so `close` never pulls it from under it.
        self._lock = threading.Lock()
        self._closed = False
        self._changes: set = set()   # (width, height, format) seen after the start, reported once each
        self._decoder = None         # a libvpx decoder for WebM's VP8/VP9 alpha, else the stream's own
        self.captions_from: Optional[int] = None   # the first decoded frame that carries closed captions
        try:
            self.info, self.stream = self._probe()
        except BaseException:
            self.container.close()
            raise
        self.copied = [s for s in self.container.streams
                       if s.type in COPIED_TYPES or is_cover_art(s) or is_copyable_data(s)]
        skipped = [f"#{s.index} ({s.type})" for s in self.container.streams
                   if s is not self.stream and s.type not in COPIED_TYPES and s.type != "video"
                   and not is_timecode_track(s) and not is_copyable_data(s) and not is_discarded(s)]
        extra_video = [f"#{s.index}" for s in self.container.streams.video
                       if s is not self.stream and not is_cover_art(s)]
        if skipped or extra_video:
            log.warning("%s: only the first video stream is restored and audio, subtitle and data streams "
                        "with a named codec and attachments copied; "
                        "not kept: %s", self.path.name, ", ".join(extra_video + skipped))

    def _probe(self):
        stream = main_video(self.container, self.path)
        cc = stream.codec_context
        if not cc.format or not cc.width or not cc.height:
            raise VideoError(f"{self.path}: cannot determine the video's size or pixel format (corrupt?)")
        self._decoder = alpha_decoder(stream)
        plan = plan_format("yuva420p" if self._decoder else cc.format, cc.width, cc.height)
        note = describe_conversion(plan)
        if note:
            log.log(logging.WARNING if plan.loses_bits else logging.INFO, "%s: %s", self.path.name, note)
        first = probe_first_frame(self.path)
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        if not stream.average_rate and rate and stream.time_base and rate == 1 / stream.time_base:
            # FFmpeg's guess is the time base itself (1000 fps for a Matroska clip of two frames, too
            # short to measure: a split part's last one): the first two frames' interval instead, and
            # no rate for a single frame unless the time base is a plausible one.
            if first.interval:
                rate = 1 / (first.interval * stream.time_base)
            elif rate > MAX_TIME_BASE_RATE:
                rate = None
        start = float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0
        duration = None
        if stream.duration is not None and stream.time_base:
            duration = float(stream.duration * stream.time_base)
        else:
            # Matroska stores end times: the video track's own (its DURATION tag, which FFmpeg and mkvmerge
            # write last), else the container's, which covers every stream (audio may run on after the
            # video). A track or file that starts late is not longer.
            end, begins = tag_seconds(stream.metadata.get("DURATION")), start
            if end is None and self.container.duration:
                end, begins = self.container.duration / 1e6, (self.container.start_time or 0) / 1e6
            if end is not None:
                duration = end - (begins if 0 < begins < end else 0)
        frames, exact = (stream.frames, True) if stream.frames else (None, False)
        if frames is None and duration and rate:
            frames = int(round(duration * rate))
        if first.interlaced:
            log.warning("%s: the video is interlaced (each picture holds two fields, as on DVDs and broadcasts); "
                        "it is restored and written as progressive frames, so the fields' combing stays: "
                        "deinterlace it first for the best result (e.g. ffmpeg -i in -vf bwdif ...)", self.path.name)
        info = VideoInfo(self.path, cc.width, cc.height, cc.name, Fraction(rate) if rate else None,
                         Fraction(stream.time_base), frames, exact, duration, int(cc.bit_rate or stream.bit_rate or 0),
                         plan, colour_of(cc, cc.height, plan), first.rotation,
                         kept_tags(stream, self.container), first.hdr, cc.profile or None, start, first.captions,
                         first.dynamic_hdr)
        return info, stream

    def batches(self, size: int, alloc: Callable[[int], torch.Tensor], clock: StageClock,
                alpha: bool = False, side_data: bool = False) -> Iterator[DecodedBatch]:
        """Decoded frames in batches of up to `size`; `alloc(size)` gives each batch's buffer. `alpha`:
        the batches carry the frames' alpha planes too (for a source with alpha); `side_data`: captioned
        frames' side data, on `carriers` (None for a frame without captions)."""
        import av

        info, plan = self.info, self.info.plan
        alpha = alpha and plan.alpha
        self.stream.thread_type = "AUTO"
        step = int(round(1 / (info.rate * info.time_base))) if info.rate else 1
        count = 0
        first_pts = last_end = None   # the decoded frames' time span, for the truncation check
        batch: Optional[DecodedBatch] = None
        packets: list = []
        demuxer = self.container.demux(self.stream, *[s for s in self.copied if s.type != "attachment"])
        while True:
            with self._lock, clock.timed():
                if self._closed:
                    return
                try:
                    # The demuxer ends with an empty packet per stream, which flushes the decoder.
                    packet = next(demuxer, None)
                    frames = self._decode(packet) if packet is not None and packet.stream is self.stream else ()
                except av.FFmpegError as e:
                    raise VideoError(f"{self.path}: decoding failed after {count} frames: {e} "
                                     "(truncated or corrupt?)") from None
            if packet is None:
                break
            if packet.stream is not self.stream:
                if packet.size:
                    packets.append(packet)
                continue
            for frame in frames:
                if batch is None:
                    batch = DecodedBatch(alloc(size), 0, [], [])
                    if alpha:
                        batch.alpha = np.empty((size, info.height, info.width), alpha_dtype(plan.alpha_bits))
                    batch.carriers = [] if side_data else None
                with clock.timed(1):
                    captioned = has_captions(frame)
                    if captioned and self.captions_from is None:
                        self.captions_from = count
                    if side_data:
                        batch.carriers.append(carrier(frame) if captioned else None)
                    if (frame.width, frame.height) != (info.width, info.height) or frame.format.name != plan.source:
                        if alpha:   # the starting size and format first, alpha and all
                            read_alpha(frame.reformat(width=info.width, height=info.height, format=plan.source),
                                       batch.alpha[batch.n])
                        frame = self._conform(frame, count)
                    else:
                        if alpha:
                            read_alpha(frame, batch.alpha[batch.n])
                        if plan.swscale:
                            frame = frame.reformat(format=plan.av_work, **info.colour.swscale_args())
                    copy_to_slot(frame, batch.raw[batch.n].numpy(), plan.av_work)
                    batch.pts.append(frame.pts if frame.pts is not None else count * step)
                    first_pts = batch.pts[-1] if first_pts is None else min(first_pts, batch.pts[-1])
                    batch.durations.append(getattr(frame, "duration", None) or step)  # PyAV >= 14.1
                    end = batch.pts[-1] + batch.durations[-1]
                    last_end = end if last_end is None else max(last_end, end)
                batch.n += 1
                count += 1
                if batch.n == size:
                    batch.packets, packets = packets, []
                    yield batch
                    batch = None
        if batch is not None or packets:
            batch = batch or DecodedBatch(None, 0, [], [])  # packets after the last frame
            batch.packets = packets
            yield batch
        # A file whose frames span its announced length is whole even with fewer frames than announced:
        # AVI counts the empty index entries of skipped frames (a variable-rate capture) as frames, and
        # a variable-rate file's last frame may last long (an animation's closing pause). The span ends
        # where the last frame ends.
        spanned = count if first_pts is None else max(count, -(-(last_end - first_pts) // max(step, 1)))
        if info.frames_exact and spanned < info.frames:
            raise TruncatedVideoError(f"{self.path} ended after {count} of its {info.frames} frames: the file is "
                                      "truncated or corrupt; no output was written")
        if info.frames_exact and count < info.frames:
            log.info("%s: %d of its %d frames are empty entries (skipped frames); their times stay empty",
                     self.path.name, info.frames - count, info.frames)
        if not info.frames_exact and info.frames and spanned < info.frames - 1:
            raise TruncatedVideoError(f"{self.path} ended after {count} frames, but its duration "
                                      f"({info.duration:.3f} s) announces about {info.frames}: the file is truncated "
                                      "or corrupt; no output was written")

    def _decode(self, packet) -> list:
        """The frames a packet of the video stream gives (an empty packet flushes the decoder)."""
        if self._decoder is None:
            return packet.decode()
        return self._decoder.decode(packet if packet.size else None)

    def _conform(self, frame, index: int):
        """A frame whose size or pixel format differs from the stream's start (a broadcast switching
        between SD and HD, a capture changing format) scaled by swscale to the starting size, in the
        work format; the first change of each kind is reported."""
        info = self.info
        change = (frame.width, frame.height, frame.format.name)
        if change not in self._changes:
            self._changes.add(change)
            log.warning("%s: from frame %d the video is %dx%d %s, but it started at %dx%d %s: such frames are "
                        "scaled to the starting size and format (the output has one size)", self.path.name, index,
                        frame.width, frame.height, frame.format.name, info.width, info.height, info.plan.source)
        return frame.reformat(width=info.width, height=info.height, format=info.plan.av_work,
                              **info.colour.swscale_args())

    def close(self) -> None:
        """Close the file (waits for a packet being decoded; later decoding stops)."""
        with self._lock:
            if not self._closed:
                self._closed = True
                self.container.close()
