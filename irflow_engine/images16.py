"""16-bit PNG and TIFF files: Pillow reads 16-bit colour images as 8-bit and cannot write them,
which would quietly drop 8 bits of a photographer's TIFF.

PNG goes through FFmpeg's codec (PyAV), TIFF through tifffile. `is_16bit(path)` reads the header
only; `decode` gives uint16 H×W×3 RGB and, when the file has one, a uint16 H×W alpha (grey images
expanded to RGB, and said to be grey); `encode` writes uint16 RGB (and alpha) as a 16-bit PNG
(big-endian samples, as the format stores them) or a zlib-compressed TIFF, or their luma as a grey
one (`grey=True`: a grey scan stays grey). An ICC profile (a ProPhoto or Adobe RGB
export's; a grey one for grey files) is embedded in both: as an iCCP chunk in PNGs (FFmpeg's encoder takes a profile only
from frame side data, which PyAV cannot set), as the TIFF's ICC tag.
"""

from __future__ import annotations

import io
import logging
import struct
import zlib
from fractions import Fraction
from pathlib import Path
from typing import Optional, Tuple

import numpy as np

log = logging.getLogger(__name__)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
TIFF_SUFFIXES = (".tif", ".tiff")


def is_16bit(path) -> bool:
    """True for a PNG with 16-bit samples or a TIFF with 16 bits per sample (per its header)."""
    suffix = Path(path).suffix.lower()
    try:
        if suffix == ".png":
            with open(path, "rb") as f:
                head = f.read(26)
            # Signature, then the IHDR chunk: length, type, width, height, bit depth, colour type.
            return len(head) == 26 and head[:8] == PNG_SIGNATURE and head[12:16] == b"IHDR" and head[24] == 16
        if suffix in TIFF_SUFFIXES:
            import tifffile

            with tifffile.TiffFile(path) as tif:
                return tif.pages[0].bitspersample == 16
    except FileNotFoundError:
        raise
    except Exception:   # unreadable here: the general reader reports the file's problem
        return False
    return False


def decode(path) -> Tuple[np.ndarray, Optional[np.ndarray], Optional[bytes], int, bool]:
    """A 16-bit PNG or TIFF: uint16 H×W×3 RGB, uint16 H×W alpha (or None), the embedded ICC
    profile (or None), the EXIF/TIFF orientation (1-8; 1 when absent) and whether it is grey."""
    if Path(path).suffix.lower() in TIFF_SUFFIXES:
        return _decode_tiff(path)
    import av
    from PIL import Image

    with Image.open(path) as im:   # the header's profile and EXIF; FFmpeg gives the samples
        icc = im.info.get("icc_profile")
        try:
            orientation = int(im.getexif().get(274, 1))
        except Exception:   # unreadable EXIF: the pixels as stored
            orientation = 1
        size = (im.height, im.width)
    data = Path(path).read_bytes()
    ctx = av.CodecContext.create("png", "r")
    try:
        frames = ctx.decode(av.Packet(data)) + ctx.decode(None)
    except av.FFmpegError as e:
        raise ValueError(f"FFmpeg cannot decode it as a 16-bit PNG: {e}") from None
    if not frames:
        raise ValueError("FFmpeg found no image in it (PNG)")
    frame = frames[0]
    if frame.format.name.startswith(("rgba", "ya", "bgra", "gbrap")):
        rgba = frame.to_ndarray(format="rgba64le")
        rgb, alpha = np.ascontiguousarray(rgba[..., :3]), np.ascontiguousarray(rgba[..., 3])
    else:
        rgb, alpha = np.ascontiguousarray(frame.to_ndarray(format="rgb48le")), None
    if rgb.shape[:2] != size:
        raise ValueError(f"FFmpeg decoded {rgb.shape[1]}x{rgb.shape[0]} pixels, the header says {size[1]}x{size[0]}")
    return rgb, alpha, icc, orientation, frame.format.name.startswith(("gray", "ya"))


