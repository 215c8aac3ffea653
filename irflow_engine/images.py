"""Image files <-> numpy uint8 H×W×3 (Pillow; 16-bit PNG/TIFF also as uint16), with atomic writes.

Reading applies the EXIF orientation (a phone's portrait JPEG comes out upright, as viewers show
it) and keeps an RGB ICC profile, which writing embeds again (PNG, JPEG, TIFF, WebP, AVIF), so a
restored Display P3 or Adobe RGB photograph keeps its colours in colour-managed viewers; the rest of
the EXIF block (camera, date taken, GPS), the XMP packet, the resolution (a scan's dpi) and a PNG's
text chunks (a generator's "parameters") are written again too, without the orientation. The model
works on the stored values, whatever their colour space: 8-bit ones, or the 16-bit samples of a
16-bit PNG/TIFF (which Pillow would read as 8-bit; `images16` decodes and writes those).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np

from . import images16
from .atomic import atomic_path

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp", ".gif", ".avif")
ICC_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".avif")   # formats Pillow embeds a profile in
ALPHA_SUFFIXES = (".png", ".tif", ".tiff", ".webp", ".gif", ".avif")          # formats written with alpha
LOSSY_SUFFIXES = (".jpg", ".jpeg", ".webp", ".avif")                          # written at `quality`
GREY_ALPHA_SUFFIXES = (".png", ".tif", ".tiff")                                # formats with grey + alpha
EXIF_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".avif")  # formats written with EXIF
XMP_SUFFIXES = (".jpg", ".jpeg", ".webp", ".avif")                           # and with XMP (Pillow writes it)
DPI_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")             # and with a resolution (dpi)
SIXTEEN_BIT_SUFFIXES = (".png", ".tif", ".tiff")                       # 16-bit output (images16)

log = logging.getLogger(__name__)


class ImageFileError(ValueError):
    """An image file that cannot be read or written; the message names the file."""


def is_image_path(path) -> bool:
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def list_images(folder: Path) -> List[Path]:
    """Image files directly inside `folder`, sorted by name."""
    return sorted(p for p in Path(folder).iterdir() if p.is_file() and is_image_path(p))


@dataclass
class ImageFile:
    """What `load_image` reads: upright RGB pixels, the alpha channel, the RGB ICC profile, and for
    16-bit PNG/TIFF files the 16-bit samples too."""

    rgb: np.ndarray                        # uint8 H×W×3 (a 16-bit file's, rounded)
    alpha: Optional[np.ndarray] = None     # uint8 H×W, or None
    icc_profile: Optional[bytes] = None    # an ICC profile of an RGB colour space, or None
    rgb16: Optional[np.ndarray] = None     # uint16 H×W×3 of a 16-bit PNG/TIFF, else None
    alpha16: Optional[np.ndarray] = None   # its uint16 H×W alpha, or None
    exif: Optional[bytes] = None           # the EXIF block (camera, date, GPS), orientation removed
    xmp: Optional[bytes] = None            # the XMP packet (rating, keywords, edits), orientation removed
    dpi: Optional[Tuple[float, float]] = None   # print resolution (a scan's 600 dpi), if the file states one
    text: Dict[str, str] = field(default_factory=dict)   # a PNG's text chunks (a generator's "parameters")
    grey: bool = False                     # a grey (or black-and-white) image: written back grey

    @property
    def pixels(self) -> np.ndarray:
        """What to restore (`Engine.restore` takes both): the uint16 RGB of a 16-bit file, else the uint8."""
        return self.rgb if self.rgb16 is None else self.rgb16

    @property
    def alpha_to_write(self) -> Optional[np.ndarray]:
        """The alpha channel at the depth of `pixels`."""
        return self.alpha if self.rgb16 is None else self.alpha16

    @property
    def metadata(self) -> dict:
        """What `write_image` writes again besides the pixels: `write_image(path, rgb, alpha, **metadata)`."""
        return dict(icc_profile=self.icc_profile, exif=self.exif, xmp=self.xmp, dpi=self.dpi, text=self.text,
                    grey=self.grey)


def to_uint8(codes16: np.ndarray) -> np.ndarray:
    """uint16 codes -> uint8 (rounded: 257 · k maps to k)."""
    return ((codes16.astype(np.uint32) + 128) // 257).astype(np.uint8)


def rgb_icc_profile(profile: Optional[bytes], space: bytes = b"RGB ") -> Optional[bytes]:
    """`profile` if it is an ICC profile of an RGB colour space (header bytes 16–19 are 'RGB '; or of
    `space`, b"GRAY" for a grey image), else None: a grey or CMYK profile would mislabel RGB pixels."""
    if not profile or len(profile) < 128 or profile[16:20] != space:
        return None
    return bytes(profile)


def load_image(path) -> ImageFile:
    """Read an image file: RGB pixels (upright by its EXIF orientation), alpha, RGB ICC profile.

    Grey and palette images are expanded to RGB (a grey one is marked `grey`, to be written grey, with
    its grey profile). 16-bit PNG and TIFF files also give their 16-bit
    samples (`rgb16`, `alpha16`; `irflow_engine.images16`); other 16-bit images are scaled to 8 bits.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        if images16.is_16bit(path):
            return _load_16bit(path)
        with Image.open(path) as im:
            im.load()
            if im.mode == "F":
                raise ImageFileError(f"{path}: 32-bit floating-point samples are not supported (their scale is "
                                     "not defined); convert the image to 8 or 16 bits per sample")
            if getattr(im, "n_frames", 1) > 1:
                kept = (" (irflow restore keeps every frame when it writes .png, .webp, .gif or .avif)"
                        if im.format in ("PNG", "WEBP", "GIF", "AVIF") else "")
                log.warning("%s holds %d pages or frames; only the first is restored%s", path, im.n_frames, kept)
            icc = rgb_icc_profile(im.info.get("icc_profile"))
            is_png = im.format == "PNG"   # the upright copy below has no format
            try:
                im = ImageOps.exif_transpose(im)   # also drops the orientation tag from EXIF and XMP
            except Exception:   # unreadable EXIF: the pixels as stored, rather than no image at all
                pass
            exif, xmp = _metadata(im.info)
            if im.mode in ("I;16", "I;16B", "I;16L", "I"):
                arr = np.asarray(im, dtype=np.float64)
                peak = 65535.0 if im.mode.startswith("I;16") or arr.max() > 255 else 255.0
                grey = np.clip(np.round(arr / peak * 255.0), 0, 255).astype(np.uint8)
                return ImageFile(np.repeat(grey[..., None], 3, axis=2), grey=True)
            alpha = None
            if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
                rgba = np.asarray(im.convert("RGBA"))
                alpha = rgba[..., 3].copy()
                rgb = rgba[..., :3]
            else:
                rgb = np.asarray(im.convert("RGB"))
            text = {k: v for k, v in im.info.items() if isinstance(v, str)} if is_png else {}
            grey = im.mode in ("L", "LA", "1")
            if grey:   # its own grey profile, written with the grey pixels
                icc = rgb_icc_profile(im.info.get("icc_profile"), b"GRAY")
            return ImageFile(np.ascontiguousarray(rgb), alpha, icc, exif=exif, xmp=xmp, dpi=_dpi(im.info),
                             text=text, grey=grey)
    except FileNotFoundError:
        raise ImageFileError(f"{path}: no such file") from None
    except ImageFileError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise ImageFileError(f"{path}: cannot read image ({e})") from None


