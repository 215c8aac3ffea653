"""Writing the restored video with PyAV: encoder choice, its settings, and the copied streams.

Defaults look like the input: the same codec (its default FFmpeg encoder; libx264, or libx265 for
deep video, when there is none or the container cannot hold it, else the container's own codec,
with a warning) and profile (DNxHR, ProRes), the same
pixel format when the encoder takes it (else its chroma layout at a depth it takes, else the work
format, else 4:2:0 of the same depth), frame rate, time base, each frame's timestamp (sorted, made
increasing) and duration, the colour tags and HDR10 metadata (`hdr.py`), and the alpha plane
where the encoder stores one (`alpha.py`; else a warning names the encoders that do), and closed
captions where it writes them (H.264, MPEG-2: `captions.py`; else a warning). Quality: `crf` for the
codecs that have one (default `CRF_DEFAULTS`, near transparent), the input's bit rate for the
others, lossless codecs untouched. Audio, subtitle and data packets are remuxed unchanged, and
attachments copied, where the container holds them (`muxers.py`); audio it cannot hold is
re-encoded (`audio.py`), text subtitles converted (`subtitles.py`), anything else left out with a
warning. The header is written first, so a
container that refuses a stream says so before any work.
"""

from __future__ import annotations

import heapq
import logging
import os
from collections import deque
from contextlib import contextmanager
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Deque, Dict, Iterator, List, Mapping, Optional, Sequence

import torch

from .alpha import ALPHA_OPTIONS, NO_ALPHA_ENCODERS, has_alpha, write_alpha
from .audio import AudioReencoder, choose_encoding, default_layout, describe, start_offset
from .avframes import frame_from_slot
from .captions import CAPTION_ENCODERS, warn_dropped
from .decode import VideoInfo, is_cover_art
from .errors import UnsupportedPixelFormatError, VideoError
from .formats import AV_TO_PIXFMT, sample_bits
from .hdr import encoder_params
from .layouts import layout_for
from .muxers import (COVER_ART_MUXERS, DATA_MUXERS, NO_DATA_SUFFIXES, UNTIMED_MUXERS, audio_fits, codec_name,
                     container_suffix, copy_attachment, copy_tags, muxer_options, muxer_takes)
from .subtitles import SubtitleConverter, choose_text_codec
from .tonemap import HLG, PQ

log = logging.getLogger(__name__)

CRF_DEFAULTS = {"libx264": 18, "libx265": 20, "libvpx-vp9": 24, "libsvtav1": 30}
PRESET_CODECS = ("libx264", "libx265", "libsvtav1")
LOSSLESS_CODECS = ("ffv1", "rawvideo", "png", "utvideo", "huffyuv", "ffvhuff", "qtrle")
# Options that keep encoders quiet on stderr (x265 prints through its own logger, not FFmpeg's).
QUIET_OPTIONS = {"libx265": {"x265-params": "log-level=error"}}
# Frames the sink holds to sort their times (`VideoSink.write`): covers B-frame reordering up to this
# depth (x264's default B-pyramid reorders by 2; MPEG-4 ASP by 1).
REORDER_DEPTH = 4
# Encoders of the MPEG-1/2 and MPEG-4 Part 2 family take a frame-rate time base: FFmpeg refuses an
# MPEG-TS/PS stream's 1/90000 ("MPEG-1/2 does not support 1/90000 fps"; MPEG-4 allows denominators
# up to 65535). They are constant-rate codecs; their frames are timed on 1/rate.
FRAME_GRID_CODECS = ("mpeg1video", "mpeg2video", "mpeg4", "h263", "h263p", "msmpeg4", "msmpeg4v2", "wmv1",
                     "wmv2", "flv")


def encoder_time_base(codec: str, info: VideoInfo) -> Fraction:
    """The encoder's time base: the input stream's, or 1/rate for `FRAME_GRID_CODECS`."""
    if codec in FRAME_GRID_CODECS and info.rate and info.time_base != 1 / info.rate:
        return 1 / Fraction(info.rate)
    return info.time_base


@dataclass(frozen=True)
class EncodeOptions:
    """What the user asked of the encoder; None means "like the input"."""

    codec: Optional[str] = None
    crf: Optional[int] = None
    preset: Optional[str] = None
    pix_fmt: Optional[str] = None
    options: Optional[Mapping[str, str]] = None  # passed to FFmpeg as is (e.g. {"tune": "film"})


