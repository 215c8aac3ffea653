"""Float64 numpy reference for irflow_engine.pixfmt, written from the published coefficients.

- Kr, Kb: ITU-R BT.601 (0.299, 0.114), BT.709 (0.2126, 0.0722), BT.2020 NCL (0.2627, 0.0593);
  Y' = Kr R' + Kg G' + Kb B', Cb = (B' - Y')/(2(1 - Kb)), Cr = (R' - Y')/(2(1 - Kr)).
- Code ranges: ITU-T H.273 (limited: 2^(n-8)(219 Y + 16), 2^(n-8)(224 C + 128); full: (2^n - 1) Y,
  (2^n - 1) C + 2^(n-1)).
- YUV -> RGB inverts the 3×3 forward matrix numerically (np.linalg.inv), independently of the closed
  form the extension uses.
- 4:2:0 chroma is centre-sited: downsampling averages each 2×2 block; bilinear upsampling
  interpolates linearly at chroma coordinate (y + 0.5)/2 - 0.5 of luma row y (same for columns),
  clamping the coordinates to the plane (edge samples repeat); nearest repeats each sample 2×2.

Frames are handled here as code planes (Y, U, V) of integers; `pack`/`unpack` convert to and from
the formats' memory layouts.
"""

from __future__ import annotations

import numpy as np

KR_KB = {"bt601": (0.299, 0.114), "bt709": (0.2126, 0.0722), "bt2020": (0.2627, 0.0593)}
BITS = {"yuv420p": 8, "yuv420p10le": 10, "nv12": 8, "p010": 10}
YUV_FORMATS = tuple(BITS)
RGB_FORMATS = ("rgb24", "bgr24", "rgba")


def forward_matrix(matrix: str) -> np.ndarray:
    """3×3 matrix taking (R', G', B') to (Y', Cb, Cr), Y' in [0, 1], Cb/Cr in [-0.5, 0.5]."""
    kr, kb = KR_KB[matrix]
    kg = 1.0 - kr - kb
    y = np.array([kr, kg, kb])
    cb = (np.array([0.0, 0.0, 1.0]) - y) / (2.0 * (1.0 - kb))
    cr = (np.array([1.0, 0.0, 0.0]) - y) / (2.0 * (1.0 - kr))
    return np.stack([y, cb, cr])


def code_params(rng: str, bits: int):
    """(luma span, chroma span, luma offset, chroma offset) of n-bit codes."""
    if rng == "limited":
        s = 2 ** (bits - 8)
        return 219.0 * s, 224.0 * s, 16.0 * s, float(2 ** (bits - 1))
    m = float(2 ** bits - 1)
    return m, m, 0.0, float(2 ** (bits - 1))


def upsample(c: np.ndarray, mode: str) -> np.ndarray:
    """(..., Hc, Wc) chroma -> (..., 2Hc, 2Wc)."""
    if mode == "nearest":
        return np.repeat(np.repeat(c, 2, axis=-2), 2, axis=-1)
    out = c
    for axis in (-2, -1):
        n = out.shape[axis]
        pos = (np.arange(2 * n) + 0.5) / 2.0 - 0.5
        i0 = np.floor(pos).astype(int)
        frac = pos - i0
        a = np.take(out, np.clip(i0, 0, n - 1), axis=axis)
        b = np.take(out, np.clip(i0 + 1, 0, n - 1), axis=axis)
        shape = [1] * out.ndim
        shape[axis] = 2 * n
        frac = frac.reshape(shape)
        out = (1.0 - frac) * a + frac * b
    return out


def yuv_to_rgb(y, u, v, matrix: str, rng: str, bits: int, mode: str) -> np.ndarray:
    """Code planes (H×W, H/2×W/2, H/2×W/2) -> 3×H×W float64 R'G'B', clamped to [0, 1]."""
    ys, cs, yo, co = code_params(rng, bits)
    yn = (np.asarray(y, np.float64) - yo) / ys
    cb = (upsample(np.asarray(u, np.float64), mode) - co) / cs
    cr = (upsample(np.asarray(v, np.float64), mode) - co) / cs
    inv = np.linalg.inv(forward_matrix(matrix))
    rgb = np.einsum("ij,jhw->ihw", inv, np.stack([yn, cb, cr]))
    return np.clip(rgb, 0.0, 1.0)


def rgb_to_yuv(rgb, matrix: str, rng: str, bits: int):
    """3×H×W R'G'B' (clamped to [0, 1], NaN -> 0) -> unrounded code planes (Y, U, V), float64."""
    rgb = np.nan_to_num(np.asarray(rgb, np.float64), nan=0.0)
    rgb = np.clip(rgb, 0.0, 1.0)
    ys, cs, yo, co = code_params(rng, bits)
    m = forward_matrix(matrix)
    y = ys * np.einsum("j,jhw->hw", m[0], rgb) + yo
    _, h, w = rgb.shape
    avg = rgb.reshape(3, h // 2, 2, w // 2, 2).mean(axis=(2, 4))
    u = cs * np.einsum("j,jhw->hw", m[1], avg) + co
    v = cs * np.einsum("j,jhw->hw", m[2], avg) + co
    return y, u, v


def round_codes(x: np.ndarray, bits: int) -> np.ndarray:
    """Round to nearest (halves up) and clamp to the code range."""
    return np.clip(np.floor(x + 0.5), 0, 2 ** bits - 1).astype(np.int64)


def pack(fmt: str, y, u, v) -> np.ndarray:
    """Code planes -> the format's rawvideo array ((H·3/2)×W)."""
    h, w = y.shape
    if fmt in ("yuv420p", "yuv420p10le"):
        dt = np.uint8 if fmt == "yuv420p" else np.uint16
        flat = np.concatenate([np.ravel(y), np.ravel(u), np.ravel(v)]).astype(dt)
        return flat.reshape(h * 3 // 2, w)
    shift, dt = (0, np.uint8) if fmt == "nv12" else (6, np.uint16)
    uv = np.stack([u, v], axis=-1).reshape(h // 2, w)
    return (np.concatenate([y, uv], axis=0).astype(np.int64) << shift).astype(dt)


def unpack(fmt: str, frame: np.ndarray):
    """The format's rawvideo array -> code planes (Y, U, V) as int64."""
    rows, w = frame.shape
    h = rows * 2 // 3
    a = np.asarray(frame).astype(np.int64)
    if fmt in ("yuv420p", "yuv420p10le"):
        flat = a.ravel()
        n_y, n_c = h * w, (h // 2) * (w // 2)
        return (flat[:n_y].reshape(h, w), flat[n_y:n_y + n_c].reshape(h // 2, w // 2),
                flat[n_y + n_c:].reshape(h // 2, w // 2))
    shift = 0 if fmt == "nv12" else 6
    a = a >> shift
    uv = a[h:].reshape(h // 2, w // 2, 2)
    return a[:h], uv[..., 0], uv[..., 1]


def rgb_order(fmt: str):
    """Byte positions of R, G, B in a packed pixel and the pixel size."""
    return {"rgb24": ((0, 1, 2), 3), "bgr24": ((2, 1, 0), 3), "rgba": ((0, 1, 2), 4)}[fmt]


def reflect_index(n: int, total: int) -> np.ndarray:
    """Source index of each of `total` padded positions along an axis of size n."""
    i = np.arange(total)
    if n == 1:
        return np.zeros_like(i)
    period = 2 * (n - 1)
    m = i % period
    return np.where(m < n, m, period - m)