def _metadata(info: dict) -> Tuple[Optional[bytes], Optional[bytes]]:
    """The EXIF block and XMP packet in a Pillow image's `info` (PNG keeps XMP as a text chunk)."""
    exif = info.get("exif")
    xmp = info.get("xmp") or info.get("XML:com.adobe.xmp")
    exif = bytes(exif) if isinstance(exif, (bytes, bytearray)) and exif else None
    xmp = xmp.encode() if isinstance(xmp, str) else bytes(xmp) if isinstance(xmp, (bytes, bytearray)) else None
    return exif, xmp or None


def _dpi(info: dict) -> Optional[Tuple[float, float]]:
    """The horizontal and vertical resolution a file states (PNG stores it in metres: 599.9988 for 600)."""
    dpi = info.get("dpi")
    try:
        x, y = (round(float(v), 2) for v in dpi)
    except (TypeError, ValueError):
        return None
    return (x, y) if x > 0 and y > 0 else None


def _load_16bit(path) -> ImageFile:
    """A 16-bit PNG/TIFF (`images16`), turned upright by its orientation."""
    rgb16, alpha16, icc, orientation, grey = images16.decode(path)
    rgb16 = images16.orient(rgb16, orientation)
    alpha16 = None if alpha16 is None else images16.orient(alpha16, orientation)
    return ImageFile(to_uint8(rgb16), None if alpha16 is None else to_uint8(alpha16),
                     rgb_icc_profile(icc, b"GRAY" if grey else b"RGB "), rgb16, alpha16, grey=grey)


