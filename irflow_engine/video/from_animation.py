"""An animated image (GIF, APNG, animated WebP, AVIF sequence) restored into a video file.

Pillow reads the animation as `irflow restore` does for an animated output (`animation.py`: whole
frames, composed by the file's disposal rules, and each frame's duration; FFmpeg reads neither
animated WebP nor AVIF sequences). The frames go into a temporary lossless clip (raw RGB in
Matroska, timed in milliseconds; BGRA when the animation has transparency), which `restore_video`
restores and encodes like any other input: each frame is shown for its duration, and the video codec
is the output container's usual one (H.264; VP9 for WebM) unless `codec=` says otherwise. The
alpha channel is kept where that codec stores one (VP9; ProRes or PNG in .mov, FFV1 in .mkv), and a
warning says when it is not (H.264).
"""

from __future__ import annotations

import logging
import tempfile
from fractions import Fraction
from pathlib import Path

import numpy as np

from ..animation import Animation, read_animation
from .encode import find_encoder, first_video_encoder
from .errors import VideoError

log = logging.getLogger(__name__)

MS = Fraction(1, 1000)


def write_raw_clip(path, animation: Animation) -> None:
    """The frames of `animation` as raw RGB (BGRA with its alpha) video in Matroska, each at its start
    time in ms and with its duration (so a long last frame stays long; NUT keeps no durations).
    Matroska takes raw RGB only in its VFW mode."""
    import av

    h, w = animation.frames[0].shape[:2]
    alphas = animation.alphas or [None] * len(animation.frames)
    fmt = "bgra" if animation.alphas is not None else "bgr24"   # VFW's raw RGB is BGR
    with av.open(str(path), "w", format="matroska", options={"allow_raw_vfw": "1"}) as c:
        durations = sorted(animation.durations)
        s = c.add_stream("rawvideo", rate=Fraction(1000, max(durations[len(durations) // 2], 1)))
        s.width, s.height, s.pix_fmt = w, h, fmt
        s.time_base = s.codec_context.time_base = MS
        t = 0
        for rgb, alpha, duration in zip(animation.frames, alphas, animation.durations):
            bgr = rgb[..., ::-1] if alpha is None else np.dstack([rgb[..., ::-1], alpha])
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(bgr), format=fmt)
            frame.pts, frame.time_base = t, MS
            for packet in s.encode(frame):
                packet.duration = duration
                c.mux(packet)
            t += duration
        c.mux(s.encode(None))


def usual_video_encoder(folder: Path, suffix: str) -> str:
    """libx264 where a `suffix` file holds H.264, else its container's own codec's encoder."""
    import av

    probe = Path(folder) / f"probe{suffix}"
    try:
        container = av.open(str(probe), "w")
    except ValueError:
        raise VideoError(f"cannot tell a container format from the suffix {suffix!r}: use one such as .mp4, "
                         ".mkv or .webm") from None
    try:
        codec = first_video_encoder(container, ("libx264", container.default_video_codec))
        if codec is not None:
            return codec.name
    finally:
        try:
            container.close()
        except av.FFmpegError:   # nothing was written: the muxer may refuse an empty file
            pass
        probe.unlink(missing_ok=True)
    raise VideoError(f"a {suffix} file holds neither H.264 nor {container.default_video_codec}: choose codec=")


def restore_animation_video(engine, src, dst, **options):
    """Restore the animated image `src` into the video file `dst`; options and report as `restore_video`."""
    from .restore import check_paths, restore_video

    src, dst = check_paths(src, dst, bool(options.get("overwrite")))
    animation = read_animation(src)
    # Beside the output (where its bytes are expected), hidden: not a small /tmp.
    dst.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".irflow-animation-", dir=dst.parent) as folder:
        clip = Path(folder) / f"{src.name}.mkv"   # warnings about the clip then name the animation's file
        write_raw_clip(clip, animation)
        codec = options.pop("codec", None) or usual_video_encoder(Path(folder), dst.suffix)
        h, w = animation.frames[0].shape[:2]
        # VP9 codes 4:2:0 at odd sizes, and its alpha in 4:2:0 only (libvpx-vp9 refuses yuva444p).
        vp9_alpha = codec == "libvpx-vp9" and animation.alphas is not None
        if (h % 2 or w % 2) and not options.get("pix_fmt") and not vp9_alpha:
            formats = find_encoder(codec).video_formats
            names = {f.name for f in formats} if formats else None
            # 4:2:0 needs an even size (x264 refuses odd ones); 4:4:4 keeps every pixel's colour.
            full = next((name for name in ("yuva444p", "yuv444p")[0 if animation.alphas is not None else 1:]
                         if names is None or name in names), None)
            if full is not None:
                log.warning("%s: %dx%d is an odd size, so the video is 4:4:4 (%s), which some players "
                            "(browsers) do not show; an even-sized animation gives 4:2:0", src.name, w, h, full)
                options["pix_fmt"] = full
        # No B-frames: MP4 gives the last frame in decoding order the remaining length, so the closing
        # pause of an animation (its last frame's long duration) needs that frame to be decoded last.
        options["encoder_options"] = {"bf": "0", **(options.get("encoder_options") or {})}
        return restore_video(engine, clip, dst, codec=codec, **options)
