"""Which pixel format and colour conversion each decoded video gets, and what the output keeps.

`irflow_engine.pixfmt` converts rgb24/bgr24/rgba, yuv420p/yuv420p10le and nv12/p010 directly.
Other common formats are first converted by FFmpeg's swscale (through PyAV): 8-bit ones to rgb24;
deeper 4:2:0 and grey ones to yuv420p10le (more than 10 bits are rounded to 10); deeper 4:2:2,
4:4:4, 4:4:0 and RGB ones (ProRes, DNxHR, 10-bit 4:4:4 HEVC, FFV1 RGB) to rgb48le, 16 bits per
R'G'B' sample, so that their chroma keeps its resolution (`layouts.RGB48Layout` converts those
frames with torch operations). 4:2:0 frames of odd width or height that pixfmt converts are held
in even slots (`layouts.EvenPaddedLayout`); formats deeper than 8 bits that swscale would convert
at an odd size, and anything else, are refused with `UnsupportedPixelFormatError`.

Colour: the matrix and range follow the stream's tags (H.273 codes as FFmpeg stores them). An
untagged matrix is guessed as players do: BT.709 from 720 lines up, BT.601 below; an untagged
range is limited (full for the `yuvj*` formats). The same matrix and range convert back, and the
output carries the input's four tags unchanged, so a player shows both files alike.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Optional, Tuple

from .alpha import alpha_bits, has_alpha
from .errors import UnsupportedPixelFormatError

log = logging.getLogger(__name__)

# Decoder format -> (pixfmt format, PyAV name of the frames handed to it). yuvj420p is yuv420p
# in full range.
DIRECT = {
    "yuv420p": ("yuv420p", "yuv420p"),
    "yuvj420p": ("yuv420p", "yuv420p"),
    "yuv420p10le": ("yuv420p10le", "yuv420p10le"),
    "nv12": ("nv12", "nv12"),
    "p010le": ("p010", "p010le"),
    "rgb24": ("rgb24", "rgb24"),
    "bgr24": ("bgr24", "bgr24"),
    "rgba": ("rgba", "rgba"),
}
# PyAV names of the formats pixfmt converts -> pixfmt's names.
AV_TO_PIXFMT = {av_name: name for name, av_name in DIRECT.values()}
# Formats swscale converts first: 8-bit ones to rgb24, deeper ones to yuv420p10le.
VIA_SWSCALE_8BIT = (
    "yuv422p", "yuv444p", "yuv440p", "yuv411p", "yuv410p", "yuvj422p", "yuvj444p", "yuvj440p",
    "nv21", "nv16", "yuyv422", "uyvy422", "gray", "gbrp", "bgra", "argb", "abgr", "rgb0", "bgr0",
    "0rgb", "0bgr", "yuva420p", "yuva422p", "yuva444p", "gbrap", "pal8", "ya8",
)
VIA_SWSCALE_DEEP = ("yuv420p12le", "yuv420p16le", "p016le", "gray10le", "gray12le", "yuva420p9le", "yuva420p10le",
                    "yuva420p16le")
# Deeper formats whose chroma is finer than 4:2:0, RGB, or grey deeper than 12 bits: to rgb48le.
RGB48 = "rgb48le"
VIA_SWSCALE_RGB48 = (
    "yuv422p10le", "yuv444p10le", "yuv440p10le", "yuv422p12le", "yuv444p12le", "yuv440p12le", "yuv422p14le",
    "yuv444p14le", "yuv422p16le", "yuv444p16le", "p210le", "p410le", "y210le", "yuva422p9le", "yuva422p10le",
    "yuva422p12le", "yuva422p16le", "yuva444p9le", "yuva444p10le", "yuva444p12le", "yuva444p16le", "gbrp10le",
    "gbrp12le", "gbrp14le", "gbrp16le", "gbrap10le", "gbrap12le", "gbrap14le", "gbrap16le",
    "rgb48le", "bgr48le", "rgba64le", "bgra64le", "gray14le", "gray16le", "ya16le",
    # big-endian: what FFmpeg's PNG decoder gives for 16-bit PNG/APNG video (in MOV, say)
    "rgb48be", "bgr48be", "rgba64be", "bgra64be", "gray16be", "ya16be",
)

# H.273 MatrixCoefficients (FFmpeg's AVColorSpace) -> pixfmt matrix; approximations are flagged.
_MATRIX = {1: "bt709", 5: "bt601", 6: "bt601", 9: "bt2020"}
_MATRIX_APPROX = {4: "bt601", 7: "bt709", 10: "bt2020"}
_SWSCALE_MATRIX = {"bt709": "ITU709", "bt601": "ITU601", "bt2020": "BT2020"}
RANGE_TAGS = {"limited": 1, "full": 2}
MATRIX_TAGS = {"bt709": 1, "bt601": 6, "bt2020": 9}


@dataclass(frozen=True)
class Colour:
    """How codes map to R'G'B' (pixfmt's names) and the four tags the output carries."""

    matrix: str
    range: str
    colorspace: int
    color_range: int
    color_primaries: int
    color_trc: int

    def swscale_args(self) -> dict:
        """Keyword arguments for PyAV's `reformat` that keep this matrix and range on both sides."""
        cs = _SWSCALE_MATRIX[self.matrix]
        rng = "JPEG" if self.range == "full" else "MPEG"
        return dict(src_colorspace=cs, dst_colorspace=cs, src_color_range=rng, dst_color_range=rng)


