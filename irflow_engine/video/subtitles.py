"""Text subtitles converted into a codec the output container holds (SubRip in Matroska -> MP4).

Subtitles are copied packet for packet where the output holds their codec. Where it does not, text
subtitles (SubRip, ASS, WebVTT, MP4's mov_text, ...) are converted as FFmpeg converts them: each
packet decoded to FFmpeg's ASS events and encoded in the first of `TEXT_CODECS` the container takes
(mov_text for MP4/MOV, SubRip for Matroska, WebVTT for WebM), keeping its times; styling that the
target codec has (italics, bold) survives. Picture subtitles (DVD, Blu-ray PGS, DVB) cannot be
converted to text and are left out with a warning (`VideoSink`).
"""

from __future__ import annotations

import logging
from typing import List, Optional

from .muxers import copy_tags, muxer_takes

log = logging.getLogger(__name__)

# Text subtitle codecs an output is given, in order of preference.
TEXT_CODECS = ("mov_text", "subrip", "webvtt", "ass")


def is_text(stream) -> bool:
    """Whether a subtitle stream holds text (not pictures) that FFmpeg decodes."""
    codec = getattr(stream.codec_context, "codec", None)
    return stream.type == "subtitle" and codec is not None and bool(getattr(codec, "text_sub", False))


def choose_text_codec(container, stream) -> Optional[str]:
    """The text subtitle codec to convert `stream` into for `container`, or None (pictures, or none taken)."""
    import av

    if not is_text(stream):
        return None
    for name in TEXT_CODECS:
        try:
            av.codec.Codec(name, "w")
        except (av.codec.codec.UnknownCodecError, ValueError):
            continue
        if muxer_takes(container, name):
            return name
    return None


class SubtitleConverter:
    """Decodes one input text subtitle stream's packets and encodes them into an output stream."""

    def __init__(self, container, stream, codec: str):
        self.decoder, self.index, self.damaged = stream.codec_context, stream.index, 0
        self.decoder.open(strict=False)   # makes its ASS header, which the encoder needs
        out = container.add_stream(codec)
        out.codec_context.subtitle_header = self.decoder.subtitle_header
        out.time_base = stream.time_base
        copy_tags(stream, out)
        self.out = out

    def encode(self, packet) -> List:
        """The output packet for `packet` (none for an empty one, or None: the end)."""
        import av

        if packet is None or packet.pts is None:
            return []
        try:
            subtitle = self.decoder.decode2(packet)
            converted = self.out.codec_context.encode_subtitle(subtitle) if subtitle is not None else None
        except av.FFmpegError as e:
            if not self.damaged:
                log.warning("subtitle stream #%d: a packet that does not convert is left out (%s)", self.index, e)
            self.damaged += 1
            return []
        if converted is None:
            return []
        shown_ms = converted.duration   # the encoder gives the event's length in milliseconds
        converted.pts = converted.dts = packet.pts
        converted.time_base = packet.time_base
        converted.duration = packet.duration or int(round(shown_ms / 1000 / packet.time_base))
        converted.stream = self.out
        return [converted]