def find_encoder(name: str):
    """FFmpeg's encoder `name` (or the default encoder of codec `name`), or None."""
    import av

    try:
        return av.codec.Codec(name, "w")
    except (av.codec.codec.UnknownCodecError, ValueError):
        return None


def choose_codec(info: VideoInfo, requested: Optional[str], container) -> str:
    if requested:
        codec = find_encoder(requested)
        if codec is None or codec.type != "video":
            raise VideoError(f"unknown video encoder {requested!r} (e.g. libx264, libx265, ffv1, libvpx-vp9)")
        if not muxer_takes(container, codec.canonical_name):
            raise VideoError(f"the output container cannot hold {requested}; choose another codec or suffix")
        return codec.name
    fallback = "libx265" if info.plan.bits > 8 else "libx264"
    same = _codec_of_decoder(info.codec)   # "av1" for the libdav1d decoder: an AV1 encoder keeps AV1
    # The input's codec, then H.264/HEVC, then the container's own (VP9 for WebM, which holds neither).
    tried = list(dict.fromkeys((same, fallback, container.default_video_codec)))
    codec = first_video_encoder(container, tried)
    if codec is None:
        raise VideoError(f"the output container holds none of {', '.join(tried)}; choose --codec")
    if codec.canonical_name != same:
        why = "has no encoder here" if find_encoder(same) is None else \
            f"cannot be stored in a {container_suffix(container) or container.format.name} file"
        log.warning("%s: the video is encoded as %s (%s): its codec, %s, %s (--codec chooses another)",
                    info.path.name, codec.canonical_name, codec.name, same, why)
    return codec.name


def first_video_encoder(container, names: Sequence[str]):
    """The first of the encoders (or codecs' default encoders) `names` that exists, is not experimental,
    and makes a codec `container` holds; None if none does."""
    for name in names:
        codec = find_encoder(name)
        if codec is not None and codec.type == "video" and not codec.experimental \
                and muxer_takes(container, codec.canonical_name):
            return codec
    return None


def _codec_of_decoder(decoder: str) -> str:
    """FFmpeg's codec name for a decoder's name ("libdav1d" -> "av1"; "h264" stays)."""
    import av

    try:
        return av.codec.Codec(decoder, "r").canonical_name
    except (av.codec.codec.UnknownCodecError, ValueError):
        return decoder


def choose_pix_fmt(codec_name: str, info: VideoInfo, requested: Optional[str]) -> str:
    formats = find_encoder(codec_name).video_formats
    names = [f.name for f in formats] if formats else None
    if names is not None and codec_name in NO_ALPHA_ENCODERS:
        names = [name for name in names if not has_alpha(name)]
    if requested:
        if names is not None and requested not in names:
            raise UnsupportedPixelFormatError(f"{codec_name} cannot encode {requested}; it takes {', '.join(names)}")
        return requested
    for name in info.plan.output_candidates:
        if names is None or name in names:
            return name
    raise UnsupportedPixelFormatError(f"{codec_name} takes none of {', '.join(info.plan.output_candidates)} "
                                      f"(it takes {', '.join(names)}); choose --codec or --pix-fmt")


def encoder_options(codec: str, opts: EncodeOptions) -> Dict[str, str]:
    """FFmpeg options for `codec`: the quiet ones, crf (given or default), preset, then the user's."""
    out: Dict[str, str] = dict(QUIET_OPTIONS.get(codec, {}))
    if opts.crf is not None and codec not in CRF_DEFAULTS:
        raise VideoError(f"--crf applies to {', '.join(CRF_DEFAULTS)}, not {codec}")
    if opts.preset is not None and codec not in PRESET_CODECS:
        raise VideoError(f"--preset applies to {', '.join(PRESET_CODECS)}, not {codec}")
    if codec in CRF_DEFAULTS:
        out["crf"] = str(opts.crf if opts.crf is not None else CRF_DEFAULTS[codec])
        if codec == "libvpx-vp9":
            out["b"] = "0"  # constant-quality mode
    if opts.preset is not None:
        out["preset"] = str(opts.preset)
    out.update({str(k): str(v) for k, v in (opts.options or {}).items()})
    return out


