"""What each output container (FFmpeg muxer) can hold: the codec checks behind copying a stream.

PyAV's `supported_codecs` lists what FFmpeg's avformat_query_codec is sure of. That answer is wrong
in two directions, both measured here with FFmpeg 7 through PyAV 18 (2026-11-27) by writing a few
packets and reading the file back:

- Muxers without a codec table (MPEG-TS, MPEG-PS) take any codec, but store only the ones their
  code knows: anything else is written as private data that reads back as `bin_data` (an MPEG-TS
  with PCM or FLAC audio, FFV1 or ProRes video) or as MP3 audio (MPEG-PS with VP9 video), so the
  stream is silently lost. `STORED_BY` lists what they store.
- MOV's table lists codecs its header then refuses ("vp9 only supported in MP4"): `REFUSED_BY`.

MXF also has no table, but refuses what it cannot store when the header is written, which
`VideoSink` reports as an error; for it a codec is taken unless avformat_query_codec says no.
"""

from __future__ import annotations

import io
import logging
from pathlib import Path
from typing import Dict, Mapping, Optional, Tuple

log = logging.getLogger(__name__)

_TS_VIDEO = {"mpeg1video", "mpeg2video", "mpeg4", "h264", "hevc", "vvc", "cavs", "dirac", "vc1"}
_TS_AUDIO = {"mp1", "mp2", "mp3", "aac", "aac_latm", "ac3", "eac3", "dts", "truehd", "opus", "s302m"}
_TS_OTHER = {"dvb_subtitle", "dvb_teletext", "arib_caption", "klv", "timed_id3"}
_PS = {"mpeg1video", "mpeg2video", "mpeg4", "h264", "hevc",
       "mp1", "mp2", "mp3", "ac3", "dts", "truehd", "mlp", "pcm_dvd", "pcm_s16be",   # LPCM reads back as pcm_dvd
       "dvd_subtitle"}
# Codec-table-less muxers -> the codecs they store so that they read back (tried: h264, hevc, mpeg1/2/4
# video; aac, ac3, eac3, mp2, mp3, opus audio; the rest from the muxers' stream-type tables).
STORED_BY = {"mpegts": _TS_VIDEO | _TS_AUDIO | _TS_OTHER,
             **{name: _PS for name in ("mpeg", "vob", "dvd", "svcd", "vcd")},
             "yuv4mpegpipe": {"rawvideo", "wrapped_avframe"}}   # raw pictures only, no sound
# MPEG-TS in Blu-ray mode, which FFmpeg uses for a .m2ts name, also stores Blu-ray LPCM and PGS subtitles.
STORED_BY_SUFFIX = {".m2ts": {"pcm_bluray", "hdmv_pgs_subtitle", "hdmv_text_subtitle"}}
# Codecs in a muxer's table that its header refuses (tried: all but truehd, whose message FFmpeg's
# mov muxer shares with opus and flac).
REFUSED_BY = {"mov": {"vp8", "vp9", "av1", "opus", "flac", "truehd"}}
# Muxers whose header refuses audio beyond these codecs and sample rates (MXF: "only 48khz is
# implemented"; other PCM has no essence container), though their codec query takes more.
AUDIO_LIMITS = {"mxf": ({"pcm_s16le", "pcm_s24le"}, (48000,))}
# Muxers without a codec table that refuse, when the header is written, what they cannot store.
CHECKING_MUXERS = ("mxf",)

# Muxers that store no timestamps, only order: an AVI's frames and audio samples play one after another
# from its start. The sink starts the video at 0 and aligns the audio to it (`audio.py`). (FFmpeg reads
# H.264 and MPEG-2 in AVI one frame late, B-frames or not, as it reads an input AVI of them.)
UNTIMED_MUXERS = ("avi",)
# Outputs (QuickTime family) that store reverse-DNS metadata keys as "mdta" keys when asked to.
MDTA_SUFFIXES = (".mov", ".mp4", ".m4v")
# Muxers that store a cover picture (an attached_pic stream; tried 2026-11-27: mov drops it, Matroska
# keeps covers as attachments).
COVER_ART_MUXERS = ("mp4", "ipod")
# Muxers that data streams (KLV metadata, timed ID3) are copied into: MPEG-TS stores them (tried); others
# refuse them, or accept them in the codec query and then fail writing the header (MPEG-PS, and MPEG-TS
# in Blu-ray mode, which FFmpeg uses for .m2ts and which has no PID for a data stream).
DATA_MUXERS = ("mpegts",)
NO_DATA_SUFFIXES = (".m2ts",)
ATTACHMENT_MUXERS = ("matroska",)   # fonts and images attached to the file


