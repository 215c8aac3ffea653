"""irflow_engine.pixfmt (native pixel-format conversions) against the float64 numpy reference.

Outputs are poisoned first (NaN for tensors, 0xAB bytes for frames) so unwritten elements show up.
Integer outputs are compared with `assert_codes`: the extension works in float32, so a code may
differ from the float64 reference by one only where the exact value is within 1e-3 of a rounding
tie.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import pixfmt_reference as ref
from irflow_engine import pixfmt as P

MATRICES = ("bt601", "bt709", "bt2020")
RANGES = ("limited", "full")
POISON = 0xAB


def rng(seed=0):
    return np.random.default_rng(seed)


def nan_tensor(shape, dtype=torch.float32):
    return torch.full(shape, float("nan"), dtype=dtype)


def poisoned_frame(fmt, h, w, batch=None):
    f = P.empty_frame(fmt, h, w, batch=batch, numpy=True)
    f.view(np.uint8).fill(POISON)
    return f


def assert_codes(got, exact, bits, tie_tol=1e-3):
    got = np.asarray(got, np.int64)
    want = ref.round_codes(exact, bits)
    diff = got != want
    if diff.any():
        near_tie = np.abs(exact - np.floor(exact) - 0.5) < tie_tol
        bad = diff & ~(near_tie & (np.abs(got - want) <= 1))
        assert not bad.any(), (
            f"{bad.sum()} codes differ from the reference; first at {np.argwhere(bad)[0]}: "
            f"got {got[bad][:5]}, want {want[bad][:5]}, exact {exact[bad][:5]}")
        assert diff.mean() < 1e-2


def random_yuv_codes(fmt, h, w, seed=0):
    bits = ref.BITS[fmt]
    g = rng(seed)
    hi = 2 ** bits
    return (g.integers(0, hi, (h, w)), g.integers(0, hi, (h // 2, w // 2)),
            g.integers(0, hi, (h // 2, w // 2)))


def as_planes(fmt, frame):
    return list(P.frame_planes(frame, fmt))


# ------------------------------------------------------------------------ paths ----

def test_available_paths():
    paths = P.available_paths()
    assert paths[0] == "cpu"
    assert set(paths) <= {"cpu", "cuda"}
    assert "cpu" in P.describe_paths()


def test_errors_are_value_errors():
    for cls in (P.UnsupportedFormatError, P.FrameSizeError, P.PlaneError, P.DTypeError, P.LayoutError,
                P.DeviceError):
        assert issubclass(cls, P.PixelFormatError) and issubclass(cls, ValueError)


# ------------------------------------------------------------------ RGB formats ----

@pytest.mark.parametrize("fmt", ref.RGB_FORMATS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_rgb_to_tensor_exact(fmt, dtype):
    (ri, gi, bi), C = ref.rgb_order(fmt)
    frame = rng(1).integers(0, 256, (2, 7, 13, C), dtype=np.uint8)  # batch of 2, odd sizes
    out = nan_tensor((2, 3, 7, 13), dtype)
    got = P.frame_to_tensor(frame, fmt, out=out)
    assert got is out
    want = np.stack([frame[..., ri], frame[..., gi], frame[..., bi]], axis=1).astype(np.float64) / 255.0
    want = want.astype(np.float32).astype(np.float16 if dtype == torch.float16 else np.float32)
    np.testing.assert_array_equal(got.numpy(), want)


@pytest.mark.parametrize("fmt", ref.RGB_FORMATS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_tensor_to_rgb(fmt, dtype):
    (ri, gi, bi), C = ref.rgb_order(fmt)
    x = torch.from_numpy(rng(2).uniform(-0.2, 1.2, (3, 9, 11)).astype(np.float32)).to(dtype)
    x[0, 0, 0] = float("nan")
    out = poisoned_frame(fmt, 9, 11)
    P.tensor_to_frame(x, fmt, out=out)
    exact = np.clip(np.nan_to_num(x.double().numpy(), nan=0.0), 0, 1) * 255.0
    for ch, pos in enumerate((ri, gi, bi)):
        assert_codes(out[..., pos], exact[ch], 8)
    if C == 4:
        assert (out[..., 3] == 255).all()


@pytest.mark.parametrize("fmt", ref.RGB_FORMATS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_rgb_round_trip_exact(fmt, dtype):
    _, C = ref.rgb_order(fmt)
    frame = rng(3).integers(0, 256, (5, 3, C), dtype=np.uint8)
    if C == 4:
        frame[..., 3] = 255
    t = P.frame_to_tensor(frame, fmt, dtype=dtype)
    back = P.tensor_to_frame(t, fmt)
    assert isinstance(back, torch.Tensor) and back.shape == frame.shape
    np.testing.assert_array_equal(back.numpy(), frame)


# ------------------------------------------------------------------ YUV formats ----

@pytest.mark.parametrize("fmt", ref.YUV_FORMATS)
@pytest.mark.parametrize("matrix", MATRICES)
@pytest.mark.parametrize("range_", RANGES)
@pytest.mark.parametrize("up", ["nearest", "bilinear"])
def test_yuv_to_tensor(fmt, matrix, range_, up):
    bits = ref.BITS[fmt]
    h, w = 6, 10  # chroma 3×5: odd chroma sizes
    planes = [random_yuv_codes(fmt, h, w, seed=s) for s in (4, 5)]
    batch = np.stack([ref.pack(fmt, *p) for p in planes])
    want = np.stack([ref.yuv_to_rgb(*p, matrix, range_, bits, up) for p in planes])
    out = nan_tensor((2, 3, h, w))
    got = P.frame_to_tensor(batch, fmt, matrix=matrix, range=range_, upsample=up, out=out).numpy()
    np.testing.assert_allclose(got, want, rtol=0, atol=2e-6)
    # fp16 output: the same float32 values rounded to nearest even; planes given separately.
    half = P.frame_to_tensor(as_planes(fmt, batch), fmt, matrix=matrix, range=range_, upsample=up,
                             out=nan_tensor((2, 3, h, w), torch.float16))
    np.testing.assert_array_equal(half.numpy(), got.astype(np.float16))


@pytest.mark.parametrize("fmt", ref.YUV_FORMATS)
@pytest.mark.parametrize("matrix", MATRICES)
@pytest.mark.parametrize("range_", RANGES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_tensor_to_yuv(fmt, matrix, range_, dtype):
    bits = ref.BITS[fmt]
    h, w = 6, 14
    x = torch.from_numpy(rng(6).uniform(-0.1, 1.1, (2, 3, h, w)).astype(np.float32)).to(dtype)
    x[1, 2, 3, 4] = float("nan")
    out = poisoned_frame(fmt, h, w, batch=2)
    P.tensor_to_frame(x, fmt, matrix=matrix, range=range_, out=out)
    for k in range(2):
        exact = ref.rgb_to_yuv(x[k].double().numpy(), matrix, range_, bits)
        for got, ex in zip(ref.unpack(fmt, out[k]), exact):
            assert_codes(got, ex, bits)
    if fmt == "p010":
        assert not (out & 0x3F).any()  # codes live in the high 10 bits
    if fmt == "yuv420p10le":
        assert out.max() <= 1023


def test_bilinear_filter_is_torch_bilinear():
    c = rng(7).uniform(0, 1, (1, 1, 5, 7))
    want = F.interpolate(torch.from_numpy(c), scale_factor=2, mode="bilinear", align_corners=False)
    np.testing.assert_allclose(ref.upsample(c, "bilinear"), want.numpy(), rtol=0, atol=1e-12)


@pytest.mark.parametrize("fmt", ref.YUV_FORMATS)
@pytest.mark.parametrize("matrix", MATRICES)
@pytest.mark.parametrize("range_", RANGES)
def test_yuv_round_trip(fmt, matrix, range_):
    """frame -> tensor (nearest) -> frame reproduces every code of the 2×2 blocks whose decoded R'G'B'
    needs no clamping: exactly through float32 tensors, to ±1 through float16 ones."""
    bits = ref.BITS[fmt]
    h, w = 8, 12
    g = rng(8)
    rgb = np.repeat(np.repeat(g.uniform(0.1, 0.9, (3, h // 2, w // 2)), 2, 1), 2, 2)
    rgb = rgb + g.uniform(-0.05, 0.05, (1, h, w))  # luma detail inside blocks
    codes = [ref.round_codes(p, bits) for p in ref.rgb_to_yuv(rgb, matrix, range_, bits)]
    frame = ref.pack(fmt, *codes)
    # Pixels whose decoded R'G'B' stays inside [0, 1] (no clamping) must come back exactly.
    ys, cs, yo, co = ref.code_params(range_, bits)
    yuvn = np.stack([(codes[0] - yo) / ys, (ref.upsample(codes[1], "nearest") - co) / cs,
                     (ref.upsample(codes[2], "nearest") - co) / cs])
    dec = np.einsum("ij,jhw->ihw", np.linalg.inv(ref.forward_matrix(matrix)), yuvn)
    inside = ((dec > 1e-6) & (dec < 1 - 1e-6)).all(axis=0)
    block_inside = inside.reshape(h // 2, 2, w // 2, 2).all(axis=(1, 3))
    for dtype in (torch.float32, torch.float16):
        t = P.frame_to_tensor(frame, fmt, matrix=matrix, range=range_, upsample="nearest", dtype=dtype)
        back = ref.unpack(fmt, P.tensor_to_frame(t, fmt, matrix=matrix, range=range_).numpy())
        for k, (got, want) in enumerate(zip(back, codes)):
            mask = block_inside if k else np.repeat(np.repeat(block_inside, 2, 0), 2, 1)
            if dtype == torch.float32:
                np.testing.assert_array_equal(got[mask], want[mask])
            else:
                assert np.abs(got[mask] - want[mask]).max() <= 1, k
    assert block_inside.mean() > 0.5


@pytest.mark.parametrize("fmt", ref.YUV_FORMATS)
@pytest.mark.parametrize("range_", RANGES)
def test_tensor_round_trip_error_bound(fmt, range_):
    """tensor -> frame -> tensor on 2×2-constant images: error within half a code step through the
    inverse matrix (the stated quantisation error)."""
    bits = ref.BITS[fmt]
    matrix = "bt709"
    blocks = rng(9).uniform(0.05, 0.95, (3, 4, 5))
    x = torch.from_numpy(np.repeat(np.repeat(blocks, 2, 1), 2, 2).astype(np.float32))
    frame = P.tensor_to_frame(x, fmt, matrix=matrix, range=range_)
    back = P.frame_to_tensor(frame, fmt, matrix=matrix, range=range_, upsample="nearest")
    ys, cs, _, _ = ref.code_params(range_, bits)
    inv = np.linalg.inv(ref.forward_matrix(matrix))
    bound = 0.5 * (np.abs(inv[:, 0]) / ys + np.abs(inv[:, 1]) / cs + np.abs(inv[:, 2]) / cs) + 1e-6
    err = np.abs(back.numpy() - x.numpy()).max(axis=(1, 2))
    assert (err <= bound).all(), (err, bound)


def test_rawvideo_and_planes_agree():
    fmt = "nv12"
    frame = ref.pack(fmt, *random_yuv_codes(fmt, 4, 8, seed=10))
    y, uv = P.frame_planes(frame, fmt)
    a = P.frame_to_tensor(frame, fmt)
    b = P.frame_to_tensor([y, uv.reshape(2, 4, 2)], fmt)
    c = P.frame_to_tensor((torch.from_numpy(y), torch.from_numpy(uv)), fmt)
    assert torch.equal(a, b) and torch.equal(a, c)


def test_numpy_tensors_and_returned_kinds():
    frame = ref.pack("yuv420p", *random_yuv_codes("yuv420p", 4, 6, seed=20))
    t = P.frame_to_tensor(frame, "yuv420p")
    assert isinstance(t, torch.Tensor) and t.shape == (3, 4, 6) and t.dtype == torch.float32
    arr = np.full((3, 4, 6), np.nan, np.float16)
    assert P.frame_to_tensor(frame, "yuv420p", out=arr) is arr
    np.testing.assert_array_equal(arr, t.numpy().astype(np.float16))
    back = P.tensor_to_frame(t.numpy(), "yuv420p")  # numpy tensor -> numpy frame
    assert isinstance(back, np.ndarray) and back.dtype == np.uint8 and back.shape == (6, 6)
    np.testing.assert_array_equal(back, P.tensor_to_frame(t, "yuv420p").numpy())
    batched = P.tensor_to_frame(t[None], "p010")
    assert batched.shape == (1, 6, 6) and batched.dtype == getattr(torch, "uint16", torch.int16)


# ---------------------------------------------------------- padding, cropping ----

@pytest.mark.parametrize("fmt,h,w,m", [
    ("yuv420p", 30, 22, 8),     # pad < size: torch's reflect
    ("p010", 6, 10, 16),        # pad >= size: reflection continues
    ("rgb24", 1, 5, 4),         # size-1 axis repeats
    ("bgr24", 7, 1, 8),
    ("rgba", 3, 3, 1),
])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_reflect_padding(fmt, h, w, m, dtype):
    from irflow_engine.models.unet import reflect_pad

    if fmt in ref.RGB_FORMATS:
        frame = rng(11).integers(0, 256, (h, w, ref.rgb_order(fmt)[1]), dtype=np.uint8)
    else:
        frame = ref.pack(fmt, *random_yuv_codes(fmt, h, w, seed=11))
    plain = P.frame_to_tensor(frame, fmt, dtype=dtype)
    hp, wp = P.padded_size(h, w, m)
    padded = P.frame_to_tensor(frame, fmt, dtype=dtype, pad_to=m, out=nan_tensor((3, hp, wp), dtype))
    assert padded.shape == (3, hp, wp) and hp % m == 0 and wp % m == 0
    want = reflect_pad(plain[None].float(), hp - h, wp - w)[0].to(dtype)
    assert torch.equal(padded, want)
    if hp - h < h and wp - w < w:
        assert torch.equal(padded, F.pad(plain[None].float(), (0, wp - w, 0, hp - h), mode="reflect")[0]
                           .to(dtype))
    np.testing.assert_array_equal(padded.numpy()[:, ref.reflect_index(h, hp)][:, :, ref.reflect_index(w, wp)],
                                  padded.numpy())


@pytest.mark.parametrize("fmt", ["yuv420p10le", "nv12", "rgb24"])
def test_crop_on_the_way_out(fmt):
    x = torch.from_numpy(rng(12).uniform(0, 1, (2, 3, 16, 24)).astype(np.float32))
    got = P.tensor_to_frame(x, fmt, size=(6, 10))
    want = P.tensor_to_frame(x[..., :6, :10].contiguous(), fmt)
    assert got.shape == want.shape and torch.equal(got, want)


# ------------------------------------------------------------- pitches, batches ----

def test_planes_with_pitch_and_batch_stride():
    fmt, h, w = "yuv420p10le", 6, 8
    codes = [random_yuv_codes(fmt, h, w, seed=s) for s in (13, 14, 15)]
    # Each plane lives inside a wider, taller buffer: row pitch and batch stride both padded.
    bufs = [np.full((3, h + 3, w + 5), 7, np.uint16), np.full((3, h // 2 + 1, w // 2 + 3), 7, np.uint16),
            np.full((3, h // 2 + 2, w // 2 + 1), 7, np.uint16)]
    views = [bufs[0][:, :h, :w], bufs[1][:, :h // 2, :w // 2], bufs[2][:, :h // 2, :w // 2]]
    for k, c in enumerate(codes):
        for v, p in zip(views, c):
            v[k] = p
    want = torch.stack([P.frame_to_tensor(ref.pack(fmt, *c), fmt) for c in codes])
    big = nan_tensor((5, 3, h, w + 4))  # out: a slice of a bigger batch, rows with a pitch
    out = big[1:4, :, :, 2:2 + w]
    P.frame_to_tensor(views, fmt, out=out)
    assert torch.equal(out, want)
    assert big[0].isnan().all() and big[4].isnan().all()
    assert big[..., :2].isnan().all() and big[..., 2 + w:].isnan().all()
    # ...and back into the strided planes: the margins stay untouched.
    for b in bufs:
        b.fill(POISON)
    P.tensor_to_frame(out, fmt, out=views)
    back = np.stack([ref.pack(fmt, *(v[k] for v in views)) for k in range(3)])
    np.testing.assert_array_equal(back, P.tensor_to_frame(want, fmt).numpy())
    assert (bufs[0][:, h:] == POISON).all() and (bufs[0][:, :, w:] == POISON).all()
    assert (bufs[1][:, :, w // 2:] == POISON).all() and (bufs[2][:, h // 2:] == POISON).all()


def test_packed_rows_with_pitch_and_broadcast_batch():
    frame = rng(16).integers(0, 256, (4, 9, 3), dtype=np.uint8)
    wide = np.zeros((4, 12, 3), np.uint8)
    wide[:, :9] = frame
    view = wide[:, :9]  # pitch 36 bytes for 27 bytes of pixels
    a = P.frame_to_tensor(view, "rgb24")
    assert torch.equal(a, P.frame_to_tensor(frame, "rgb24"))
    batch = np.broadcast_to(frame, (3, 4, 9, 3))  # batch stride 0 is fine for inputs
    b = P.frame_to_tensor(batch, "rgb24")
    assert b.shape == (3, 3, 4, 9) and all(torch.equal(b[k], a) for k in range(3))


# ----------------------------------------------------------------------- errors ----

def test_error_odd_size_for_420():
    with pytest.raises(P.FrameSizeError, match="even"):
        P.frame_to_tensor([np.zeros((5, 6), np.uint8), np.zeros((3, 3), np.uint8), np.zeros((3, 3), np.uint8)],
                          "yuv420p")
    with pytest.raises(P.FrameSizeError, match="even"):
        P.tensor_to_frame(torch.zeros(3, 4, 7), "nv12")
    # Odd sizes are fine for RGB formats (tested above) and for a crop to even sizes:
    assert P.tensor_to_frame(torch.zeros(3, 5, 7), "nv12", size=(4, 6)).shape == (6, 6)


def test_error_planes():
    y, c = np.zeros((4, 6), np.uint8), np.zeros((2, 3), np.uint8)
    with pytest.raises(P.PlaneError, match="3 planes"):
        P.frame_to_tensor([y, c], "yuv420p")
    with pytest.raises(P.PlaneError, match="plane U must have shape 2×3"):
        P.frame_to_tensor([y, np.zeros((2, 4), np.uint8), c], "yuv420p")
    with pytest.raises(P.PlaneError, match="UV"):
        P.frame_to_tensor([y, c], "nv12")
    with pytest.raises(P.PlaneError, match="H×W×3"):
        P.frame_to_tensor(np.zeros((4, 6, 4), np.uint8), "rgb24")
    with pytest.raises(P.PlaneError, match="N×3×H×W"):
        P.tensor_to_frame(torch.zeros(4, 6, 3), "rgb24")
    with pytest.raises(P.FrameSizeError, match="multiple of 3"):
        P.frame_to_tensor(np.zeros((5, 6), np.uint8), "yuv420p")


def test_error_dtypes():
    with pytest.raises(P.DTypeError, match="uint16"):
        P.frame_to_tensor(np.zeros((6, 4), np.uint8), "p010")
    with pytest.raises(P.DTypeError, match="uint8"):
        P.frame_to_tensor(np.zeros((4, 4, 3), np.float32), "rgb24")
    with pytest.raises(P.DTypeError, match="float32 or float16"):
        P.tensor_to_frame(torch.zeros(3, 4, 4, dtype=torch.float64), "rgb24")
    with pytest.raises(P.DTypeError, match="float32 or float16"):
        P.frame_to_tensor(np.zeros((4, 4, 3), np.uint8), "rgb24", dtype=torch.bfloat16)
    with pytest.raises(P.DTypeError, match="byte order"):
        P.frame_to_tensor(np.zeros((6, 4), ">u2"), "yuv420p10le")
    with pytest.raises(P.DTypeError, match="disagrees"):
        P.frame_to_tensor(np.zeros((4, 4, 3), np.uint8), "rgb24", dtype=torch.float16, out=torch.empty(3, 4, 4))


def test_error_layouts():
    rgba = np.zeros((4, 6, 4), np.uint8)
    with pytest.raises(P.LayoutError, match="packed"):
        P.frame_to_tensor(rgba[..., :3], "rgb24")  # pixels 4 bytes apart
    with pytest.raises(P.LayoutError, match="contiguous"):
        P.frame_to_tensor(np.zeros((6, 8), np.uint8)[:, ::2], "yuv420p")
    with pytest.raises(P.LayoutError, match="contiguous rows"):
        P.frame_to_tensor(np.zeros((6, 10), np.uint8)[:, :8], "yuv420p")  # rawvideo with a row pitch
    # ...while NV12 rawvideo may have a pitch:
    P.frame_to_tensor(np.zeros((6, 10), np.uint8)[:, :8], "nv12")
    with pytest.raises(P.LayoutError, match=r"\.contiguous\(\)"):
        P.tensor_to_frame(torch.zeros(1, 4, 4, 3).permute(0, 3, 1, 2), "rgb24")  # channels-last
    with pytest.raises(P.LayoutError, match="negative"):
        P.frame_to_tensor(np.zeros((4, 4, 3), np.uint8)[::-1], "rgb24")
    short = np.lib.stride_tricks.as_strided(np.zeros(64, np.uint8), shape=(4, 6, 3), strides=(12, 3, 1))
    with pytest.raises(P.LayoutError, match="smaller than a row"):
        P.frame_to_tensor(short, "rgb24")  # rows overlap: pitch 12 < 18 bytes
    odd = np.frombuffer(bytearray(2 * 6 * 4 + 1), dtype=np.uint16, offset=1).reshape(6, 4)
    with pytest.raises(P.LayoutError, match="aligned"):
        P.frame_to_tensor(odd, "p010")
    ro = np.zeros((4, 4, 3), np.uint8)
    ro.setflags(write=False)
    with pytest.raises(P.LayoutError, match="read-only"):
        P.tensor_to_frame(torch.zeros(3, 4, 4), "rgb24", out=ro)
    with pytest.raises(P.LayoutError, match="overlap"):
        P.tensor_to_frame(torch.zeros(2, 3, 4, 4), "rgb24",
                          out=torch.zeros(4, 4, 3, dtype=torch.uint8).expand(2, 4, 4, 3))


def test_error_sizes_and_names():
    with pytest.raises(P.FrameSizeError, match="smaller than the frame"):
        P.tensor_to_frame(torch.zeros(3, 4, 4), "rgb24", out=np.zeros((6, 4, 3), np.uint8))
    with pytest.raises(P.FrameSizeError, match="out must have shape"):
        P.frame_to_tensor(np.zeros((4, 4, 3), np.uint8), "rgb24", pad_to=8, out=torch.empty(3, 4, 4))
    with pytest.raises(P.FrameSizeError, match="frame"):
        P.tensor_to_frame(torch.zeros(2, 3, 4, 4), "rgb24", out=np.zeros((3, 4, 4, 3), np.uint8))
    with pytest.raises(P.PixelFormatError, match="pad_to"):
        P.frame_to_tensor(np.zeros((4, 4, 3), np.uint8), "rgb24", pad_to=0)
    with pytest.raises(P.UnsupportedFormatError, match="yuv422p"):
        P.frame_to_tensor(np.zeros((4, 4), np.uint8), "yuv422p")
    with pytest.raises(P.UnsupportedFormatError, match="colour matrix"):
        P.frame_to_tensor(np.zeros((6, 4), np.uint8), "nv12", matrix="bt999")
    with pytest.raises(P.UnsupportedFormatError, match="range"):
        P.frame_to_tensor(np.zeros((6, 4), np.uint8), "nv12", range="studio")
    with pytest.raises(P.UnsupportedFormatError, match="upsampling"):
        P.frame_to_tensor(np.zeros((6, 4), np.uint8), "nv12", upsample="lanczos")
    with pytest.raises(P.PlaneError, match="numpy array or a torch tensor"):
        P.frame_to_tensor([[0]], "rgb24")


def test_error_devices():
    frame = np.zeros((4, 4, 3), np.uint8)
    with pytest.raises(P.DeviceError, match="meta"):
        P.frame_to_tensor(torch.zeros(4, 4, 3, dtype=torch.uint8, device="meta"), "rgb24")
    if torch.cuda.is_available():
        with pytest.raises(P.DeviceError):
            P.frame_to_tensor(frame, "rgb24", out=torch.empty(3, 4, 4, device="cuda"))


def test_ffmpeg_names_accepted():
    frame = ref.pack("nv12", *random_yuv_codes("nv12", 4, 4, seed=17))
    a = P.frame_to_tensor(frame, "NV12", matrix="bt470bg", range="tv")
    b = P.frame_to_tensor(frame, "nv12", matrix="bt601", range="limited")
    assert torch.equal(a, b)


# ------------------------------------------------------------- float16 rounding ----

@pytest.mark.parametrize("portable", [True, False])
def test_float_to_half_matches_numpy(portable):
    """Both float16 converters (plain C++, and F16C where the CPU has it) round like numpy."""
    from irflow_engine import _C

    g = rng(18)
    bits = np.concatenate([
        g.integers(0, 2 ** 32, 1 << 20, dtype=np.uint64).astype(np.uint32),
        # every float near the half subnormal/normal/overflow boundaries and ties
        np.arange(0x33000000 - 4096, 0x33000000 + 4096, dtype=np.uint32),
        np.arange(0x38800000 - 65536, 0x38800000 + 65536, dtype=np.uint32),
        np.arange(0x477fe000 - 8192, 0x477fe000 + 16384, dtype=np.uint32),
        np.array([0, 0x80000000, 0x7f800000, 0xff800000, 0x7fc00000, 0x3f800000], dtype=np.uint32),
    ])
    src = bits.view(np.float32)
    dst = np.empty(src.shape, np.uint16)
    _C.pixfmt_float_to_half(src.ctypes.data, dst.ctypes.data, src.size, portable=portable)
    with np.errstate(over="ignore"):
        want = src.astype(np.float16)
    got = dst.view(np.float16)
    nan = np.isnan(want)
    np.testing.assert_array_equal(np.isnan(got), nan)
    np.testing.assert_array_equal(got[~nan].view(np.uint16), want[~nan].view(np.uint16))
    # ...and back: every half value converts exactly.
    halves = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16)
    back = np.empty(halves.shape, np.float32)
    _C.pixfmt_half_to_float(halves.ctypes.data, back.ctypes.data, halves.size, portable=portable)
    want = halves.view(np.float16).astype(np.float32)
    nan = np.isnan(want)
    np.testing.assert_array_equal(np.isnan(back), nan)
    np.testing.assert_array_equal(back[~nan].view(np.uint32), want[~nan].view(np.uint32))


# ------------------------------------------------------------------ CUDA == CPU ----

def _bytes(t: torch.Tensor, device="cpu") -> torch.Tensor:
    """t's bytes on `device` (uint16 frames travel as int16: same bits, any torch version)."""
    if t.dtype not in (torch.uint8,) and not t.is_floating_point():
        t = t.view(torch.int16)
    return t.to(device).contiguous().view(torch.uint8)


