"""Image files <-> numpy uint8 H×W×3 (Pillow), with atomic writes."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional, Tuple

import numpy as np

from .atomic import atomic_path

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp")


class ImageFileError(ValueError):
    """An image file that cannot be read or written; the message names the file."""


def is_image_path(path) -> bool:
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def list_images(folder: Path) -> List[Path]:
    """Image files directly inside `folder`, sorted by name."""
    return sorted(p for p in Path(folder).iterdir() if p.is_file() and is_image_path(p))


def read_image(path) -> Tuple[np.ndarray, Optional[np.ndarray]]:
    """Read an image as uint8 H×W×3 RGB, plus its alpha channel (H×W uint8) if it has one.

    Grey and palette images are expanded to RGB; 16-bit images are scaled to 8 bits.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im.load()
            alpha = None
            if im.mode in ("I;16", "I;16B", "I;16L", "I"):
                arr = np.asarray(im, dtype=np.float64)
                peak = 65535.0 if im.mode.startswith("I;16") or arr.max() > 255 else 255.0
                grey = np.clip(np.round(arr / peak * 255.0), 0, 255).astype(np.uint8)
                return np.repeat(grey[..., None], 3, axis=2), None
            if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
                rgba = im.convert("RGBA")
                alpha = np.asarray(rgba)[..., 3].copy()
                rgb = np.asarray(rgba)[..., :3]
            else:
                rgb = np.asarray(im.convert("RGB"))
            return np.ascontiguousarray(rgb), alpha
    except FileNotFoundError:
        raise ImageFileError(f"{path}: no such file") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise ImageFileError(f"{path}: cannot read image ({e})") from None


def write_image(path, rgb: np.ndarray, alpha: Optional[np.ndarray] = None, quality: int = 95) -> None:
    """Write uint8 H×W×3 (plus optional alpha) to `path`, atomically (temp file, then rename)."""
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
    with atomic_path(path, suffix=path.suffix) as tmp:
        im.save(tmp, format=fmt, **options)
