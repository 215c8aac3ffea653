"""16-bit PNG and TIFF files through FFmpeg's image codecs (PyAV): Pillow reads 16-bit colour
images as 8-bit and cannot write them, which would quietly drop 8 bits of a photographer's TIFF.

`is_16bit(path)` reads the header only; `decode` gives uint16 H×W×3 RGB and, when the file has
one, a uint16 H×W alpha (grey images expanded to RGB); `encode` writes uint16 RGB (and alpha) as a
16-bit PNG (big-endian samples, as the format stores them) or TIFF. An RGB ICC profile is embedded
in PNGs as an iCCP chunk (FFmpeg's encoder takes it only from frame side data, which PyAV cannot
set); TIFFs are written without one.
"""

from __future__ import annotations

import struct
from fractions import Fraction
import zlib
from pathlib import Path
from typing import Optional, Tuple

import numpy as np

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
TIFF_SUFFIXES = (".tif", ".tiff")


def is_16bit(path, pillow_image=None) -> bool:
    """True for a PNG with 16-bit samples or a TIFF with 16 bits per sample (per its header)."""
    suffix = Path(path).suffix.lower()
    if suffix == ".png":
        with open(path, "rb") as f:
            head = f.read(26)
        # Signature, then the IHDR chunk: length, type, width, height, bit depth, colour type.
        return len(head) == 26 and head[:8] == PNG_SIGNATURE and head[12:16] == b"IHDR" and head[24] == 16
    if suffix in TIFF_SUFFIXES and pillow_image is not None:
        bits = getattr(pillow_image, "tag_v2", {}).get(258)   # BitsPerSample
        bits = bits if isinstance(bits, tuple) else (bits,)
        return bool(bits) and all(b == 16 for b in bits)
    return False


def decode(path) -> Tuple[np.ndarray, Optional[np.ndarray]]:
    """uint16 H×W×3 RGB and, if the image has one, uint16 H×W alpha, of a 16-bit PNG or TIFF."""
    import av

    codec = "png" if Path(path).suffix.lower() == ".png" else "tiff"
    data = Path(path).read_bytes()
    ctx = av.CodecContext.create(codec, "r")
    try:
        frames = ctx.decode(av.Packet(data)) + ctx.decode(None)
    except av.FFmpegError as e:
        raise ValueError(f"FFmpeg cannot decode it as a 16-bit {codec.upper()}: {e}") from None
    if not frames:
        raise ValueError(f"FFmpeg found no image in it ({codec.upper()})")
    frame = frames[0]
    has_alpha = frame.format.name.startswith(("rgba", "ya", "bgra", "gbrap"))
    if has_alpha:
        rgba = frame.to_ndarray(format="rgba64le")
        return np.ascontiguousarray(rgba[..., :3]), np.ascontiguousarray(rgba[..., 3])
    return np.ascontiguousarray(frame.to_ndarray(format="rgb48le")), None


def encode(path, rgb: np.ndarray, alpha: Optional[np.ndarray] = None,
           icc_profile: Optional[bytes] = None) -> bytes:
    """The bytes of a 16-bit PNG or TIFF (by `path`'s suffix) of uint16 `rgb` (and `alpha`)."""
    import av

    png = Path(path).suffix.lower() == ".png"
    pixels = rgb if alpha is None else np.concatenate([rgb, alpha[..., None]], axis=2)
    fmt = ("rgb48le" if alpha is None else "rgba64le")
    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(pixels, dtype=np.uint16), format=fmt)
    if png:
        frame = frame.reformat(format=fmt.replace("le", "be"))
    ctx = av.CodecContext.create("png" if png else "tiff", "w")
    ctx.width, ctx.height, ctx.pix_fmt = rgb.shape[1], rgb.shape[0], frame.format.name
    ctx.time_base = Fraction(1, 1)
    frame.pts = 0
    data = b"".join(bytes(p) for p in list(ctx.encode(frame)) + list(ctx.encode(None)))
    if png and icc_profile:
        data = with_iccp(data, icc_profile)
    return data


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def with_iccp(png: bytes, profile: bytes) -> bytes:
    """`png` with an iCCP chunk (the profile, zlib-compressed) right after IHDR, as the PNG
    specification places it (before PLTE and IDAT)."""
    if png[:8] != PNG_SIGNATURE or png[12:16] != b"IHDR":
        raise ValueError("not a PNG stream")
    end_of_ihdr = 8 + 12 + struct.unpack(">I", png[8:12])[0]
    iccp = _chunk(b"iCCP", b"ICC profile\x00\x00" + zlib.compress(profile))
    return png[:end_of_ihdr] + iccp + png[end_of_ihdr:]


# EXIF orientation (tag 274) -> the numpy operations that make the image upright, as Pillow's
# ImageOps.exif_transpose does.
def orient(a: np.ndarray, orientation: int) -> np.ndarray:
    """`a` (H×W[×C]) turned upright for EXIF `orientation` 1-8 (other values: unchanged)."""
    ops = {
        2: lambda x: x[:, ::-1],
        3: lambda x: x[::-1, ::-1],
        4: lambda x: x[::-1],
        5: lambda x: np.swapaxes(x, 0, 1),
        6: lambda x: np.swapaxes(x, 0, 1)[:, ::-1],
        7: lambda x: np.swapaxes(x, 0, 1)[::-1, ::-1],
        8: lambda x: np.swapaxes(x, 0, 1)[::-1],
    }
    op = ops.get(int(orientation or 1))
    return a if op is None else np.ascontiguousarray(op(a))