# The ProRes decoder's profile names -> the ProRes encoders' profile numbers (apco, apcs, apcn, apch, ap4h, ap4x).
PRORES_PROFILES = {"proxy": 0, "lt": 1, "standard": 2, "hq": 3, "4444": 4, "xq": 5}


@contextmanager
def ffmpeg_messages() -> Iterator[list]:
    """FFmpeg's error messages logged while the block runs, as (level, name, text) tuples: PyAV keeps
    them only while a log level is set, and none is by default."""
    import av

    quiet = av.logging.get_level() is None
    if quiet:
        av.logging.set_level(av.logging.ERROR)
    try:
        with av.logging.Capture() as messages:
            yield messages
    finally:
        if quiet:
            av.logging.set_level(None)


def kept_profile(codec: str, info: VideoInfo) -> Dict[str, str]:
    """The encoder option that keeps the input's profile where it is the format's class of data rate
    and depth (DNxHR LB/SQ/HQ/HQX/444, ProRes Proxy/LT/Standard/HQ/4444/XQ): without it the DNxHD
    encoder falls back to DNxHD's fixed frame sizes and refuses the video, and ProRes changes class."""
    name = (info.profile or "").lower()
    if name and codec == "dnxhd" and info.codec == "dnxhd":
        return {"profile": name.replace(" ", "_")}                 # "DNXHR HQ" -> dnxhr_hq
    if name in PRORES_PROFILES and codec in ("prores", "prores_ks", "prores_aw") and info.codec == "prores":
        return {"profile": str(PRORES_PROFILES[name])}             # both ProRes encoders number them alike
    return {}


