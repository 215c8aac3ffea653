"""Closed captions carried through a restore: CEA-608/708 caption data (ATSC A/53) that H.264,
HEVC and MPEG-2 broadcasts carry inside the video stream, one packet per picture.

FFmpeg's decoders hand the captions on as each frame's side data, and its H.264 (libx264) and
MPEG-2 encoders write a frame's captions back into its picture. PyAV cannot attach side data to a new frame, but
a frame made by swscale from another keeps the other's side data: so the decoder's frame is
shrunk to a 2×2 `carrier` as it is decoded, travels with the batch, and is scaled back to the
output's size to become the frame the restored pixels are written into (`avframes.frame_from_slot`).
Only frames that carry captions get a carrier, so captions that begin late in a recording are
kept too, and uncaptioned video pays nothing. Other encoders drop captions; the output then says
so (`CAPTION_ENCODERS`, `warn_dropped`): at the start when the first two frames carry captions
(`decode.probe_first_frame`; a broadcast sends caption data, padding when silent, with every
picture), else when the decoder meets the first captioned frame.
"""

from __future__ import annotations

import logging
from typing import Optional

log = logging.getLogger(__name__)

# Encoders that write a frame's A/53 captions into the picture (measured 2026-11-28: libx265,
# libsvtav1 and libvpx-vp9 wrote none).
CAPTION_ENCODERS = ("libx264", "mpeg2video")


def has_captions(frame) -> bool:
    """The decoded frame carries A/53 closed captions."""
    import av

    try:
        return frame.side_data.get(av.sidedata.sidedata.Type.A53_CC) is not None
    except (AttributeError, KeyError):   # a PyAV without frame side data
        return False


def carrier(frame):
    """A 2×2 copy of the decoded `frame` that keeps its side data (captions) and time."""
    return frame.reformat(width=2, height=2)


def warn_dropped(name: str, codec: str, first_frame: Optional[int] = None) -> None:
    """Say that the input `name`'s captions (from `first_frame` on, when they begin late) are not kept
    because the output's `codec` cannot carry them."""
    where = f" (from frame {first_frame} on)" if first_frame else ""
    log.warning("%s: the closed captions (CEA-608/708 in the video stream)%s are not kept: the output's %s "
                "video cannot carry them (H.264, --codec libx264, and MPEG-2 can)", name, where, codec)
