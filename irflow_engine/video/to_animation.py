"""A video restored into an animated image (GIF, APNG, animated WebP, AVIF sequence).

FFmpeg's image muxers take neither our frames' formats nor their timing, so the video is decoded
by `VideoSource` (the same colour conversion as a video restore), restored batch by batch, and the
frames are written by `animation.write_animation` (Pillow), each shown until the next one's time,
looping forever (what an animated image of a video clip is for), with the video's alpha channel
(at 8 bits) if it has one. HDR (PQ, HLG) and BT.2020 video is tone-mapped to the animation's sRGB
(`tonemap.py`), with a note saying so. An animation is held in memory (H·W·3 bytes per frame,
twice), so this is for short clips; the sound is not kept (a warning says so), and a rotated phone
video is turned upright.
"""

from __future__ import annotations

import logging
from functools import partial

import numpy as np
import torch

from ..animation import Animation, write_animation
from .alpha import rescale
from .decode import VideoSource
from .errors import VideoError
from .pipeline import StageClock
from .tonemap import mapping_for, to_srgb
from .report import Progress, VideoReport

log = logging.getLogger(__name__)

# Frames above which a warning says the animation is large (held in memory, big to write).
LARGE_ANIMATION_FRAMES = 1000


def restore_video_to_animation(engine, src, dst, **options) -> VideoReport:
    """Restore the video file `src` into the animated image `dst`; options as `restore_video`
    (the encoder ones do not apply and are refused)."""
    from .restore import VideoOptions, check_paths

    opts = VideoOptions.from_kwargs(options)
    if opts.codec or opts.crf is not None or opts.preset or opts.pix_fmt or opts.encoder_options:
        raise VideoError("codec, crf, preset, pix_fmt and encoder options apply to video outputs, not to an "
                         "animated image")
    src, dst = check_paths(src, dst, opts.overwrite)
    source = VideoSource(src)
    try:
        info = source.info
        if any(s.type in ("audio", "subtitle") for s in source.copied):
            log.warning("%s: only the pictures are kept: an animated %s holds no sound or subtitles",
                        src.name, dst.suffix)
        if info.frames and info.frames > LARGE_ANIMATION_FRAMES:
            log.warning("%s: %d frames become one animated image held in memory (%.1f GB); a video output "
                        "(.mp4, .webm) suits long clips", src.name, info.frames,
                        2 * info.frames * info.width * info.height * 3 / 1e9)
        mapping = mapping_for(info.colour)
        if mapping:
            log.warning("%s: %s for the 8-bit sRGB %s (a video output keeps it as it is)", src.name, mapping,
                        dst.suffix)
        layout = info.layout
        clock = StageClock("restore")
        restore = partial(engine.restore_batch, tile=opts.tile, tile_overlap=opts.tile_overlap)
        progress = Progress(info.frames, opts.progress)
        frames, alphas, times, last = [], [], [], 0
        try:
            for batch in source.batches(opts.batch or engine.config.max_batch, layout.empty, StageClock("decode"),
                                        alpha=True):
                if not batch.n:
                    continue
                with clock.timed(batch.n):
                    x = layout.to_tensor(batch.raw[:batch.n]).to(engine.device)
                    y = restore(x).clamp(0, 1)
                    if mapping:
                        y = to_srgb(y, info.colour)
                    y = y.mul(255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
                frames += [np.ascontiguousarray(_upright(f, info.rotation)) for f in y]
                if batch.alpha is not None:
                    alphas += [np.ascontiguousarray(_upright(rescale(a, info.plan.alpha_bits, 8), info.rotation))
                               for a in batch.alpha[:batch.n]]
                times += batch.pts
                last = batch.durations[-1]
                progress.update(batch.n)
        finally:
            seconds = progress.close()
    finally:
        source.close()
    if not frames:
        raise VideoError(f"{src}: no frames to write")
    times = sorted(times)
    # Whole milliseconds of each frame's start (rounded once, so 33.3 ms frames do not drift), and
    # the last frame's end.
    ms = [round(float(t * info.time_base) * 1000) for t in times + [times[-1] + last]]
    durations = [max(1, b - a) for a, b in zip(ms, ms[1:])]
    opaque = not alphas or all(a.min() == 255 for a in alphas)
    write_animation(dst, Animation(frames, durations, None if opaque else alphas, loop=0))
    report = VideoReport(width=info.width, height=info.height, stages={"restore": clock})
    report.frames, report.seconds, report.output = len(frames), seconds, dst
    return report


def _upright(rgb: np.ndarray, degrees: float) -> np.ndarray:
    """A frame turned as its display rotation says (degrees counter-clockwise, multiples of 90)."""
    turns = int(round(degrees / 90)) % 4
    return np.rot90(rgb, turns) if turns else rgb