@dataclass(frozen=True)
class FormatPlan:
    """How frames of one decoder format reach pixfmt, and how deep the output should be."""

    source: str         # the decoder's format
    work: str           # the pixfmt format converted to / from tensors
    av_work: str        # PyAV's name of frames in the work format
    swscale: bool       # decoded frames are converted to `av_work` by swscale first
    bits: int           # bits per sample of the source
    is_rgb: bool
    alpha_bits: int = 0  # bits per alpha sample of the source (0: no alpha)

    @property
    def alpha(self) -> bool:
        return self.alpha_bits > 0

    @property
    def loses_bits(self) -> bool:
        """Deep 4:2:0 (or grey) samples are processed at 10 bits."""
        return self.bits > 10 and self.work == "yuv420p10le"

    @property
    def output_candidates(self) -> Tuple[str, ...]:
        """Encoder formats to try, best first: the source's own, its chroma layout without alpha at its
        depth and below (ProRes 4444's yuva444p12le: yuv444p12le, then the yuv444p10le the ProRes
        encoder takes), then the work format, then 4:2:0. A source with alpha puts these formats'
        alpha versions first, then common formats with alpha (`ALPHA_FORMATS`): its alpha is worth
        more than its depth or chroma."""
        own = "yuv420p" if self.source == "yuvj420p" else self.source
        default = "yuv420p10le" if self.bits > 8 else "yuv420p"
        plain = (own, *same_chroma_formats(self.source, self.bits), self.av_work, default)
        if not self.alpha:
            return tuple(dict.fromkeys(plain))
        with_alpha = [twin for twin in map(alpha_twin, plain) if twin is not None]
        return tuple(dict.fromkeys((*with_alpha, *ALPHA_FORMATS, *plain)))


# Formats with alpha tried after those like the source's (`FormatPlan.output_candidates`): what the
# ProRes, QuickTime Animation, PNG, FFV1, UT Video and VP8/VP9 encoders take.
ALPHA_FORMATS = ("yuva444p10le", "yuva420p", "yuva444p", "gbrap", "rgba", "argb", "bgra")
_ALPHA_TWINS = {"rgb24": "rgba", "bgr24": "bgra", "rgb48le": "rgba64le", "rgb48be": "rgba64be",
                "bgr48le": "bgra64le", "bgr48be": "bgra64be", "gray": "ya8", "gray16le": "ya16le",
                "gray16be": "ya16be"}


def alpha_twin(name: str) -> Optional[str]:
    """The pixel format like `name` with an alpha plane (yuv444p10le -> yuva444p10le, rgb24 -> rgba,
    gbrp -> gbrap; a format with alpha is its own), or None where FFmpeg has none."""
    if has_alpha(name):
        return name
    twin = _ALPHA_TWINS.get(name) or re.sub(r"^(yuv|gbr)(?!a)", lambda m: m.group(1) + "a", name)
    return twin if has_alpha(twin) else None


def same_chroma_formats(name: str, bits: int) -> Tuple[str, ...]:
    """Planar YUV formats of `name`'s chroma layout, without alpha, at `bits` and fewer (deepest first)."""
    match = re.fullmatch(r"yuva?(4[0-4][0-4])p(\d+)?(le|be)?", name)
    if not match:
        return ()
    layout = match.group(1)
    deep = tuple(f"yuv{layout}p{depth}le" for depth in (16, 14, 12, 10, 9) if depth <= bits)
    return deep + (f"yuv{layout}p",)


