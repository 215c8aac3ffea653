"""Animated images (APNG, animated WebP, GIF, AVIF sequences) <-> a list of frames with their timing (Pillow).

An animation is restored frame by frame, like a short video: every frame is read whole (Pillow
composes each frame onto the canvas by the file's disposal and blend rules), restored, and
written back in full with its duration, the loop count (Pillow neither reads nor writes AVIF's:
an AVIF sequence keeps the writer's default), the alpha channel and, in PNG, WebP and AVIF, the ICC
profile. Frames are held in memory as uint8 (H·W·4 bytes each, input and output): an
animation of many large frames is better converted to a video and restored with `irflow restore`.
GIF output is quantised to a 256-colour palette per frame (what the format holds).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, List, Optional

import numpy as np

from .atomic import atomic_path
from .images import ImageFileError, rgb_icc_profile

ANIMATION_SUFFIXES = (".png", ".webp", ".gif", ".avif")   # formats whose writers keep frames and timing
ANIMATION_FORMATS = ("PNG", "WEBP", "GIF", "AVIF")     # Pillow's names of the animated formats read
DEFAULT_DURATION_MS = 100                              # a frame that states no duration (as browsers show it)


@dataclass
class Animation:
    """Whole frames of an animated image and how they play."""

    frames: List[np.ndarray]                    # uint8 H×W×3 each
    durations: List[int]                        # milliseconds each frame is shown
    alphas: Optional[List[np.ndarray]] = None   # uint8 H×W each, or None: every frame opaque
    loop: Optional[int] = None                  # 0: forever, n: the file's count; None: plays once
    icc_profile: Optional[bytes] = None         # an RGB ICC profile, or None
    source_format: str = field(default="PNG")   # "PNG" (APNG), "WEBP", "GIF" or "AVIF"

    def __post_init__(self):
        if not self.frames:
            raise ValueError("an animation needs at least one frame")
        if len(self.durations) != len(self.frames):
            raise ValueError(f"{len(self.frames)} frames but {len(self.durations)} durations")
        if self.alphas is not None and len(self.alphas) != len(self.frames):
            raise ValueError(f"{len(self.frames)} frames but {len(self.alphas)} alpha channels")
        shapes = {f.shape for f in self.frames}
        if len(shapes) != 1 or any(f.dtype != np.uint8 or f.ndim != 3 or f.shape[2] != 3 for f in self.frames):
            raise ValueError(f"animation frames must all be uint8 H×W×3 of one size, got shapes {sorted(shapes)}")


def is_animation(path) -> bool:
    """True if `path` is an APNG, animated WebP, GIF or AVIF with more than one frame."""
    from PIL import Image

    if Path(path).suffix.lower() not in ANIMATION_SUFFIXES:
        return False
    try:
        with Image.open(path) as im:
            return im.format in ANIMATION_FORMATS and bool(getattr(im, "is_animated", False))
    except Exception:   # unreadable: `load_image`/`read_animation` give the error that names it
        return False


def read_animation(path) -> Animation:
    """Every frame of an animated image, whole (composed onto the canvas), with its timing."""
    from PIL import Image, ImageSequence, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            if im.format not in ANIMATION_FORMATS:
                raise ImageFileError(f"{path}: a {im.format} file is not an animation format "
                                     f"({', '.join(ANIMATION_FORMATS)})")
            loop = im.info.get("loop")
            icc = rgb_icc_profile(im.info.get("icc_profile"))
            source_format = im.format
            frames, alphas, durations = [], [], []
            has_alpha = False
            for frame in ImageSequence.Iterator(im):
                has_alpha = has_alpha or frame.mode in ("RGBA", "LA", "PA") or "transparency" in frame.info
                rgba = np.asarray(frame.convert("RGBA"))
                frames.append(np.ascontiguousarray(rgba[..., :3]))
                alphas.append(rgba[..., 3].copy())
                duration = frame.info.get("duration")
                durations.append(int(round(duration)) if duration else DEFAULT_DURATION_MS)
    except FileNotFoundError:
        raise ImageFileError(f"{path}: no such file") from None
    except ImageFileError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as e:
        raise ImageFileError(f"{path}: cannot read animation ({e})") from None
    if has_alpha and all(a.min() == 255 for a in alphas):
        has_alpha = False   # a transparency index no pixel uses
    return Animation(frames, durations, alphas if has_alpha else None,
                     None if loop is None else int(loop), icc, source_format)


def write_animation(path, animation: Animation, quality: int = 95) -> None:
    """Write `animation` to an .png (APNG), .webp, .gif or .avif file, atomically (temp file, then rename)."""
    from PIL import Image

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in ANIMATION_SUFFIXES:
        raise ImageFileError(f"{path}: {suffix or 'no suffix'} cannot hold an animation "
                             f"(use one of {', '.join(ANIMATION_SUFFIXES)})")
    fmt = {".png": "PNG", ".webp": "WEBP", ".gif": "GIF", ".avif": "AVIF"}[suffix]
    images = []
    for k, rgb in enumerate(animation.frames):
        im = Image.fromarray(rgb, "RGB")
        if animation.alphas is not None:
            im.putalpha(Image.fromarray(animation.alphas[k], "L"))
        images.append(im)
    options = {"save_all": True, "append_images": images[1:], "duration": list(animation.durations)}
    if animation.loop is not None:
        options["loop"] = animation.loop
    elif fmt in ("PNG", "WEBP"):
        options["loop"] = 1          # APNG's and WebP's "play once" (a GIF without a loop count plays once)
    if fmt in ("WEBP", "AVIF"):
        options["quality"] = quality
    if fmt == "GIF" and animation.alphas is not None:
        options["disposal"] = 2      # whole frames with transparency: clear before the next one
    if animation.icc_profile and fmt != "GIF":
        options["icc_profile"] = animation.icc_profile
    with atomic_path(path, suffix=path.suffix) as tmp:
        images[0].save(tmp, format=fmt, **options)


def restore_animation(engine, animation: Animation, *, tile: Optional[int] = None, tile_overlap: Optional[int] = None,
                      progress: Optional[Callable[[int], None]] = None) -> Animation:
    """Every frame restored by `engine` (`max_batch` frames per call); timing, alpha and profile kept.

    `progress(n)` is called after each call with the number of frames it restored.
    """
    step = engine.config.max_batch
    options = {"tile": tile} if tile_overlap is None else {"tile": tile, "tile_overlap": tile_overlap}
    restored: List[np.ndarray] = []
    for start in range(0, len(animation.frames), step):
        chunk = np.stack(animation.frames[start:start + step])
        restored.extend(engine.restore(chunk, **options))
        if progress is not None:
            progress(len(chunk))
    return Animation(restored, list(animation.durations), animation.alphas, animation.loop, animation.icc_profile,
                     animation.source_format)