def test_cuda_equals_cpu():
    if "cuda" not in P.available_paths():
        reason = f"CUDA path not available here: {P.describe_paths()}"
        print(reason)
        pytest.skip(reason)
    g = rng(19)
    h, w = 34, 50
    for fmt in ref.RGB_FORMATS + ref.YUV_FORMATS:
        if fmt in ref.RGB_FORMATS:
            frame = torch.from_numpy(g.integers(0, 256, (2, h, w, ref.rgb_order(fmt)[1]), dtype=np.uint8))
        else:
            frame = torch.from_numpy(np.stack([ref.pack(fmt, *random_yuv_codes(fmt, h, w, seed=s)) for s in (1, 2)]))
        gframe = _bytes(frame, "cuda").view(frame.dtype).view(frame.shape)
        for up in ("nearest", "bilinear"):
            for dtype in (torch.float32, torch.float16):
                kw = dict(matrix="bt2020", range="full", upsample=up, dtype=dtype, pad_to=16)
                cpu = P.frame_to_tensor(frame, fmt, **kw)
                gpu = P.frame_to_tensor(gframe, fmt, **kw)
                assert torch.equal(gpu.cpu(), cpu), (fmt, up, dtype)
        x = torch.from_numpy(g.uniform(-0.1, 1.1, (2, 3, h + 6, w + 2)).astype(np.float32))
        for dtype in (torch.float32, torch.float16):
            kw = dict(matrix="bt601", range="limited", size=(h, w))
            cpu = P.tensor_to_frame(x.to(dtype), fmt, **kw)
            gpu = P.tensor_to_frame(x.to(dtype).cuda(), fmt, **kw)
            torch.cuda.synchronize()
            assert torch.equal(_bytes(gpu), _bytes(cpu)), (fmt, dtype)