def read_image(path) -> Tuple[np.ndarray, Optional[np.ndarray]]:
    """Read an image as uint8 H×W×3 RGB (upright), plus its alpha channel (H×W uint8) if it has one."""
    image = load_image(path)
    return image.rgb, image.alpha


def write_image(path, rgb: np.ndarray, alpha: Optional[np.ndarray] = None, quality: int = 95,
                icc_profile: Optional[bytes] = None, exif: Optional[bytes] = None,
                xmp: Optional[bytes] = None, dpi: Optional[Tuple[float, float]] = None,
                text: Optional[Dict[str, str]] = None, grey: bool = False) -> None:
    """Write uint8 (or uint16) H×W×3, plus optional alpha, ICC profile, EXIF block, XMP packet (JPEG,
    WebP, AVIF; a PNG holds it as a text chunk), resolution (PNG, JPEG, TIFF, BMP) and PNG text
    chunks, to `path`, atomically (temp file, then rename). `grey`: write the luma (an input that was
    grey stays grey; with alpha, where the format has grey + alpha: PNG, TIFF) and only a grey profile.
    uint16 pixels make a 16-bit PNG or TIFF (other formats get them rounded to 8 bits; 16-bit files
    get no EXIF, XMP, resolution or text). BMP stores neither alpha nor a profile; GIF is
    quantised to 256 colours, its alpha to one transparent colour, and stores no profile or EXIF."""
    from PIL import Image

    path = Path(path)
    if not is_image_path(path):
        raise ImageFileError(f"{path}: unsupported output format {path.suffix!r} "
                             f"(use one of {', '.join(IMAGE_SUFFIXES)})")
    if rgb.dtype == np.uint16:
        if path.suffix.lower() in SIXTEEN_BIT_SUFFIXES:
            profile = rgb_icc_profile(icc_profile, b"GRAY" if grey else b"RGB ")   # of the pixels' kind
            data = images16.encode(path, rgb, alpha, profile, grey=grey)
            with atomic_path(path, suffix=path.suffix) as tmp:
                Path(tmp).write_bytes(data)
            return
        rgb, alpha = to_uint8(rgb), None if alpha is None else to_uint8(alpha)
    im = Image.fromarray(rgb, "RGB")
    with_alpha = alpha is not None and path.suffix.lower() in ALPHA_SUFFIXES
    if grey and (not with_alpha or path.suffix.lower() in GREY_ALPHA_SUFFIXES):
        im = im.convert("L")
    if with_alpha:
        im.putalpha(Image.fromarray(alpha, "L"))
    fmt = {".jpg": "JPEG", ".jpeg": "JPEG", ".tif": "TIFF", ".tiff": "TIFF"}.get(
        path.suffix.lower(), path.suffix[1:].upper())
    options = {"quality": quality} if path.suffix.lower() in LOSSY_SUFFIXES else {}
    if icc_profile and path.suffix.lower() in ICC_SUFFIXES and rgb_icc_profile(
            icc_profile, b"GRAY" if im.mode in ("L", "LA") else b"RGB "):   # a profile of the pixels' kind
        options["icc_profile"] = icc_profile
    if exif and path.suffix.lower() in EXIF_SUFFIXES:
        options["exif"] = exif
    if xmp and path.suffix.lower() in XMP_SUFFIXES:
        options["xmp"] = xmp
    if dpi and path.suffix.lower() in DPI_SUFFIXES:
        options["dpi"] = dpi
    if text and fmt == "PNG":
        from PIL.PngImagePlugin import PngInfo

        chunks = PngInfo()
        for key, value in text.items():
            chunks.add_text(key, value)   # iTXt when the value is not Latin-1
        options["pnginfo"] = chunks
    Image.init()
    if fmt not in Image.SAVE:
        raise ImageFileError(f"{path}: this Pillow cannot write {fmt} (a build without its codec); "
                             "choose another output format")
    with atomic_path(path, suffix=path.suffix) as tmp:
        im.save(tmp, format=fmt, **options)
