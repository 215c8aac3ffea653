"""HDR10 static metadata: the mastering display (SMPTE ST 2086) and content light levels (MaxCLL,
MaxFALL) of an HDR video, read from its first decoded frame and written again by the encoder.

The colour tags (BT.2020, PQ/HLG) travel with every encode (`formats.Colour`); these two do not:
FFmpeg hands them to an encoder only through the command line's side-data plumbing, which PyAV
does not drive. x265 and SVT-AV1 take them as parameters (`encoder_params`); other encoders
cannot write them, and the output then says so.

Dynamic (per-scene) metadata, HDR10+ and Dolby Vision's, is decoded as frame side data too, but
no encoder here writes it back (this x265 is built without HDR10+); `dynamic_metadata` names it
so that the output can say it is lost.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from fractions import Fraction
from typing import Dict, Optional, Tuple

# Encoders that write the metadata, and the parameter option that carries it.
PARAM_OPTIONS = {"libx265": "x265-params", "libsvtav1": "svtav1-params"}


@dataclass(frozen=True)
class HdrMetadata:
    """Chromaticities (CIE 1931 x, y) of the mastering display's R, G, B primaries and white point,
    its luminance range (cd/m²), and the content's light levels (cd/m²; None when absent)."""

    primaries: Optional[Tuple[Tuple[Fraction, Fraction], ...]]   # (R, G, B), each (x, y)
    white_point: Optional[Tuple[Fraction, Fraction]]
    luminance: Optional[Tuple[Fraction, Fraction]]               # (min, max)
    max_cll: Optional[int] = None
    max_fall: Optional[int] = None

    @property
    def has_display(self) -> bool:
        return self.primaries is not None and self.luminance is not None

    def x265_params(self) -> str:
        """x265's master-display (chromaticity in 0.00002, luminance in 0.0001 cd/m² units) and max-cll."""
        return self._params("master-display", "max-cll", lambda p: f"({round(p[0] * 50000)},{round(p[1] * 50000)})",
                            lambda v: str(round(v * 10000)))

    def svtav1_params(self) -> str:
        """SVT-AV1's mastering-display (decimal chromaticities and cd/m²) and content-light."""
        return self._params("mastering-display", "content-light", lambda p: f"({float(p[0]):.4f},{float(p[1]):.4f})",
                            lambda v: f"{float(v):.4f}")

    def _params(self, display_key: str, light_key: str, xy, level) -> str:
        parts = []
        if self.has_display:
            (r, g, b), wp = self.primaries, self.white_point
            lo, hi = self.luminance
            parts.append(f"{display_key}=G{xy(g)}B{xy(b)}R{xy(r)}WP{xy(wp)}L({level(hi)},{level(lo)})")
        if self.max_cll is not None:
            parts.append(f"{light_key}={self.max_cll},{self.max_fall or 0}")
        return ":".join(parts)


def _rationals(data: bytes, count: int, offset: int = 0):
    values = struct.unpack_from(f"<{2 * count}i", data, offset)
    return [Fraction(values[2 * i], values[2 * i + 1]) if values[2 * i + 1] else Fraction(0)
            for i in range(count)]


def parse_mastering_display(data: bytes) -> Tuple:
    """FFmpeg's AVMasteringDisplayMetadata: primaries[3][2], white_point[2], min and max luminance
    (AVRationals: two int32 each), has_primaries, has_luminance (int32) -> (primaries, white point,
    luminance), None for what the flags say is absent."""
    if len(data) < 88:
        raise ValueError(f"mastering display side data is {len(data)} bytes, expected 88")
    r = _rationals(data, 10)
    has_primaries, has_luminance = struct.unpack_from("<2i", data, 80)
    primaries = ((r[0], r[1]), (r[2], r[3]), (r[4], r[5])) if has_primaries else None
    white = (r[6], r[7]) if has_primaries else None
    luminance = (r[8], r[9]) if has_luminance else None
    return primaries, white, luminance


def _side_data(frame):
    """(type name, item) for each side-data item of a decoded PyAV frame."""
    for item in getattr(frame, "side_data", ()) or ():
        yield getattr(item.type, "name", str(item.type)), item


def from_frame(frame) -> Optional[HdrMetadata]:
    """The HDR10 static metadata a decoded PyAV frame carries as side data, or None."""
    display = light = None
    for name, item in _side_data(frame):
        if name == "MASTERING_DISPLAY_METADATA":
            display = parse_mastering_display(bytes(item))
        elif name == "CONTENT_LIGHT_LEVEL":
            light = struct.unpack_from("<2I", bytes(item))
    if display is None and light is None:
        return None
    primaries, white, luminance = display or (None, None, None)
    return HdrMetadata(primaries, white, luminance, *(light or (None, None)))


# Frame side data of per-scene HDR metadata, by what it is called.
DYNAMIC_METADATA = {"DYNAMIC_HDR_PLUS": "HDR10+ (SMPTE ST 2094-40)", "DOVI_METADATA": "Dolby Vision",
                    "DOVI_RPU_BUFFER": "Dolby Vision", "DYNAMIC_HDR_VIVID": "HDR Vivid (CUVA 005.3)"}


def dynamic_metadata(frame) -> Optional[str]:
    """The name of the dynamic HDR metadata a decoded PyAV frame carries, or None."""
    return next((DYNAMIC_METADATA[name] for name, _ in _side_data(frame) if name in DYNAMIC_METADATA), None)


def encoder_params(codec: str, hdr: HdrMetadata, options: Dict[str, str]) -> Optional[Dict[str, str]]:
    """`options` with the metadata added to `codec`'s parameter option (the user's own settings of
    it win), or None when `codec` cannot write it."""
    key = PARAM_OPTIONS.get(codec)
    if key is None:
        return None
    ours = hdr.x265_params() if codec == "libx265" else hdr.svtav1_params()
    given = options.get(key, "")
    named = {p.split("=", 1)[0] for p in given.split(":") if p}
    mine = [p for p in ours.split(":") if p and p.split("=", 1)[0] not in named]
    return dict(options, **{key: ":".join([p for p in (given, *mine) if p])})
