"""`restore_video`: a video file in, a restored video file out, written safely.

The output is written to a hidden temporary file in the destination folder and renamed over the
destination only when everything succeeded; on any error or Ctrl-C the temporary file is removed.
The input is only ever opened for reading.
"""

from __future__ import annotations

import dataclasses
from contextlib import closing
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Mapping, Optional, Tuple

from ..atomic import atomic_path
from ..tiling import DEFAULT_OVERLAP
from .captions import warn_dropped
from .decode import DecodedBatch, VideoSource
from .encode import EncodeOptions, VideoSink
from .errors import VideoError
from .pipeline import StageClock, StopFlag, run_ordered
from .report import Progress, VideoReport
from .transfer import make_io


@dataclass(frozen=True)
class VideoOptions:
    """Options of `restore_video` (keyword arguments of the same names).

    codec / crf / preset / pix_fmt / encoder_options: the encoder (None: like the input, see
    `irflow_engine.video.encode`). overwrite: replace an existing `dst`. tile / tile_overlap:
    restore in feathered tiles (see `irflow_engine.tiling`). batch: frames per network call
    (default: the engine's max_batch). queue_depth: batches queued between stages. progress: a
    tqdm bar on stderr.
    """

    codec: Optional[str] = None
    crf: Optional[int] = None
    preset: Optional[str] = None
    pix_fmt: Optional[str] = None
    encoder_options: Optional[Mapping[str, str]] = None
    overwrite: bool = False
    tile: Optional[int] = None
    tile_overlap: int = DEFAULT_OVERLAP
    batch: Optional[int] = None
    queue_depth: int = 2
    progress: bool = True

    @classmethod
    def from_kwargs(cls, options: dict) -> "VideoOptions":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise TypeError(f"unknown video option(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        return cls(**options)

    @property
    def encode(self) -> EncodeOptions:
        return EncodeOptions(self.codec, self.crf, self.preset, self.pix_fmt, self.encoder_options)


def check_paths(src, dst, overwrite: bool) -> Tuple[Path, Path]:
    """The input and the final output path; errors for a missing input, dst == src, an existing dst."""
    from ..animation import ANIMATION_SUFFIXES
    from ..images import IMAGE_SUFFIXES

    src, dst = Path(src), Path(dst)
    if not src.exists():
        raise VideoError(f"input {src} does not exist")
    if dst.suffix.lower() in IMAGE_SUFFIXES and dst.suffix.lower() not in ANIMATION_SUFFIXES:
        raise VideoError(f"a {dst.suffix} file holds one picture, not a video: write a video (.mp4, .mkv, ...) or "
                         f"an animated image ({', '.join(ANIMATION_SUFFIXES)}); for one frame, take it out first "
                         f"(e.g. ffmpeg -i {src.name} -frames:v 1 frame.png) and restore that")
    if dst.is_dir():
        dst = dst / src.name
    if dst.exists() and dst.resolve() == src.resolve():
        raise VideoError("the output is the input: choose another path so the input is never touched")
    if dst.exists() and not overwrite:
        raise VideoError(f"output {dst} exists; pass --overwrite (overwrite=True) to replace it")
    return src, dst


def restore_video(engine, src, dst, **options) -> VideoReport:
    """Restore the video file `src` into `dst` (its suffix picks the container); returns a report.

    Keeps frame count, timestamps, rate, resolution, colour tags, bit depth, chroma resolution, the
    alpha channel and closed captions (where the output's codec stores them, `alpha.py`,
    `captions.py`), the video stream's tags (start timecode included) and display rotation; copies audio and subtitle
    streams unchanged where `dst`'s container holds them, else re-encodes the audio, converts text
    subtitles and leaves the rest out (with a warning). An animated image (GIF, APNG, WebP, AVIF) is
    restored into a video too (`from_animation.py`), and a video into an animated image
    (`to_animation.py`). Options: `VideoOptions`.
    """
    from ..animation import ANIMATION_SUFFIXES, is_animation

    opts = VideoOptions.from_kwargs(options)
    if Path(src).suffix.lower() in ANIMATION_SUFFIXES and is_animation(src):
        from .from_animation import restore_animation_video

        return restore_animation_video(engine, src, dst, **options)
    if Path(dst).suffix.lower() in ANIMATION_SUFFIXES:
        from .to_animation import restore_video_to_animation

        return restore_video_to_animation(engine, src, dst, **options)
    src, dst = check_paths(src, dst, opts.overwrite)
    source = VideoSource(src)
    try:
        with atomic_path(dst, suffix=dst.suffix) as tmp:
            sink = VideoSink(tmp, source.info, opts.encode, source.copied, dict(source.container.metadata),
                             source.container.chapters())
            try:
                report = _run(engine, source, sink, opts)
            except BaseException:
                sink.abort()
                raise
    finally:
        source.close()
    report.output = dst
    return report


def _run(engine, source: VideoSource, sink: VideoSink, opts: VideoOptions) -> VideoReport:
    info = source.info
    batch = opts.batch or engine.config.max_batch
    stop = StopFlag()
    clocks = {name: StageClock(name) for name in ("decode", "convert", "restore", "encode")}
    restore = partial(engine.restore_batch, tile=opts.tile, tile_overlap=opts.tile_overlap)
    io = make_io(info.layout, restore, engine.device, clocks["restore"], batch=batch, depth=opts.queue_depth,
                 stop=stop, convert_clock=clocks["convert"], out_layout=sink.layout)

    def work(b: DecodedBatch):
        return b, (io.work(b.raw, b.n) if b.n else None)

    report = VideoReport(width=info.width, height=info.height, stages=clocks)
    progress = Progress(info.frames, opts.progress)
    try:
        batches = source.batches(batch, io.alloc, clocks["decode"], alpha=sink.keeps_alpha,
                                 side_data=sink.writes_captions)
        with closing(run_ordered(batches, work, opts.queue_depth, stop)) as results:
            for b, pending in results:
                raw = io.collect(pending) if pending is not None else None
                with clocks["encode"].timed(b.n):
                    sink.write(raw, b.pts, b.durations, b.packets, b.alpha, b.carriers)
                if pending is not None:
                    io.recycle(pending)
                report.frames += b.n
                progress.update(b.n)
        with clocks["encode"].timed():
            sink.close()
        if source.captions_from is not None and not info.captions and not sink.writes_captions:
            warn_dropped(info.path.name, sink.codec, source.captions_from)   # captions that began late
    finally:
        report.seconds = progress.close()
    return report
