"""HDR and wide-gamut video into an 8-bit sRGB picture: the tone mapping of a video written as an
animated image (`to_animation.py`).

An animated GIF, PNG, WebP or AVIF holds 8-bit sRGB. HDR codes written as they are look flat and
dim (PQ puts 100 cd/m² at 51 % of its range; a phone's HLG clip looks grey), and BT.2020 colours
look washed out. `to_srgb` maps the restored frames (float R'G'B' in [0, 1], on any device):

1. to linear light: PQ's EOTF (SMPTE ST 2084, cd/m²); HLG's inverse OETF and its OOTF for a
   1000 cd/m² display (ARIB STD-B67 / BT.2100, system gamma 1.2); other transfers as BT.1886's
   gamma 2.4 display with white at 100 cd/m²;
2. BT.2020 primaries to BT.709/sRGB in linear light (BT.2087's matrix), negatives (colours outside
   sRGB) clipped;
3. HDR reference white (203 cd/m², BT.2408) becomes SDR white; each pixel's largest component is
   kept up to `KNEE` of it and brighter light rolls off smoothly towards white (slope 1 at the
   knee, 0.99 at 1000 cd/m²), the pixel's other components scaled alike, so hues keep;
4. sRGB's encoding.
"""

from __future__ import annotations

import math
from typing import Optional

import torch

# H.273 codes (FFmpeg's AVColorTransferCharacteristic / AVColorPrimaries).
PQ, HLG = 16, 18
BT2020_PRIMARIES = 9

REFERENCE_WHITE = 203.0   # cd/m², HDR graphics white (BT.2408)
SDR_WHITE = 100.0         # cd/m², BT.1886 display white
HLG_PEAK = 1000.0         # cd/m², the HLG display assumed by the OOTF
KNEE = 0.8                # of SDR white: kept as it is below, rolled off above

# SMPTE ST 2084 constants.
_M1, _M2 = 2610 / 16384, 2523 / 4096 * 128
_C1, _C2, _C3 = 3424 / 4096, 2413 / 4096 * 32, 2392 / 4096 * 32
# ARIB STD-B67 constants.
_A = 0.17883277
_B = 1 - 4 * _A
_C = 0.5 - _A * math.log(4 * _A)
# BT.2087: linear BT.2020 RGB -> linear BT.709 RGB.
BT2020_TO_BT709 = ((1.6605, -0.5876, -0.0728), (-0.1246, 1.1329, -0.0083), (-0.0182, -0.1006, 1.1187))
_BT2020_LUMA = (0.2627, 0.6780, 0.0593)


def mapping_for(colour) -> Optional[str]:
    """A description of what `to_srgb` does for a stream's `formats.Colour`, or None when its frames
    are sRGB-like already (BT.709/BT.601 primaries, an SDR transfer)."""
    names = {PQ: "PQ (HDR10)", HLG: "HLG"}
    if colour.color_trc in names:
        return f"{names[colour.color_trc]} HDR video is tone-mapped to SDR"
    if colour.color_primaries == BT2020_PRIMARIES:
        return "BT.2020 colours are converted to sRGB's"
    return None


def pq_to_nits(v: torch.Tensor) -> torch.Tensor:
    p = v.clamp(0, 1) ** (1 / _M2)
    return 10000.0 * ((p - _C1).clamp(min=0) / (_C2 - _C3 * p)) ** (1 / _M1)


def hlg_to_nits(v: torch.Tensor) -> torch.Tensor:
    """HLG R'G'B' (N×3×H×W) to display light: the inverse OETF, then the OOTF (gamma 1.2)."""
    v = v.clamp(0, 1)
    scene = torch.where(v <= 0.5, v * v / 3, (torch.exp((v - _C) / _A) + _B) / 12)
    luma = sum(w * scene[:, i:i + 1] for i, w in enumerate(_BT2020_LUMA))
    return HLG_PEAK * luma.clamp(min=1e-12) ** 0.2 * scene


def srgb_encode(linear: torch.Tensor) -> torch.Tensor:
    x = linear.clamp(0, 1)
    return torch.where(x <= 0.0031308, 12.92 * x, 1.055 * x.clamp(min=0.0031308) ** (1 / 2.4) - 0.055)


def roll_off(x: torch.Tensor) -> torch.Tensor:
    """x (1.0 = SDR white) kept up to KNEE, then KNEE + (1 - KNEE)·d / (d + 1 - KNEE), d = x - KNEE: below 1
    for every x, with slope 1 at the knee."""
    d = (x - KNEE).clamp(min=0)
    return torch.where(x <= KNEE, x, KNEE + (1 - KNEE) * d / (d + (1 - KNEE)))


def to_srgb(rgb: torch.Tensor, colour) -> torch.Tensor:
    """Frames (N×3×H×W R'G'B' in [0, 1] in the stream's transfer and primaries) as sRGB in [0, 1]."""
    x = rgb.float()
    if colour.color_trc == PQ:
        linear, white = pq_to_nits(x), REFERENCE_WHITE
    elif colour.color_trc == HLG:
        linear, white = hlg_to_nits(x), REFERENCE_WHITE
    else:
        linear, white = x.clamp(0, 1) ** 2.4, 1.0
    if colour.color_primaries == BT2020_PRIMARIES:
        m = torch.tensor(BT2020_TO_BT709, dtype=linear.dtype, device=linear.device)
        linear = torch.einsum("ij,njhw->nihw", m, linear)
    linear = linear.clamp(min=0) / white
    if colour.color_trc in (PQ, HLG):
        peak = linear.amax(dim=1, keepdim=True)
        linear = linear * torch.where(peak > 0, roll_off(peak) / peak.clamp(min=1e-12), torch.ones_like(peak))
    return srgb_encode(linear)
