"""Image files <-> numpy uint8 H×W×3 (Pillow), with atomic writes.

Reading applies the EXIF orientation (a phone's portrait JPEG comes out upright, as viewers show
it) and keeps an RGB ICC profile, which writing embeds again (PNG, JPEG, TIFF, WebP), so a
restored Display P3 or Adobe RGB photograph keeps its colours in colour-managed viewers. The model
works on the stored 8-bit values, whatever their colour space.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Tuple

import numpy as np

from .atomic import atomic_path

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp")
ICC_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp")   # formats Pillow embeds a profile in


class ImageFileError(ValueError):
    """An image file that cannot be read or written; the message names the file."""


def is_image_path(path) -> bool:
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def list_images(folder: Path) -> List[Path]:
    """Image files directly inside `folder`, sorted by name."""
    return sorted(p for p in Path(folder).iterdir() if p.is_file() and is_image_path(p))


@dataclass
class ImageFile:
    """What `load_image` reads: upright RGB pixels, the alpha channel, the RGB ICC profile."""

    rgb: np.ndarray                      # uint8 H×W×3
    alpha: Optional[np.ndarray] = None   # uint8 H×W, or None
    icc_profile: Optional[bytes] = None  # an ICC profile of an RGB colour space, or None


def rgb_icc_profile(profile: Optional[bytes]) -> Optional[bytes]:
    """`profile` if it is an ICC profile of an RGB colour space (header bytes 16–19 are 'RGB '),
    else None: a grey or CMYK profile would mislabel the RGB pixels written."""
    if not profile or len(profile) < 128 or profile[16:20] != b"RGB ":
        return None
    return bytes(profile)


def load_image(path) -> ImageFile:
    """Read an image file: RGB pixels (upright by its EXIF orientation), alpha, RGB ICC profile.

    Grey and palette images are expanded to RGB; 16-bit images are scaled to 8 bits.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im.load()
            icc = rgb_icc_profile(im.info.get("icc_profile"))
            try:
                im = ImageOps.exif_transpose(im)
            except Exception:   # unreadable EXIF: the pixels as stored, rather than no image at all
                pass
            if im.mode in ("I;16", "I;16B", "I;16L", "I"):
                arr = np.asarray(im, dtype=np.float64)
                peak = 65535.0 if im.mode.startswith("I;16") or arr.max() > 255 else 255.0
                grey = np.clip(np.round(arr / peak * 255.0), 0, 255).astype(np.uint8)
                return ImageFile(np.repeat(grey[..., None], 3, axis=2))
            alpha = None
            if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
                rgba = np.asarray(im.convert("RGBA"))
                alpha = rgba[..., 3].copy()
                rgb = rgba[..., :3]
            else:
                rgb = np.asarray(im.convert("RGB"))
            return ImageFile(np.ascontiguousarray(rgb), alpha, icc)
    except FileNotFoundError:
        raise ImageFileError(f"{path}: no such file") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise ImageFileError(f"{path}: cannot read image ({e})") from None


def read_image(path) -> Tuple[np.ndarray, Optional[np.ndarray]]:
    """Read an image as uint8 H×W×3 RGB (upright), plus its alpha channel (H×W uint8) if it has one."""
    image = load_image(path)
    return image.rgb, image.alpha


def write_image(path, rgb: np.ndarray, alpha: Optional[np.ndarray] = None, quality: int = 95,
                icc_profile: Optional[bytes] = None) -> None:
    """Write uint8 H×W×3 (plus optional alpha and ICC profile) to `path`, atomically (temp file,
    then rename). BMP stores neither alpha nor a profile."""
    from PIL import Image

    path = Path(path)
    if not is_image_path(path):
        raise ImageFileError(f"{path}: unsupported output format {path.suffix!r} "
                             f"(use one of {', '.join(IMAGE_SUFFIXES)})")
    im = Image.fromarray(rgb, "RGB")
    if alpha is not None and path.suffix.lower() in (".png", ".tif", ".tiff", ".webp"):
        im.putalpha(Image.fromarray(alpha, "L"))
    fmt = {".jpg": "JPEG", ".jpeg": "JPEG", ".tif": "TIFF", ".tiff": "TIFF"}.get(
        path.suffix.lower(), path.suffix[1:].upper())
    options = {"quality": quality} if fmt in ("JPEG", "WEBP") else {}
    if icc_profile and path.suffix.lower() in ICC_SUFFIXES:
        options["icc_profile"] = icc_profile
    with atomic_path(path, suffix=path.suffix) as tmp:
        im.save(tmp, format=fmt, **options)
