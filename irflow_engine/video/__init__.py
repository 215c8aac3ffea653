"""Video restoration: files (`restore_video`), frame streams (`stream`) and raw frame pipes.

Data flows decode -> restore -> encode through threads joined by bounded queues
(`pipeline.run_ordered`); `transfer` decides where frames are converted and how they reach the
device (pinned buffers and side streams on CUDA); `formats` maps decoder pixel formats and colour
tags onto `irflow_engine.pixfmt`; `alpha` and `captions` carry an alpha plane and closed captions
past the network; `decode` / `encode` wrap PyAV; `muxers` knows what each output container holds,
`audio` re-encodes the sound it cannot and `subtitles` converts text subtitles; `restore` writes
files safely; `from_animation` / `to_animation` turn animated images into videos and back (`tonemap`
maps HDR to their sRGB); `streaming` restores iterables of frames; `rawpipe` reads and writes FFmpeg
rawvideo; `cli` is `irflow restore` for videos and pipes; `synth` makes test clips.
"""

from .errors import TruncatedVideoError, UnsupportedPixelFormatError, VideoError
from .rawpipe import RawPipeReport, raw_layout, run_raw_pipe
from .report import VideoReport
from .restore import VideoOptions, restore_video
from .streaming import stream

__all__ = ["restore_video", "stream", "run_raw_pipe", "raw_layout", "VideoOptions", "VideoReport",
           "RawPipeReport", "VideoError", "UnsupportedPixelFormatError", "TruncatedVideoError"]
