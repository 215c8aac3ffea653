"""Closed captions carried through a restore: CEA-608/708 caption data (ATSC A/53) that H.264,
HEVC and MPEG-2 broadcasts carry inside the video stream, one packet per picture.

FFmpeg's decoders hand the captions on as each frame's side data, and its H.264 (libx264) and
MPEG-2 encoders write a frame's captions back into its picture. PyAV cannot attach side data to a new frame, but
a frame made by swscale from another keeps the other's side data: so the decoder's frame is
shrunk to a 2×2 `carrier` as it is decoded, travels with the batch, and is scaled back to the
output's size to become the frame the restored pixels are written into (`avframes.frame_from_slot`).
Other encoders drop captions; the output then says so (`CAPTION_ENCODERS`). An input counts as
captioned when its first two frames carry captions (`decode.probe_first_frame`), as a broadcast's
do (ATSC sends caption data, padding when silent, with every picture).
"""

from __future__ import annotations

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
