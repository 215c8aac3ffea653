"""Errors of the video pipeline; each message names the file or option and says what to do."""

from __future__ import annotations


class VideoError(ValueError):
    """A video that cannot be read or written, or options that cannot be honoured."""


class UnsupportedPixelFormatError(VideoError):
    """A decoded or requested pixel format the pipeline does not convert."""


class TruncatedVideoError(VideoError):
    """The input ended before the frames its header announces (cut short or corrupt)."""
