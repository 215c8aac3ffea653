"""The alpha (transparency) plane of video frames: which formats carry one, reading it from a decoded
frame, writing it into an encoder's frame, and the decoder that reads VP8/VP9 alpha in WebM.

The network restores colour only. A video with alpha (ProRes 4444, FFV1, PNG or QuickTime
Animation in MOV, VP9 in WebM) has its alpha plane read from each decoded frame, carried beside
the batch unchanged, and written into the output frame after its colour conversion, rescaled only
when the output stores another depth (`rescale`: exact for equal depths, 8 -> 16 bits is ×257).
The planes are read and written here, not by swscale: its alpha conversion is off by one level in
places (rgba -> yuva420p, measured 2026-11-28). `formats.FormatPlan.output_candidates` puts
formats with alpha first for such inputs, so an encoder that stores alpha keeps it.
"""

from __future__ import annotations

import functools
import logging
from typing import Optional, Tuple

import numpy as np

log = logging.getLogger(__name__)

# Packed formats with alpha: (samples per pixel, position of alpha among them).
PACKED = {"rgba": (4, 3), "bgra": (4, 3), "argb": (4, 0), "abgr": (4, 0), "ya8": (2, 1),
          "rgba64le": (4, 3), "rgba64be": (4, 3), "bgra64le": (4, 3), "bgra64be": (4, 3),
          "ya16le": (2, 1), "ya16be": (2, 1)}
# Encoders whose formats with alpha cannot be used here: this FFmpeg's libx265 lists yuva420p but
# refuses to open with it (an x265 built without alpha; measured 2026-11-28).
NO_ALPHA_ENCODERS = ("libx265",)
# Options an encoder needs to store alpha: FFmpeg's VP8 encoder refuses alpha with alt-ref frames.
ALPHA_OPTIONS = {"libvpx": {"auto-alt-ref": "0"}}
# WebM's VP8/VP9 store alpha as a second stream in each block; FFmpeg's own decoders skip it and
# only libvpx's read it.
ALPHA_DECODERS = {"vp8": "libvpx", "vp9": "libvpx-vp9"}


@functools.lru_cache(maxsize=None)
def _alpha_plane(name: str) -> Optional[Tuple[int, int]]:
    """(plane, bits) of pixel format `name`'s alpha samples, or None (no alpha, or no such format);
    asked once per frame, so remembered."""
    import av

    try:
        components = av.VideoFormat(name).components
    except (ValueError, TypeError):
        return None
    return next(((c.plane, c.bits) for c in components if c.is_alpha), None)


def alpha_bits(name: str) -> int:
    """Bits per alpha sample of pixel format `name`; 0 when it has no alpha."""
    found = _alpha_plane(name)
    return found[1] if found is not None else 0


def has_alpha(name: str) -> bool:
    return alpha_bits(name) > 0


def _dtype(name: str, bits: int) -> np.dtype:
    if bits <= 8:
        return np.dtype(np.uint8)
    return np.dtype(">u2" if name.endswith("be") else "<u2")


def _view(frame) -> np.ndarray:
    """A height × width view of `frame`'s alpha samples (writable: it is the frame's memory)."""
    from .avframes import plane_view   # avframes needs formats, which needs this module

    name = frame.format.name
    found = _alpha_plane(name)
    if found is None:
        raise ValueError(f"{name} frames have no alpha")
    plane, bits = found
    dtype = _dtype(name, bits)
    h, w = frame.height, frame.width
    if name in PACKED:
        samples, at = PACKED[name]
        return plane_view(frame.planes[0], dtype, h, w * samples).reshape(h, w, samples)[..., at]
    return plane_view(frame.planes[plane], dtype, h, w)


def alpha_dtype(bits: int) -> np.dtype:
    """The array type alpha of `bits` is carried in (uint8, or uint16 for deeper alpha)."""
    return np.dtype(np.uint8 if bits <= 8 else np.uint16)


def read_alpha(frame, out: Optional[np.ndarray] = None) -> np.ndarray:
    """`frame`'s alpha plane (height × width, its format's depth, native byte order), into `out` if given."""
    view = _view(frame)
    if out is None:
        out = np.empty(view.shape, alpha_dtype(alpha_bits(frame.format.name)))
    out[...] = view
    return out


def rescale(alpha: np.ndarray, bits: int, to_bits: int) -> np.ndarray:
    """Alpha of `bits` as `to_bits` (rounded to nearest: 255 -> 65535 -> 255 and 1023 -> 4095 -> 1023)."""
    if bits == to_bits:
        return alpha
    top, to_top = (1 << bits) - 1, (1 << to_bits) - 1
    scaled = (alpha.astype(np.uint64) * (2 * to_top) + top) // (2 * top)
    return scaled.astype(alpha_dtype(to_bits))


def write_alpha(frame, alpha: np.ndarray, bits: int) -> None:
    """Set `frame`'s alpha plane to `alpha` (of `bits`), rescaled to the frame's alpha depth."""
    _view(frame)[...] = rescale(alpha, bits, alpha_bits(frame.format.name))


def marks_alpha(stream) -> bool:
    """Matroska's AlphaMode on `stream`: its blocks carry alpha. The demuxer names it alpha_mode, or
    ALPHA_MODE where a tag of that name was written too (FFmpeg's tag names ignore case)."""
    return any(k.lower() == "alpha_mode" and v.strip() == "1" for k, v in stream.metadata.items())


def copy_alpha_mode(src_stream, dst_stream) -> None:
    """Mark `dst_stream` as carrying alpha where `src_stream` is (a stream copied from a template keeps
    the blocks' alpha, but the muxer writes the mark only for yuva420p frames or this tag)."""
    if marks_alpha(src_stream):
        dst_stream.metadata["alpha_mode"] = "1"


def alpha_decoder(stream):
    """A libvpx decoder for a VP8/VP9 `stream` that stores alpha (WebM's alpha_mode), else None.
    Only 8-bit 4:2:0 alpha video is read this way (what browsers and FFmpeg's encoders make)."""
    import av

    cc = stream.codec_context
    name = ALPHA_DECODERS.get(cc.name)
    if name is None or not marks_alpha(stream) or not cc.format or cc.format.name != "yuv420p":
        return None
    try:
        decoder = av.CodecContext.create(name, "r")
    except (av.codec.codec.UnknownCodecError, ValueError):
        log.warning("the video's alpha channel cannot be read: this FFmpeg has no %s decoder", name)
        return None
    if cc.extradata:
        decoder.extradata = cc.extradata
    return decoder
