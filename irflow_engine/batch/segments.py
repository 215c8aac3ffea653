"""Long videos in parallel: split at keyframes (stream copy), restore the parts, join them.

`split_at_keyframes` copies the first video stream's packets into part files that each start at a
keyframe (no decoding, no re-encoding; closed GOPs, as encoders make by default).
`join_parts` muxes the restored parts' video packets, re-timed with the ORIGINAL video's
timestamps (one packet per frame, in order), together with the original's audio and subtitle
packets, into one file — so the result plays as one file with the input's frame count, timing and
audio. Parts are encoded without B-frames (`PART_ENCODER_OPTIONS`): every packet's decode time
equals its presentation time, so parts can be concatenated without reordering delays.
"""

from __future__ import annotations

import heapq
import itertools
import logging
from fractions import Fraction
from pathlib import Path
from typing import Iterator, List, Tuple

from ..atomic import atomic_path
from ..video.alpha import copy_alpha_mode
from ..video.decode import COPIED_TYPES, VideoSource, is_cover_art, kept_tags, main_video, open_input
from ..video.errors import VideoError
from ..video.muxers import copy_attachment, muxer_options

log = logging.getLogger(__name__)

PART_ENCODER_OPTIONS = {"bf": "0"}


def video_duration(path) -> float:
    """Seconds of the first video stream, as the video pipeline reads it; 0 if unknown."""
    source = VideoSource(path)
    try:
        return source.info.duration or 0.0
    finally:
        source.close()


def split_at_keyframes(src, folder, segment_seconds: float) -> List[Path]:
    """Copy `src`'s first video stream into parts of at least `segment_seconds`, each starting at a
    keyframe; returns the part files (same container as `src`) in order."""
    src, folder = Path(src), Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    parts: List[Path] = []
    out = ostream = None
    start = None
    with open_input(src) as c:
        vs = main_video(c, src)
        tb = vs.time_base
        try:
            for pkt in c.demux(vs):
                if pkt.pts is None and pkt.dts is None:
                    continue  # the demuxer's end-of-stream packet
                t = pkt.pts if pkt.pts is not None else pkt.dts
                if pkt.is_keyframe and (out is None or (t - start) * tb >= segment_seconds):
                    if out is not None:
                        out.close()
                    import av

                    parts.append(folder / f"part{len(parts):05d}{src.suffix}")
                    out = av.open(str(parts[-1]), mode="w")
                    ostream = out.add_stream_from_template(vs)
                    copy_alpha_mode(vs, ostream)
                    start = t
                if out is None:
                    raise VideoError(f"{src}: the video does not start with a keyframe; cannot split it")
                pkt.stream = ostream
                out.mux(pkt)
        finally:
            if out is not None:
                out.close()
    if not parts:
        raise VideoError(f"{src}: no video packets to split")
    return parts


def _video_timing(container) -> Tuple[List[int], List[int], Fraction]:
    """(pts in presentation order, durations, time base) of the first video stream's packets."""
    vs = main_video(container)
    rows = sorted((p.pts, p.duration or 0) for p in container.demux(vs) if p.pts is not None)
    return [r[0] for r in rows], [r[1] for r in rows], vs.time_base


def _parts_packets(parts) -> Iterator:
    for part in parts:
        for pkt in part.demux(part.streams.video[0]):
            if pkt.pts is not None or pkt.dts is not None:
                yield pkt


def join_parts(parts: List[Path], original, dst) -> int:
    """Write `dst`: the restored parts' video, timed like `original`, plus its audio/subtitles, tags and
    chapters.

    Returns the number of video frames written. The file appears only when complete.
    """
    import av

    dst = Path(dst)
    with open_input(original) as orig:
        pts, durations, tb = _video_timing(orig)
    with open_input(original) as orig:
        inputs = [open_input(p) for p in parts]
        try:
            with atomic_path(dst, suffix=dst.suffix) as tmp:
                out = av.open(tmp, mode="w", options=muxer_options(dst.suffix, dict(orig.metadata)))
                try:
                    vout = out.add_stream_from_template(inputs[0].streams.video[0])
                    vout.time_base = tb
                    for k, v in kept_tags(main_video(orig), orig).items():
                        vout.metadata[k] = v
                    copy_alpha_mode(inputs[0].streams.video[0], vout)   # the parts' own: kept alpha or not
                    copied = [s for s in orig.streams if s.type in COPIED_TYPES]
                    covers = [f"#{s.index}" for s in orig.streams if is_cover_art(s)]
                    if covers:
                        log.warning("%s: the cover picture (stream %s) is not kept by a split restore",
                                    Path(original).name, ", ".join(covers))
                    copies = {}
                    for s in copied:
                        if s.type == "attachment":
                            copy_attachment(out, s, Path(original).name, dst.suffix)
                            continue
                        copies[s.index] = out.add_stream_from_template(s)
                        for k, v in s.metadata.items():
                            copies[s.index].metadata[k] = v
                    copied = [s for s in copied if s.type != "attachment"]
                    for k, v in orig.metadata.items():
                        out.metadata[k] = v
                    if orig.chapters():
                        out.set_chapters(orig.chapters())
                    frames = _mux_all(out, vout, copies, _parts_packets(inputs),
                                      orig.demux(*copied) if copied else iter(()), pts, durations, tb)
                finally:
                    out.close()
                if frames != len(pts):
                    raise VideoError(f"joined {frames} frames but {original} has {len(pts)}: a part lost frames")
        finally:
            for c in inputs:
                c.close()
    return frames


def _mux_all(out, vout, copies, video, others, pts, durations, tb) -> int:
    """Interleave re-timed video packets and copied packets by time and mux them; returns frames."""
    count = itertools.count()
    frames = 0

    def retimed():
        nonlocal frames
        for pkt in video:
            if frames >= len(pts):
                raise VideoError(f"the restored parts hold more frames than the original's {len(pts)}")
            pkt.pts = pkt.dts = pts[frames]
            pkt.time_base = tb
            if durations[frames]:
                pkt.duration = durations[frames]
            frames += 1
            yield (float(pkt.pts * tb), next(count), pkt, vout)

    def copied():
        for pkt in others:
            t = pkt.dts if pkt.dts is not None else pkt.pts
            if t is None:
                continue
            yield (float(t * pkt.time_base), next(count), pkt, copies[pkt.stream.index])

    for _, _, pkt, stream in heapq.merge(retimed(), copied()):
        pkt.stream = stream
        out.mux(pkt)
    return frames