def muxer_options(suffix: str, metadata: Mapping[str, str]) -> Dict[str, str]:
    """Options for the muxer of a `suffix` file that will hold `metadata`: a phone's reverse-DNS keys
    (com.apple.quicktime.make, com.android.capture.fps) are written by MOV/MP4 only when asked."""
    if suffix.lower() in MDTA_SUFFIXES and any("." in k for k in metadata):
        return {"movflags": "use_metadata_tags"}
    return {}


def container_suffix(container) -> str:
    """The lower-case suffix of the file `container` writes ("" for a file object)."""
    name = getattr(container, "name", None)
    return Path(name).suffix.lower() if isinstance(name, str) else ""


def muxer_takes(container, codec: str) -> bool:
    """Whether the output `container`'s muxer stores a `codec` stream (FFmpeg's codec name: "h264",
    "mp3", not an encoder's or decoder's name) so that it reads back as that codec."""
    fmt = container.format.name
    if fmt in STORED_BY:
        return codec in STORED_BY[fmt] or codec in STORED_BY_SUFFIX.get(container_suffix(container), ())
    if codec in REFUSED_BY.get(fmt, ()):
        return False
    if codec in container.supported_codecs:
        return True
    if fmt not in CHECKING_MUXERS or not hasattr(container, "add_data_stream"):
        return False
    import av

    try:   # PyAV's add_data_stream refuses only what avformat_query_codec refuses
        with av.open(io.BytesIO(), mode="w", format=fmt) as probe:
            probe.add_data_stream(codec)
        return True
    except (ValueError, av.FFmpegError):
        return False


def audio_fits(container, codec: str, rate: Optional[int] = None) -> bool:
    """Whether `container` takes audio of `codec` at `rate` Hz (None: any rate it takes), beyond
    `muxer_takes` (`AUDIO_LIMITS`)."""
    limits = AUDIO_LIMITS.get(container.format.name)
    return limits is None or (codec in limits[0] and (rate is None or rate in limits[1]))


def audio_rates(container) -> Optional[Tuple[int, ...]]:
    """The only sample rates `container` takes, or None (any)."""
    limits = AUDIO_LIMITS.get(container.format.name)
    return None if limits is None else limits[1]


def codec_name(stream) -> str:
    """FFmpeg's name of a stream's codec ("mp3" for a stream its "mp3float" decoder reads)."""
    if stream.type == "data":
        return stream.name
    codec = stream.codec_context.codec
    return getattr(codec, "canonical_name", None) or stream.codec_context.name


def copy_tags(stream, out) -> bool:
    """Give the output stream `out` the input `stream`'s tags (language, title) and disposition (default,
    forced, a cover picture); False if this PyAV cannot set a disposition."""
    for k, v in stream.metadata.items():
        out.metadata[k] = v
    if stream.disposition:
        try:
            out.disposition = stream.disposition
        except (AttributeError, TypeError, ValueError):
            return False
    return True


def copy_attachment(container, stream, source: str, suffix: str) -> None:
    """Copy an attachment stream (a font; no packets, written with the header) into `container`
    where its format holds one, else say it is not kept."""
    if container.format.name in ATTACHMENT_MUXERS:
        container.add_stream_from_template(stream)
    else:
        log.warning("%s: the attachment %r (stream #%d) is not kept: a %s file cannot hold it (an .mkv output "
                    "can)", source, stream.metadata.get("filename", ""), stream.index, suffix)