class VideoSink:
    """An output file being written: the restored video stream plus the copied streams."""

    def __init__(self, path, info: VideoInfo, opts: EncodeOptions, copied: Sequence,
                 metadata: Optional[Mapping[str, str]] = None, chapters: Sequence[dict] = ()):
        import av

        self.info, self.path = info, Path(path)
        self.frame_duration = hasattr(av.VideoFrame, "duration")  # PyAV >= 14.1
        try:
            # The container format follows the file name's suffix.
            self.container = av.open(str(path), mode="w", options=muxer_options(self.path.suffix, metadata or {}))
        except ValueError:
            raise VideoError(f"cannot tell a container format from the suffix of {Path(path).name!r}: "
                             "use one such as .mp4, .mkv or .mov") from None
        try:
            self._setup(opts, copied, metadata or {}, chapters)
        except BaseException:
            self.container.close()
            raise

    def _setup(self, opts: EncodeOptions, copied: Sequence, metadata: Mapping[str, str],
               chapters: Sequence[dict]) -> None:
        import av

        info, c = self.info, self.container
        codec = choose_codec(info, opts.codec, c)
        self.pix_fmt = choose_pix_fmt(codec, info, opts.pix_fmt)
        self.codec = codec
        out_bits = sample_bits(self.pix_fmt)
        if info.plan.bits >= 10 and out_bits < 10:
            hdr = info.colour.color_trc in (PQ, HLG)
            log.warning("%s: the output's %s video (%s) has %d bits per sample, the input %d%s; a 10-bit format "
                        "(--pix-fmt yuv420p10le where the codec takes it, e.g. libx265, libsvtav1) keeps them",
                        info.path.name, codec, self.pix_fmt, out_bits, info.plan.bits,
                        ": HDR (PQ, HLG) video at 8 bits shows banding" if hdr else "")
        self.keeps_alpha = info.plan.alpha and has_alpha(self.pix_fmt)   # the output keeps the input's alpha
        if info.plan.alpha and not self.keeps_alpha:
            log.warning("%s: the alpha channel (transparency) is not kept: the output's %s video (%s) has none; "
                        "ProRes 4444 (--codec prores_ks) or PNG (--codec png) in .mov, FFV1 in .mkv and VP9 in "
                        ".webm keep it", info.path.name, codec, self.pix_fmt)
        self.writes_captions = codec in CAPTION_ENCODERS   # captioned frames keep their captions
        if info.captions and not self.writes_captions:
            warn_dropped(info.path.name, codec)
        options = {**(ALPHA_OPTIONS.get(codec, {}) if self.keeps_alpha else {}), **kept_profile(codec, info),
                   **encoder_options(codec, opts)}
        untimed = c.format.name in UNTIMED_MUXERS
        if codec == "libsvtav1":
            # SVT-AV1 prints its whole configuration to stderr; only this variable, read when an encoder
            # opens, quiets it (1: errors). A value the user set is kept.
            os.environ.setdefault("SVT_LOG", "1")
        with_hdr = None
        if info.hdr is not None:
            with_hdr = encoder_params(codec, info.hdr, options)
            if with_hdr is None:
                log.warning("%s: the HDR mastering display and light levels are not written: %s cannot carry "
                            "them (--codec libx265 or libsvtav1 can; the colour tags are kept)", info.path.name, codec)
            options = with_hdr or options
        if info.dynamic_hdr:
            log.warning("%s: the %s dynamic metadata (per-scene tone mapping) is not kept: no encoder here writes "
                        "it; the output keeps the base HDR video's colour tags%s", info.path.name, info.dynamic_hdr,
                        " and static metadata" if with_hdr else "")
        stream = c.add_stream(codec, rate=info.rate, options=options)
        stream.width, stream.height, stream.pix_fmt = info.width, info.height, self.pix_fmt
        stream.time_base = info.time_base
        cc = stream.codec_context
        cc.time_base = encoder_time_base(codec, info)   # frames are rebased to it by PyAV
        if codec not in CRF_DEFAULTS and codec not in LOSSLESS_CODECS and info.bit_rate and "b" not in (opts.options or {}):
            cc.bit_rate = info.bit_rate
        # The encoder-side work format: pixfmt writes it directly when it can, else swscale converts.
        self.work_av = self.pix_fmt if self.pix_fmt in AV_TO_PIXFMT else info.plan.av_work
        self.reformat = self.work_av != self.pix_fmt
        colour = info.colour
        rgb_out = av.VideoFormat(self.pix_fmt).is_rgb
        self.tags = dict(colorspace=0 if rgb_out else colour.colorspace,
                         color_range=2 if rgb_out else colour.color_range)
        for k, v in dict(self.tags, color_primaries=colour.color_primaries, color_trc=colour.color_trc).items():
            setattr(cc, k, v)
        self.layout = layout_for(self.work_av, info.height, info.width, colour.matrix, colour.range)
        for k, v in info.tags.items():   # language, title, timecode (MOV/MP4 write a tmcd track from it), ...
            stream.metadata[k] = v
        if info.rotation:
            # Frames are restored as stored; the display matrix tells players to turn them.
            if hasattr(stream, "set_display_rotation"):  # PyAV >= 18
                stream.set_display_rotation(info.rotation)
            else:
                log.warning("%s: the input is displayed rotated by %g°, which this PyAV (< 18) cannot write: "
                            "the output will play unrotated", info.path.name, info.rotation)
        self.stream = stream
        self._held: Deque = deque()   # (frame, duration) waiting for its time (`write`)
        self._times: List[int] = []   # a heap of the waiting frames' times
        self._last_pts: Optional[int] = None   # the last time encoded
        # Frame-grid encoders (their time base is not the input's) get times from the first frame, put
        # back on the packets; an AVI's video starts at 0 (its audio is aligned to that).
        self._rebase, self._to_zero = cc.time_base != info.time_base, untimed
        self._origin: Optional[int] = None     # the first frame's time, subtracted before encoding
        # The latest frame's (time, duration), for its packet if the encoder gives it none: the muxer
        # gives the last frame that length (an animation's closing pause).
        self._latest: Optional[tuple] = None
        self._moved = 0                        # frames moved one tick later (a repeated time)
        self._add_copies(copied)
        for k, v in metadata.items():   # the title, ...: written with the header, so before it
            c.metadata[k] = v
        if chapters:
            c.set_chapters(list(chapters))
        with ffmpeg_messages() as messages:   # the header now, so a refused stream stops it before any work
            try:
                c.start_encoding()
            except av.FFmpegError as e:
                raise self._refused(e, messages) from None

    def _add_copies(self, copied: Sequence) -> None:
        """Add the input's other streams: copied where the container holds them, audio it cannot hold
        (or, in an AVI, that does not start with the video) re-encoded (`audio.py`), text subtitles it
        cannot hold converted (`subtitles.py`), anything else it cannot hold left out with a warning."""
        c, src, suffix = self.container, self.info.path.name, self.path.suffix
        self.copies: Dict[int, object] = {}
        self.converted: Dict[int, object] = {}   # AudioReencoder, SubtitleConverter: encode(packet) -> packets
        for s in copied:
            if s.type == "attachment":
                copy_attachment(c, s, src, suffix)
                continue
            name = codec_name(s)
            if s.type == "data":
                if (c.format.name not in DATA_MUXERS or suffix.lower() in NO_DATA_SUFFIXES
                        or not muxer_takes(c, name)):
                    log.warning("%s: the %s data stream #%d is not kept: a %s file cannot hold it (a .ts "
                                "output can)", src, name, s.index, suffix)
                    continue
                self.copies[s.index] = c.add_stream_from_template(s)
                continue
            if is_cover_art(s) and c.format.name.split(",")[0] not in COVER_ART_MUXERS:
                log.warning("%s: the cover picture (stream #%d) is not kept: a %s file has no place for it",
                            src, s.index, c.format.name.split(",")[0])
                continue
            offset = start_offset(c, s, self.info.start)
            takes = muxer_takes(c, name) and (s.type != "audio" or audio_fits(c, name, s.codec_context.sample_rate))
            if not takes or offset:
                encoding = choose_encoding(c, s) if s.type == "audio" else None
                text_codec = choose_text_codec(c, s) if s.type == "subtitle" else None
                if encoding is not None:
                    if not takes:
                        fits = audio_fits(c, name, s.codec_context.sample_rate)
                        as_is = name if fits else f"{name} at {s.codec_context.sample_rate} Hz"
                        why = f"a {suffix} file cannot hold {as_is} as it is ({self._other_outputs()} can)"
                    else:
                        why = f"a {suffix} file stores no start time for it, and it starts {offset:+.3f} s from the video"
                    log.warning("%s: the audio stream #%d is re-encoded (%s): %s", src, s.index,
                                describe(s, encoding), why)
                    self.converted[s.index] = AudioReencoder(c, s, encoding, self.info.start)
                elif text_codec is not None:
                    log.warning("%s: the subtitle stream #%d is converted from %s to %s: a %s file cannot hold %s "
                                "(%s can)", src, s.index, name, text_codec, suffix, name, self._other_outputs())
                    self.converted[s.index] = SubtitleConverter(c, s, text_codec)
                else:
                    log.warning("%s: the %s stream #%d (%s) is not kept: a %s file cannot hold it (%s can)",
                                src, s.type, s.index, name, suffix, self._other_outputs())
                continue
            out = c.add_stream_from_template(s)
            if s.type == "audio" and default_layout(s.codec_context.layout):
                out.codec_context.layout = default_layout(s.codec_context.layout)   # MP4 needs a channel order
            if not copy_tags(s, out) and is_cover_art(s):
                # Unmarked, its picture would play as a second video: no packets.
                log.warning("%s: the cover picture (stream #%d) is not kept: this PyAV cannot mark a stream as "
                            "one", src, s.index)
                continue
            self.copies[s.index] = out

    def _other_suffixes(self) -> List[str]:
        """The outputs to suggest instead of this one: the input's container, else Matroska."""
        return [x for x in dict.fromkeys((self.info.path.suffix.lower(), ".mkv")) if x != self.path.suffix.lower()]

    def _other_outputs(self) -> str:
        return " or ".join(f"a {x}" for x in self._other_suffixes()) or "another container"

    def _refused(self, error, messages) -> VideoError:
        """The muxer's (or, opening with the header, the encoder's) refusal as an error that says what to do."""
        lines = [f"[{name}] {text.strip()}" for _, name, text in messages]
        if len(lines) > 3:   # a bitstream filter lists every codec it takes, one per message
            lines = lines[:3] + [f"... {len(lines) - 3} more lines"]
        why = "; ".join(lines) or error.strerror or str(error)
        if any(name == self.codec for _, name, _ in messages):
            return VideoError(f"the {self.codec} encoder refused this video ({why}); choose another --codec "
                              "(or --pix-fmt)")
        instead = " or ".join(self._other_suffixes()) or "another container"
        return VideoError(f"a {self.path.suffix} file cannot hold this video's streams ({why}); write {instead} "
                          "instead (--codec chooses the video's encoder)")

    def write(self, raw: Optional[torch.Tensor], pts: List[int], durations: List[int], packets: Sequence,
              alpha=None, carriers=None) -> None:
        """Encode the frames in `raw` (host, the layout's format; None: no frames) and mux them, then `packets`.
        `alpha`: the frames' alpha planes (`DecodedBatch.alpha`), written where the output keeps alpha;
        `carriers`: frames whose side data (captions) the encoded frames take (`DecodedBatch.carriers`).

        Frames arrive in display order. Each is encoded `REORDER_DEPTH` frames late with the smallest
        time among those waiting: inputs whose decoded times are out of order (H.264 or MPEG-4 with
        B-frames in AVI, which stores decoding times only: 1, 2, 4, 3, 5, ...) get their times sorted,
        which encoders and muxers require; ordered times are unchanged. A time equal to the one
        before is moved one tick later (and counted in a warning at `close`).
        """
        info = self.info
        for i in range(0 if raw is None else raw.shape[0]):
            frame = frame_from_slot(raw[i].numpy(), self.work_av, info.width, info.height,
                                    carriers[i] if carriers else None)
            if self.reformat:
                frame = frame.reformat(format=self.pix_fmt, **info.colour.swscale_args())
            if self.keeps_alpha:
                write_alpha(frame, alpha[i], info.plan.alpha_bits)
            frame.time_base = info.time_base
            for k, v in self.tags.items():
                setattr(frame, k, v)
            self._held.append((frame, durations[i]))
            heapq.heappush(self._times, pts[i])
            if len(self._held) > REORDER_DEPTH:
                self._encode_oldest()
        self._mux_copies(packets)

    def _encode_oldest(self) -> None:
        frame, duration = self._held.popleft()
        pts = heapq.heappop(self._times)
        if self._last_pts is not None and pts <= self._last_pts:
            # Two frames at one time (Matroska allows it, MP4 and the encoders do not): one tick later.
            pts = self._last_pts + 1
            self._moved += 1
        self._last_pts = pts
        if self._origin is None:
            self._origin = pts if self._rebase or self._to_zero else 0
        frame.pts = pts - self._origin
        if self.frame_duration:  # lets the muxer give the last frame its length
            frame.duration = duration
        self._latest = (frame.pts, duration)
        for packet in self.stream.encode(frame):
            self._mux_video(packet)

    def _mux_video(self, packet) -> None:
        """Mux an encoded packet, its times moved back by the first frame's time where it was taken off
        (an MPEG-2 stream starting at 0.54 s on a 1/25 grid: it was rounded to 0.56 s)."""
        ptb = packet.time_base or self.stream.codec_context.time_base
        if (not packet.duration and packet.pts is not None and self._latest
                and round(packet.pts * ptb / self.info.time_base) == self._latest[0]):
            packet.duration = max(1, round(self._latest[1] * self.info.time_base / ptb))
        if self._origin and not self._to_zero:
            tb = self.stream.time_base
            shift = round(self._origin * self.info.time_base / tb)
            for name in ("pts", "dts"):
                value = getattr(packet, name)
                if value is not None:
                    setattr(packet, name, round(value * ptb / tb) + shift)
            if packet.duration:
                packet.duration = round(packet.duration * ptb / tb)
            packet.time_base = tb
        self.container.mux(packet)

    def _mux_copies(self, packets: Sequence) -> None:
        c = self.container
        for packet in packets:
            converter = self.converted.get(packet.stream.index)
            if converter is not None:
                for p in converter.encode(packet):
                    c.mux(p)
                continue
            out = self.copies.get(packet.stream.index)
            if out is not None:   # None: a cover picture this container cannot hold
                packet.stream = out
                c.mux(packet)

    def close(self) -> None:
        """Flush the encoder and finish the file."""
        while self._held:
            self._encode_oldest()
        if self._moved:
            log.warning("%s: %d frames had the time of the frame before them; each was written one tick (%s s) "
                        "later", self.info.path.name, self._moved, self.info.time_base)
        import av

        for packet in self.stream.encode(None):
            self._mux_video(packet)
        for converter in self.converted.values():
            for packet in converter.encode(None):
                self.container.mux(packet)
        with ffmpeg_messages() as messages:
            try:
                self.container.close()
            except av.FFmpegError as e:   # the trailer: MP4 refuses some audio (PCM's channel layout) only here
                raise self._refused(e, messages) from None

    def abort(self) -> None:
        try:
            self.container.close()
        except Exception as e:  # noqa: BLE001 - the file is deleted anyway
            log.debug("closing an aborted output: %s", e)
