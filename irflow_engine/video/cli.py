"""`irflow restore` for video files and raw frame pipes (the image path stays in `irflow_engine.cli`)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .. import pixfmt
from ..tiling import DEFAULT_OVERLAP
from .errors import VideoError

VIDEO_SUFFIXES = (".mp4", ".mkv", ".mov", ".m4v", ".avi", ".webm", ".ts", ".mts", ".m2ts", ".mpg", ".mpeg",
                  ".flv", ".wmv", ".ogv", ".nut", ".mxf", ".3gp", ".y4m")


def add_video_arguments(p: argparse.ArgumentParser) -> None:
    """The options of `irflow restore` that concern videos, raw pipes and tiling."""
    g = p.add_argument_group("videos and raw pipes")
    g.add_argument("--codec", help="video encoder: libx264, libx265, ffv1, libvpx-vp9, ... (default: the input's codec)")
    g.add_argument("--crf", type=int, help="constant quality for x264/x265/vp9/av1 (default: 18 for x264, 20 for x265)")
    g.add_argument("--preset", help="encoder speed preset for x264/x265/svt-av1 (default: the encoder's)")
    g.add_argument("--pix-fmt", dest="pix_fmt",
                   help="videos: output pixel format (default: like the input, same bit depth); raw pipes: the "
                        f"frames' format, one of {', '.join(pixfmt.FORMATS)}, rgb48le")
    g.add_argument("--raw-size", metavar="WxH", help="raw pipes (input '-'): the frame size")
    g.add_argument("--matrix", choices=pixfmt.MATRICES, default="bt709", help="raw YUV frames: colour matrix (default bt709)")
    g.add_argument("--range", dest="yuv_range", choices=pixfmt.RANGES, default="limited",
                   help="raw YUV frames: code range (default limited)")
    g.add_argument("--no-progress", action="store_true", help="no progress bar")
    t = p.add_argument_group("tiling (large frames)")
    t.add_argument("--tile", type=int, default=None,
                   help="restore in overlapping tiles of at most TILE×TILE pixels (default: whole frames; "
                        "on CUDA out-of-memory the engine retries once in 512-pixel tiles)")
    t.add_argument("--tile-overlap", type=int, default=DEFAULT_OVERLAP,
                   help=f"pixels shared by neighbouring tiles, blended with feathered weights (default {DEFAULT_OVERLAP})")


def is_video_request(args) -> bool:
    """True for `irflow restore` calls this module handles: a video file, an animated image written as
    a video, or '-' (raw stdin)."""
    from ..animation import is_animation

    return (args.input == "-" or Path(args.input).suffix.lower() in VIDEO_SUFFIXES
            or (Path(args.output).suffix.lower() in VIDEO_SUFFIXES and is_animation(args.input)))


def cmd_restore_video(args, build_engine) -> int:
    """Run `irflow restore` on a video file or a raw pipe; `build_engine(args)` makes the Engine."""
    if args.input == "-":
        return _raw_pipe(args, build_engine)
    if args.output == "-":
        raise VideoError("writing a video file to stdout is not supported: give an output file, or use a raw "
                         "pipe (input '-' with --raw-size and --pix-fmt)")
    from .restore import check_paths

    src, dst = check_paths(args.input, args.output, args.overwrite)  # fail before loading the model
    engine = build_engine(args)
    import av

    try:
        report = engine.restore_video(src, dst, codec=args.codec, crf=args.crf, preset=args.preset,
                                      pix_fmt=args.pix_fmt, overwrite=args.overwrite, tile=args.tile,
                                      tile_overlap=args.tile_overlap, batch=args.max_batch,
                                      progress=not args.no_progress)
    except KeyboardInterrupt:
        print(f"irflow: interrupted; {dst} was not written (the partial file was removed)", file=sys.stderr)
        return 130
    except av.FFmpegError as e:
        raise VideoError(f"FFmpeg failed while writing {dst}: {e}") from None
    print(f"irflow: wrote {dst}: {report.summary()}", file=sys.stderr)
    return 0


def _raw_pipe(args, build_engine) -> int:
    from .rawpipe import parse_size, raw_layout, run_raw_pipe

    if args.output != "-":
        raise VideoError("raw input ('-') writes raw frames to stdout: pass -o -")
    if not args.raw_size or not args.pix_fmt:
        raise VideoError("raw input ('-') needs --raw-size WxH and --pix-fmt (e.g. rgb24 or yuv420p)")
    width, height = parse_size(args.raw_size)
    layout = raw_layout(width, height, args.pix_fmt, args.matrix, args.yuv_range)
    if sys.stdout.isatty():
        raise VideoError("stdout is a terminal: pipe the raw frames into a program (e.g. ffmpeg -f rawvideo -i -)")
    engine = build_engine(args)
    try:
        report = run_raw_pipe(engine, sys.stdin.buffer, sys.stdout.buffer, layout, batch=args.max_batch,
                              tile=args.tile, tile_overlap=args.tile_overlap, progress=not args.no_progress)
    except KeyboardInterrupt:
        print("irflow: interrupted", file=sys.stderr)
        return 130
    if report.ended == "output-closed":
        # Later flushes of stdout (at exit) would fail again: send them nowhere.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    ending = report.ending()
    if ending:
        print(f"irflow: {ending}", file=sys.stderr)
    print(f"irflow: {report.summary()}", file=sys.stderr)
    return 0