def sample_bits(name: str) -> int:
    """Bits per sample of the pixel format `name` (its deepest component)."""
    import av

    return max((c.bits for c in av.VideoFormat(name).components), default=8)


def plan_format(fmt, width: int = 0, height: int = 0) -> FormatPlan:
    """The plan for a PyAV `VideoFormat` (or its name) at a frame size; unsupported formats raise a
    clear error. The formats pixfmt converts work at any size (4:2:0 of odd size in even slots,
    `layouts.EvenPaddedLayout`); those swscale converts first are refused at odd sizes when deeper
    than 8 bits: this FFmpeg's swscale converts them wrongly (garbage columns, measured
    2026-11-27)."""
    import av

    name = fmt if isinstance(fmt, str) else fmt.name
    try:
        vf = av.VideoFormat(name)
    except (ValueError, TypeError):
        raise UnsupportedPixelFormatError(f"unknown pixel format {name!r}") from None
    bits = sample_bits(name)
    if bits > 8 and (width % 2 or height % 2) and name not in DIRECT and name != RGB48:
        raise UnsupportedPixelFormatError(
            f"{name} video of odd size {width}x{height} is not supported: FFmpeg's swscale converts formats "
            f"deeper than 8 bits wrongly at odd sizes; crop or pad it to an even size first, e.g. ffmpeg -i in "
            f"-vf crop=trunc(iw/2)*2:trunc(ih/2)*2 ...")
    alpha = alpha_bits(name)
    if name in DIRECT:
        work, av_work = DIRECT[name]
        return FormatPlan(name, work, av_work, False, bits, vf.is_rgb, alpha)
    if name in VIA_SWSCALE_8BIT:
        return FormatPlan(name, "rgb24", "rgb24", True, bits, vf.is_rgb, alpha)
    if name in VIA_SWSCALE_DEEP:
        return FormatPlan(name, "yuv420p10le", "yuv420p10le", True, bits, vf.is_rgb, alpha)
    if name in VIA_SWSCALE_RGB48:
        return FormatPlan(name, RGB48, RGB48, name != RGB48, bits, vf.is_rgb, alpha)
    raise UnsupportedPixelFormatError(
        f"pixel format {name} ({bits}-bit) is not supported; supported: {', '.join(DIRECT)} directly, "
        f"and through swscale {', '.join(VIA_SWSCALE_8BIT + VIA_SWSCALE_DEEP + VIA_SWSCALE_RGB48)}. Convert the video first, "
        f"e.g. ffmpeg -i in -pix_fmt yuv420p10le ...")


def describe_conversion(plan: FormatPlan) -> Optional[str]:
    """A note on how the input reaches the network when swscale converts it or it loses bits
    (`FormatPlan.loses_bits`: worth a warning), else None."""
    if not plan.swscale and not plan.loses_bits:
        return None
    how = f"converted to {plan.av_work} by swscale" if plan.swscale else "converted directly"
    detail = f" ({plan.bits}-bit samples are processed at 10 bits)" if plan.loses_bits else ""
    return f"{plan.source} frames are {how}{detail}"


def colour_of(codec_context, height: int, plan: FormatPlan) -> Colour:
    """The colour conversion for a stream: its tags, with untagged values guessed."""
    spc = int(codec_context.colorspace or 2)
    rng = int(codec_context.color_range or 0)
    prim = int(codec_context.color_primaries or 2)
    trc = int(codec_context.color_trc or 2)
    if spc in _MATRIX:
        matrix = _MATRIX[spc]
    elif spc in _MATRIX_APPROX:
        matrix = _MATRIX_APPROX[spc]
        log.warning("colour matrix code %d is converted as %s (close, not exact)", spc, matrix)
    else:
        if spc not in (0, 2):
            log.warning("colour matrix code %d is not supported; converting as untagged", spc)
        matrix = "bt709" if height >= 720 else "bt601"
    if rng == 2 or (rng == 0 and plan.source.startswith("yuvj")):
        range_ = "full"
    else:
        range_ = "limited"
    if plan.is_rgb or plan.source in ("rgb24", "bgr24", "rgba"):
        # RGB sources encoded as YUV get explicit tags for the matrix and range used.
        spc, rng = MATRIX_TAGS[matrix], RANGE_TAGS[range_]
    return Colour(matrix, range_, spc, rng, prim, trc)