def _decode_tiff(path):
    import tifffile

    with tifffile.TiffFile(path) as tif:
        if len(tif.pages) > 1:
            log.warning("%s holds %d pages or frames; only the first is restored", path, len(tif.pages))
        page = tif.pages[0]
        a = page.asarray()
        photometric, planar = int(page.photometric), int(page.planarconfig)
        icc = page.tags.get("InterColorProfile")
        orientation = page.tags.get("Orientation")
        icc = bytes(icc.value) if icc is not None else None
        orientation = int(orientation.value) if orientation is not None else 1
    if photometric not in (1, 2):   # MINISBLACK, RGB
        raise ValueError(f"16-bit TIFF with photometric interpretation {photometric} is not supported "
                         "(grey or RGB are)")
    if a.ndim == 3 and planar == 2:   # SEPARATE: samples first
        a = np.moveaxis(a, 0, -1)
    if a.ndim == 2:
        a = a[..., None]
    if a.ndim != 3 or a.dtype != np.uint16:
        raise ValueError(f"unexpected 16-bit TIFF layout {a.shape} {a.dtype}")
    colour = 3 if a.shape[2] >= 3 else 1
    rgb = np.repeat(a[..., :1], 3, axis=2) if colour == 1 else a[..., :3]
    alpha = a[..., colour] if a.shape[2] > colour else None
    return (np.ascontiguousarray(rgb), None if alpha is None else np.ascontiguousarray(alpha), icc, orientation,
            colour == 1)


def luma16(rgb: np.ndarray) -> np.ndarray:
    """uint16 H×W luma of uint16 RGB, with the ITU-R 601 weights Pillow's 8-bit grey uses."""
    y = rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114
    return np.clip(np.round(y), 0, 65535).astype(np.uint16)


def encode(path, rgb: np.ndarray, alpha: Optional[np.ndarray] = None,
           icc_profile: Optional[bytes] = None, grey: bool = False) -> bytes:
    """The bytes of a 16-bit PNG or TIFF (by `path`'s suffix) of uint16 `rgb` (and `alpha`); `grey`:
    of its luma (`luma16`)."""
    colour = luma16(rgb)[..., None] if grey else rgb
    pixels = colour if alpha is None else np.concatenate([colour, alpha[..., None]], axis=2)
    pixels = np.ascontiguousarray(pixels, dtype=np.uint16)
    if Path(path).suffix.lower() in TIFF_SUFFIXES:
        import tifffile

        out = io.BytesIO()
        tifffile.imwrite(out, pixels[..., 0] if pixels.shape[2] == 1 else pixels,
                         photometric="minisblack" if grey else "rgb", compression="zlib",
                         extrasamples=None if alpha is None else ["unassalpha"], iccprofile=icc_profile)
        return out.getvalue()
    import av

    if grey:   # PyAV makes no grey + alpha frame from an array: the big-endian bytes go in directly
        frame = _packed_frame(pixels, "gray16be" if alpha is None else "ya16be")
    else:
        fmt = "rgb48le" if alpha is None else "rgba64le"
        frame = av.VideoFrame.from_ndarray(pixels, format=fmt).reformat(format=fmt.replace("le", "be"))
    ctx = av.CodecContext.create("png", "w")
    ctx.width, ctx.height, ctx.pix_fmt = rgb.shape[1], rgb.shape[0], frame.format.name
    ctx.time_base = Fraction(1, 1)
    frame.pts = 0
    data = b"".join(bytes(p) for p in list(ctx.encode(frame)) + list(ctx.encode(None)))
    return with_iccp(data, icc_profile) if icc_profile else data


def _packed_frame(pixels: np.ndarray, fmt: str):
    """A PyAV frame of packed big-endian 16-bit samples (H×W×C uint16) in `fmt`, row by row."""
    import av

    h, w = pixels.shape[:2]
    frame = av.VideoFrame(w, h, fmt)
    plane = frame.planes[0]
    rows = np.zeros((h, plane.line_size), np.uint8)
    rows[:, :pixels[0].size * 2] = pixels.astype(">u2").reshape(h, -1).view(np.uint8)
    plane.update(rows.tobytes())
    return frame


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
