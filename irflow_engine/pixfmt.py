"""Video pixel formats <-> planar R'G'B' tensors, in one pass, on the device that holds the frame.

Decoders hand out YUV frames (yuv420p from software decoders, NV12/P010 from hardware ones); the
network wants N×3×H×W float R'G'B' in [0, 1], padded to a multiple of 2^depth. This module is a thin
layer over the native extension ``irflow_engine._C``: it turns numpy arrays / torch tensors (CPU or
CUDA) into raw addresses, pitches and strides, checks them, and calls the C++ path (OpenMP, GIL
released) or the CUDA path (on the tensor's device, enqueued on torch's current stream).

Frame formats (``fmt``) and how a frame is given:

==============  =======  ==================================================================
format          sample   frame
==============  =======  ==================================================================
``rgb24``       uint8    H×W×3 (or N×H×W×3) array, R G B per pixel
``bgr24``       uint8    H×W×3, B G R per pixel
``rgba``        uint8    H×W×4, R G B A (alpha ignored on the way in, 255 on the way out)
``yuv420p``     uint8    planes ``(Y, U, V)``: H×W, H/2×W/2, H/2×W/2
``yuv420p10le`` uint16   as yuv420p, codes 0..1023 in the low bits
``nv12``        uint8    planes ``(Y, UV)``: H×W and H/2×W (or H/2×W/2×2), U V interleaved
``p010``        uint16   as nv12, 10-bit codes in the high bits (code << 6)
==============  =======  ==================================================================

Each plane may have its own row pitch (any row stride at least a row; elements within a row must be
contiguous) and, with a leading batch dimension N, any batch stride. A YUV frame may also be one
array in FFmpeg's rawvideo layout, (H·3/2)×W or N×(H·3/2)×W - what PyAV's ``to_ndarray()`` returns
for yuv420p/nv12 - which must have contiguous rows for the planar formats. 4:2:0 formats need an
even height and width.

Conventions (the C++ and CUDA paths share one implementation of them, ``csrc/pixfmt_math.h``, and
give bit-identical results):

- Matrices (``matrix``): ITU-R BT.601 (Kr, Kb = 0.299, 0.114), BT.709 (0.2126, 0.0722), BT.2020
  non-constant luminance (0.2627, 0.0593): ``Y = Kr R + Kg G + Kb B``, ``Cb = (B - Y)/(2(1 - Kb))``,
  ``Cr = (R - Y)/(2(1 - Kr))``. FFmpeg's names are accepted too (``bt470bg``, ``smpte170m``,
  ``bt2020nc``).
- Ranges (``range``), n-bit codes as in ITU-T H.273: ``limited`` (``tv``): ``Y = 2^(n-8)(219 Y + 16)``,
  ``C = 2^(n-8)(224 C + 128)``; ``full`` (``pc``): ``Y = (2^n - 1) Y``, ``C = (2^n - 1) C + 2^(n-1)``.
  RGB formats are always full range and ignore ``matrix``/``range``.
- 4:2:0 chroma siting: centre (JPEG/MPEG-1): each chroma sample sits at the centre of its 2×2 luma
  block, which is what averaging a 2×2 block produces. Sources with MPEG-2/"left" siting
  (H.264/HEVC's default) are read as if centre-sited, i.e. shifted by a quarter of a chroma sample.
- Frame -> tensor: codes are decoded exactly (chroma first upsampled, in integers), then converted
  in float32 and clamped to [0, 1]. Chroma upsampling (``upsample``): ``nearest`` copies the
  block's sample to its four pixels; ``bilinear`` weighs the four nearest samples 9/16, 3/16, 3/16,
  1/16 (the sample of the pixel's block, its horizontal and vertical neighbours on the pixel's side,
  and the diagonal one), repeating edge samples - the same as ``F.interpolate(scale_factor=2,
  mode="bilinear", align_corners=False)``. float16 outputs are rounded to nearest even.
- ``pad_to=m`` reflect-pads the bottom/right to multiples of m, equal to
  ``irflow_engine.models.unet.reflect_pad`` (torch's ``reflect`` where it is defined; it keeps
  reflecting with period 2(n - 1) for larger pads and repeats a size-1 axis).
- Tensor -> frame: the top-left frame-sized region is used (cropping any padding); values are
  clamped to [0, 1] (NaN -> 0), converted in float32 and rounded to the nearest code (halves up);
  each chroma sample is computed from the average of its 2×2 block of R'G'B' pixels.
- Error: the tensor -> frame -> tensor round trip of RGB formats is exact for values k/255; the
  frame -> tensor -> frame round trip of YUV formats (nearest upsampling) reproduces every code to
  ±1 where no clamping to [0, 1] occurs.

Batches: a frame (or each plane) with a leading dimension N converts to / from an N×3×H×W tensor;
a frame without one converts to / from a 3×H×W tensor.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch

__all__ = [
    "FORMATS", "MATRICES", "RANGES", "UPSAMPLING",
    "PixelFormatError", "UnsupportedFormatError", "FrameSizeError", "PlaneError", "DTypeError",
    "LayoutError", "DeviceError",
    "frame_to_tensor", "tensor_to_frame", "empty_frame", "frame_planes", "padded_size",
    "available_paths", "describe_paths",
]

Array = Union[np.ndarray, torch.Tensor]
Frame = Union[Array, Sequence[Array]]


class PixelFormatError(ValueError):
    """A frame, tensor or option the pixel-format conversions cannot handle; the message says why."""


class UnsupportedFormatError(PixelFormatError):
    """Unknown pixel format, colour matrix, range, upsampling filter or tensor dtype name."""


class FrameSizeError(PixelFormatError):
    """Sizes that do not fit: odd 4:2:0 sizes, planes/tensors/outputs of disagreeing sizes."""


class PlaneError(PixelFormatError):
    """Wrong number of planes, or a plane/tensor of the wrong rank or channel count."""


class DTypeError(PixelFormatError):
    """A plane or tensor of the wrong element type."""


class LayoutError(PixelFormatError):
    """Strides the conversions cannot handle: non-contiguous rows, pitch below a row, overlaps."""


class DeviceError(PixelFormatError):
    """Arrays on different devices, or on a device with no conversion path."""


@dataclass(frozen=True)
class _Spec:
    name: str
    yuv: bool
    channels: int  # bytes per pixel of the packed RGB formats; 0 for YUV
    itemsize: int  # bytes per sample
    planes: int
    semiplanar: bool


FORMATS = {
    "rgb24": _Spec("rgb24", False, 3, 1, 1, False),
    "bgr24": _Spec("bgr24", False, 3, 1, 1, False),
    "rgba": _Spec("rgba", False, 4, 1, 1, False),
    "yuv420p": _Spec("yuv420p", True, 0, 1, 3, False),
    "yuv420p10le": _Spec("yuv420p10le", True, 0, 2, 3, False),
    "nv12": _Spec("nv12", True, 0, 1, 2, True),
    "p010": _Spec("p010", True, 0, 2, 2, True),
}
_FORMAT_ALIASES = {"p010le": "p010", "rgb": "rgb24", "bgr": "bgr24"}

MATRICES = ("bt601", "bt709", "bt2020")
_MATRIX_ALIASES = {
    "601": "bt601", "bt470bg": "bt601", "smpte170m": "bt601", "bt.601": "bt601",
    "709": "bt709", "bt.709": "bt709",
    "2020": "bt2020", "bt2020nc": "bt2020", "bt2020_ncl": "bt2020", "bt2020ncl": "bt2020",
    "bt.2020": "bt2020",
}
RANGES = ("limited", "full")
_RANGE_ALIASES = {"tv": "limited", "mpeg": "limited", "pc": "full", "jpeg": "full"}
UPSAMPLING = ("nearest", "bilinear")


# ------------------------------------------------------------------ the extension ----

_C = None


def _ext():
    global _C
    if _C is None:
        try:
            _C = importlib.import_module("irflow_engine._C")
        except ImportError as e:  # pragma: no cover - only without a built extension
            raise RuntimeError(
                "irflow_engine._C is not built; install the package (pip install -e .) to get the "
                f"pixel-format conversions ({e})") from e
    return _C


def available_paths() -> Tuple[str, ...]:
    """Conversion paths usable now: ``("cpu",)`` or ``("cpu", "cuda")`` (CUDA compiled and a GPU visible)."""
    try:
        C = _ext()
    except RuntimeError:
        return ()
    paths = ["cpu"]
    if C.cuda_compiled and torch.cuda.is_available() and C.cuda_device_count() > 0:
        paths.append("cuda")
    return tuple(paths)


def describe_paths() -> str:
    """One line saying which paths exist and why CUDA is missing when it is."""
    try:
        C = _ext()
    except RuntimeError as e:
        return f"no native paths: {e}"
    cpu = "cpu (C++, OpenMP)" if C.openmp else "cpu (C++, single thread: built without OpenMP)"
    if not C.cuda_compiled:
        cuda = "cuda: not compiled (no nvcc at build time, or IRFLOW_WITH_CUDA=OFF)"
    elif not torch.cuda.is_available() or C.cuda_device_count() == 0:
        cuda = "cuda: compiled, but no GPU visible"
    else:
        cuda = f"cuda (runtime {C.cuda_runtime_version()}, {C.cuda_device_count()} device(s))"
    return f"{cpu}; {cuda}"


# ---------------------------------------------------------------------- names ----

def _spec(fmt: str) -> _Spec:
    if not isinstance(fmt, str):
        raise UnsupportedFormatError(f"pixel format must be a string, got {type(fmt).__name__}")
    name = _FORMAT_ALIASES.get(fmt.lower(), fmt.lower())
    if name not in FORMATS:
        raise UnsupportedFormatError(f"unknown pixel format {fmt!r}; supported: {', '.join(FORMATS)}")
    return FORMATS[name]


def _name(value: str, choices: Sequence[str], aliases: dict, what: str) -> str:
    key = str(value).lower()
    key = aliases.get(key, key)
    if key not in choices:
        raise UnsupportedFormatError(f"unknown {what} {value!r}; supported: {', '.join(choices)}")
    return key


def _tensor_dtype(dtype: Any) -> str:
    if dtype in (torch.float32, np.float32, "float32"):
        return "float32"
    if dtype in (torch.float16, np.float16, "float16"):
        return "float16"
    try:
        if np.dtype(dtype) in (np.float32, np.float16):
            return np.dtype(dtype).name
    except TypeError:
        pass
    raise DTypeError(f"tensor dtype must be float32 or float16, got {dtype}")


# ------------------------------------------------------------------ array views ----

_TORCH_DTYPES = {
    torch.uint8: "uint8", torch.int16: "int16", torch.float32: "float32", torch.float16: "float16",
}
if hasattr(torch, "uint16"):
    _TORCH_DTYPES[torch.uint16] = "uint16"


@dataclass
class _View:
    """A numpy array or torch tensor as memory: address, shape, byte strides, element type."""

    obj: Any
    ptr: int
    shape: Tuple[int, ...]
    strides: Tuple[int, ...]  # bytes
    itemsize: int
    dtype: str
    device: torch.device
    is_numpy: bool

    @property
    def ndim(self) -> int:
        return len(self.shape)


def _view(x: Any, what: str, writable: bool = False) -> _View:
    if isinstance(x, np.ndarray):
        if x.dtype.itemsize > 1 and not x.dtype.isnative:
            raise DTypeError(f"{what} has non-native byte order ({x.dtype.str}); use a native-endian array")
        if writable and not x.flags.writeable:
            raise LayoutError(f"{what} is read-only")
        return _View(x, int(x.ctypes.data), tuple(x.shape), tuple(x.strides), x.dtype.itemsize,
                     x.dtype.name, torch.device("cpu"), True)
    if isinstance(x, torch.Tensor):
        es = x.element_size()
        return _View(x, int(x.data_ptr()), tuple(x.shape), tuple(s * es for s in x.stride()), es,
                     _TORCH_DTYPES.get(x.dtype, str(x.dtype).replace("torch.", "")), x.device, False)
    raise PlaneError(f"{what} must be a numpy array or a torch tensor, got {type(x).__name__}")


def _check_aligned(v: _View, what: str) -> None:
    if v.itemsize > 1 and (v.ptr % v.itemsize or any(s % v.itemsize for s in v.strides)):
        raise LayoutError(f"{what} is not aligned to its {v.itemsize}-byte elements (address or strides); "
                          "copy it into a fresh array")


def _stride(v: _View, dim: int, natural: int) -> int:
    """Byte stride of `dim`, or `natural` when the dimension has size 1 (its stride is meaningless)."""
    if v.shape[dim] == 1:
        return natural
    s = v.strides[dim]
    if s < 0:
        raise LayoutError(f"negative strides are not supported (strides {v.strides})")
    return s


def _same_device(views: Sequence[_View], what: str) -> torch.device:
    dev = views[0].device
    for v in views[1:]:
        if v.device != dev:
            raise DeviceError(f"{what} are on different devices ({dev} and {v.device})")
    return dev


@dataclass
class _FrameDesc:
    n: int
    batched: bool
    height: int
    width: int
    planes: List[Tuple[int, int, int]]  # (address, pitch, batch stride) in bytes
    device: torch.device
    is_numpy: bool
    keep: Any  # the arrays, kept alive for the duration of the call


def _check_sample_dtype(v: _View, spec: _Spec, what: str) -> None:
    ok = ("uint8",) if spec.itemsize == 1 else ("uint16", "int16")
    if v.dtype not in ok:
        raise DTypeError(f"{what} of a {spec.name} frame must be {' or '.join(ok)}, got {v.dtype}")


def _check_even(spec: _Spec, height: int, width: int) -> None:
    if height < 1 or width < 1:
        raise FrameSizeError(f"frame size must be positive, got {height}x{width} (H x W)")
    if spec.yuv and (height % 2 or width % 2):
        raise FrameSizeError(
            f"{spec.name} (4:2:0) needs an even height and width, got {height}x{width} (H x W); "
            "crop or pad the frame to even sizes")


def _check_batch_layout(n: int, rows: int, pitch: int, bstride: int, output: bool, what: str) -> None:
    if output and n > 1 and bstride < rows * pitch:
        raise LayoutError(f"{what}: frames of the batch overlap (batch stride {bstride} < {rows} rows × "
                          f"pitch {pitch})")


def _packed_desc(x: Any, spec: _Spec, output: bool) -> _FrameDesc:
    what = "out" if output else "frame"
    v = _view(x, what, writable=output)
    C = spec.channels
    if v.ndim not in (3, 4) or v.shape[-1] != C:
        raise PlaneError(f"{spec.name} {what} must be H×W×{C} or N×H×W×{C}, got shape {v.shape}")
    _check_sample_dtype(v, spec, what)
    n = v.shape[0] if v.ndim == 4 else 1
    h, w = v.shape[-3], v.shape[-2]
    _check_even(spec, h, w)
    if n < 1:
        raise FrameSizeError(f"{what} has an empty batch")
    if _stride(v, -1, 1) != 1 or _stride(v, -2, C) != C:
        raise LayoutError(f"{spec.name} {what}: pixels must be packed ({C} contiguous bytes per pixel, "
                          f"pixels contiguous within a row); got byte strides {v.strides}")
    pitch = _stride(v, -3, w * C)
    if pitch < w * C:
        raise LayoutError(f"{spec.name} {what}: row pitch {pitch} is smaller than a row ({w * C} bytes)")
    bstride = _stride(v, 0, 0) if v.ndim == 4 else 0
    _check_batch_layout(n, h, pitch, bstride, output, what)
    return _FrameDesc(n, v.ndim == 4, h, w, [(v.ptr, pitch, bstride)], v.device, v.is_numpy, x)


def _yuv_planes_desc(planes: Sequence[Any], spec: _Spec, output: bool) -> _FrameDesc:
    what = "out" if output else "frame"
    names = ("Y", "UV") if spec.semiplanar else ("Y", "U", "V")
    if len(planes) != spec.planes:
        raise PlaneError(f"a {spec.name} frame has {spec.planes} planes ({', '.join(names)}), "
                         f"got {len(planes)}")
    views = [_view(p, f"{what} plane {nm}", writable=output) for p, nm in zip(planes, names)]
    y = views[0]
    if y.ndim not in (2, 3):
        raise PlaneError(f"{spec.name} {what} plane Y must be H×W or N×H×W, got shape {y.shape}")
    batched = y.ndim == 3
    lead = y.shape[:1] if batched else ()
    n = y.shape[0] if batched else 1
    h, w = y.shape[-2:]
    _check_even(spec, h, w)
    device = _same_device(views, f"{what} planes")
    out = []
    for nm, v in zip(names, views):
        _check_sample_dtype(v, spec, f"plane {nm}")
        _check_aligned(v, f"{what} plane {nm}")
        es = v.itemsize
        if nm == "Y":
            rows, row_elems, shapes = h, w, [lead + (h, w)]
        elif nm == "UV":
            rows, row_elems = h // 2, w
            shapes = [lead + (h // 2, w), lead + (h // 2, w // 2, 2)]
        else:
            rows, row_elems, shapes = h // 2, w // 2, [lead + (h // 2, w // 2)]
        if v.shape not in shapes:
            want = " or ".join("×".join(map(str, s)) for s in shapes)
            raise PlaneError(f"{spec.name} plane {nm} must have shape {want} for a {h}x{w} (H x W) frame, "
                             f"got {v.shape}")
        row_dim = -2
        if v.ndim == len(lead) + 3:  # UV as H/2 × W/2 × 2
            if _stride(v, -1, es) != es or _stride(v, -2, 2 * es) != 2 * es:
                raise LayoutError(f"{spec.name} plane UV: U and V must alternate contiguously within a row; "
                                  f"got byte strides {v.strides}")
            row_dim = -3
        elif _stride(v, -1, es) != es:
            raise LayoutError(f"{spec.name} plane {nm}: samples within a row must be contiguous; "
                              f"got byte strides {v.strides}")
        pitch = _stride(v, row_dim, row_elems * es)
        if pitch < row_elems * es:
            raise LayoutError(f"{spec.name} plane {nm}: row pitch {pitch} is smaller than a row "
                              f"({row_elems * es} bytes)")
        bstride = _stride(v, 0, 0) if batched else 0
        _check_batch_layout(n, rows, pitch, bstride, output, f"{what} plane {nm}")
        out.append((v.ptr, pitch, bstride))
    return _FrameDesc(n, batched, h, w, out, device, views[0].is_numpy, planes)


def _rawvideo_desc(x: Any, spec: _Spec, output: bool) -> _FrameDesc:
    what = "out" if output else "frame"
    v = _view(x, what, writable=output)
    if v.ndim not in (2, 3):
        raise PlaneError(f"a {spec.name} {what} is a sequence of planes or one (H·3/2)×W (or N×(H·3/2)×W) "
                         f"array, got shape {v.shape}")
    _check_sample_dtype(v, spec, what)
    _check_aligned(v, what)
    rows, w = v.shape[-2:]
    if rows % 3:
        raise FrameSizeError(f"a {spec.name} {what} array has H·3/2 rows for an even height H; "
                             f"{rows} rows is not a multiple of 3")
    h = rows * 2 // 3
    _check_even(spec, h, w)
    es = v.itemsize
    n = v.shape[0] if v.ndim == 3 else 1
    if _stride(v, -1, es) != es:
        raise LayoutError(f"{spec.name} {what}: samples within a row must be contiguous; "
                          f"got byte strides {v.strides}")
    pitch = _stride(v, -2, w * es)
    if pitch < w * es:
        raise LayoutError(f"{spec.name} {what}: row pitch {pitch} is smaller than a row ({w * es} bytes)")
    if not spec.semiplanar and pitch != w * es:
        raise LayoutError(f"{spec.name} {what}: the rawvideo layout of a planar format needs contiguous rows "
                          f"(pitch {w * es}, got {pitch}); pass the planes (Y, U, V) separately instead")
    bstride = _stride(v, 0, 0) if v.ndim == 3 else 0
    _check_batch_layout(n, rows, pitch, bstride, output, what)
    if spec.semiplanar:
        planes = [(v.ptr, pitch, bstride), (v.ptr + h * pitch, pitch, bstride)]
    else:
        y_bytes, c_bytes = h * w * es, (h // 2) * (w // 2) * es
        cp = (w // 2) * es
        planes = [(v.ptr, pitch, bstride), (v.ptr + y_bytes, cp, bstride),
                  (v.ptr + y_bytes + c_bytes, cp, bstride)]
    return _FrameDesc(n, v.ndim == 3, h, w, planes, v.device, v.is_numpy, x)


def _frame_desc(frame: Frame, spec: _Spec, output: bool) -> _FrameDesc:
    if not spec.yuv:
        return _packed_desc(frame, spec, output)
    if isinstance(frame, (list, tuple)):
        return _yuv_planes_desc(frame, spec, output)
    return _rawvideo_desc(frame, spec, output)


@dataclass
class _TensorDesc:
    n: int
    batched: bool
    height: int
    width: int
    ptr: int
    dtype: str
    strides: Tuple[int, int, int]  # n, c, h in elements
    device: torch.device
    is_numpy: bool
    keep: Any


def _tensor_desc(x: Any, what: str, output: bool) -> _TensorDesc:
    v = _view(x, what, writable=output)
    if v.ndim not in (3, 4) or v.shape[-3] != 3:
        raise PlaneError(f"{what} must be 3×H×W or N×3×H×W, got shape {v.shape}")
    if v.dtype not in ("float32", "float16"):
        raise DTypeError(f"{what} must be float32 or float16, got {v.dtype}")
    n = v.shape[0] if v.ndim == 4 else 1
    h, w = v.shape[-2:]
    if n < 1 or h < 1 or w < 1:
        raise FrameSizeError(f"{what} is empty (shape {v.shape})")
    es = v.itemsize
    _check_aligned(v, what)
    if _stride(v, -1, es) != es:
        raise LayoutError(f"{what}: the last (W) dimension must be contiguous (stride 1), got strides "
                          f"{tuple(s // es for s in v.strides)} in elements; call .contiguous() first "
                          "(channels-last tensors are not supported)")
    sh = _stride(v, -2, w * es)
    sc = _stride(v, -3, h * sh)
    sn = _stride(v, 0, 3 * sc) if v.ndim == 4 else 0
    if output and ((h > 1 and sh == 0) or sc == 0 or (n > 1 and sn == 0)):
        raise LayoutError(f"{what}: output elements overlap (zero strides {v.strides})")
    return _TensorDesc(n, v.ndim == 4, h, w, v.ptr, v.dtype, (sn // es, sc // es, sh // es), v.device,
                       v.is_numpy, x)


# ------------------------------------------------------------------ dispatch ----

def _cuda_call(device: torch.device):
    C = _ext()
    if not C.cuda_compiled:
        raise DeviceError("the frame is on CUDA, but irflow_engine._C was built without its CUDA path "
                          "(no nvcc at build time, or IRFLOW_WITH_CUDA=OFF); move the frame to the CPU or "
                          "rebuild with nvcc")
    index = device.index if device.index is not None else torch.cuda.current_device()
    return {"device": index, "stream": torch.cuda.current_stream(index).cuda_stream}


def _run(name: str, device: torch.device, **kwargs) -> None:
    C = _ext()
    if device.type == "cpu":
        getattr(C, f"pixfmt_{name}")(**kwargs)
    elif device.type == "cuda":
        extra = _cuda_call(device)
        getattr(C, f"pixfmt_cuda_{name}")(**kwargs, **extra)
    else:
        raise DeviceError(f"no pixel-format path for device {device} (cpu or cuda)")


def padded_size(height: int, width: int, pad_to: int = 1) -> Tuple[int, int]:
    """(H, W) rounded up to multiples of `pad_to`: the tensor size `frame_to_tensor` makes."""
    if not isinstance(pad_to, (int, np.integer)) or isinstance(pad_to, bool) or pad_to < 1:
        raise PixelFormatError(f"pad_to must be a positive integer, got {pad_to!r}")
    return -(-height // pad_to) * pad_to, -(-width // pad_to) * pad_to


def frame_to_tensor(frame: Frame, fmt: str, *, matrix: str = "bt709", range: str = "limited",
                    upsample: str = "bilinear", dtype: Any = None, pad_to: int = 1,
                    out: Optional[Array] = None) -> Array:
    """Convert a frame (or a batch of frames) to planar R'G'B' in [0, 1].

    Returns a 3×H'×W' tensor for a frame without a batch dimension, N×3×H'×W' for a batch, where
    (H', W') = ``padded_size(H, W, pad_to)`` (reflect padding); on the frame's device (numpy frames
    give CPU tensors). ``dtype``: float32 (default) or float16. ``out``: a tensor (or numpy array) of
    that shape to fill instead, float32/float16, last dimension contiguous; it is returned.
    """
    spec = _spec(fmt)
    matrix = _name(matrix, MATRICES, _MATRIX_ALIASES, "colour matrix")
    range = _name(range, RANGES, _RANGE_ALIASES, "range")
    upsample = _name(upsample, UPSAMPLING, {}, "chroma upsampling")
    fr = _frame_desc(frame, spec, output=False)
    hp, wp = padded_size(fr.height, fr.width, pad_to)
    want = (fr.n, 3, hp, wp) if fr.batched else (3, hp, wp)
    if out is None:
        dt = torch.float16 if dtype is not None and _tensor_dtype(dtype) == "float16" else torch.float32
        out = torch.empty(want, dtype=dt, device=fr.device)
    else:
        oshape = tuple(out.shape)
        if oshape != want and not (not fr.batched and oshape == (1,) + want):
            raise FrameSizeError(f"out must have shape {want} for this frame (pad_to={pad_to}), got {oshape}")
    td = _tensor_desc(out, "out", output=True)
    if dtype is not None and _tensor_dtype(dtype) != td.dtype:
        raise DTypeError(f"dtype={dtype} disagrees with out's dtype {td.dtype}")
    if td.device != fr.device:
        raise DeviceError(f"out is on {td.device} but the frame is on {fr.device}")
    _run("frame_to_tensor", fr.device, format=spec.name, n=fr.n, height=fr.height, width=fr.width,
         planes=fr.planes, tensor=td.ptr, dtype=td.dtype, tensor_height=td.height, tensor_width=td.width,
         strides=td.strides, matrix=matrix, range=range, upsample=upsample)
    return out


def tensor_to_frame(tensor: Array, fmt: str, *, matrix: str = "bt709", range: str = "limited",
                    size: Optional[Tuple[int, int]] = None, out: Optional[Frame] = None) -> Frame:
    """Convert planar R'G'B' (3×H×W or N×3×H×W, float32/float16, values clamped to [0, 1]) to a frame.

    ``size=(H, W)`` crops to the top-left H×W (default: the tensor's size, or ``out``'s). Without
    ``out``, returns a new frame in the layout of ``empty_frame`` (packed H×W×C, or YUV rawvideo
    (H·3/2)×W), with a leading N for a 4-D tensor, on the tensor's device (numpy for a numpy tensor).
    ``out``: a frame to fill (any layout ``frame_to_tensor`` accepts); it is returned.
    """
    spec = _spec(fmt)
    matrix = _name(matrix, MATRICES, _MATRIX_ALIASES, "colour matrix")
    range = _name(range, RANGES, _RANGE_ALIASES, "range")
    td = _tensor_desc(tensor, "tensor", output=False)
    if size is not None:
        try:
            h, w = (int(s) for s in size)
        except (TypeError, ValueError):
            raise FrameSizeError(f"size must be (height, width), got {size!r}") from None
    if out is None:
        if size is None:
            h, w = td.height, td.width
        _check_even(spec, h, w)
        out = empty_frame(spec.name, h, w, batch=td.n if td.batched else None, device=td.device,
                          numpy=td.is_numpy)
    fr = _frame_desc(out, spec, output=True)
    if size is not None and (fr.height, fr.width) != (h, w):
        raise FrameSizeError(f"size={size} disagrees with out's frame size {fr.height}x{fr.width}")
    if fr.n != td.n:
        raise FrameSizeError(f"the tensor holds {td.n} frame(s) but out holds {fr.n}")
    if td.height < fr.height or td.width < fr.width:
        raise FrameSizeError(f"the tensor ({td.height}x{td.width}) is smaller than the frame "
                             f"({fr.height}x{fr.width}); it can only be cropped")
    if td.device != fr.device:
        raise DeviceError(f"the tensor is on {td.device} but out is on {fr.device}")
    _run("tensor_to_frame", td.device, tensor=td.ptr, dtype=td.dtype, tensor_height=td.height,
         tensor_width=td.width, strides=td.strides, format=spec.name, n=fr.n, height=fr.height,
         width=fr.width, planes=fr.planes, matrix=matrix, range=range)
    return out


# ----------------------------------------------------------- frame allocation ----

def empty_frame(fmt: str, height: int, width: int, *, batch: Optional[int] = None,
                device: Union[str, torch.device] = "cpu", numpy: bool = False) -> Array:
    """An uninitialised frame in the contiguous layout FFmpeg's rawvideo uses.

    Packed RGB: H×W×C uint8. YUV: (H·3/2)×W (Y rows, then U and V - or UV - rows), uint8 or uint16
    (10-bit formats; torch.uint16 for tensors). ``batch`` adds a leading dimension. A numpy array
    when ``numpy`` is true (CPU only), else a torch tensor on ``device``.
    """
    spec = _spec(fmt)
    _check_even(spec, height, width)
    shape = (height, width, spec.channels) if not spec.yuv else (height * 3 // 2, width)
    if batch is not None:
        shape = (int(batch),) + shape
    if numpy:
        if torch.device(device).type != "cpu":
            raise DeviceError(f"numpy frames live on the CPU, not {device}")
        return np.empty(shape, dtype=np.uint8 if spec.itemsize == 1 else np.uint16)
    dt = torch.uint8 if spec.itemsize == 1 else getattr(torch, "uint16", torch.int16)
    return torch.empty(shape, dtype=dt, device=device)


def frame_planes(frame: Array, fmt: str) -> Tuple[Array, ...]:
    """Views of the planes of a YUV rawvideo frame ((H·3/2)×W, optionally with a leading N):
    ``(Y, U, V)`` (H×W, H/2×W/2, H/2×W/2) or ``(Y, UV)`` (H×W, H/2×W) for NV12/P010."""
    spec = _spec(fmt)
    if not spec.yuv:
        raise PlaneError(f"{spec.name} is a packed format with a single plane")
    fr = _rawvideo_desc(frame, spec, output=False)
    h, w = fr.height, fr.width
    lead = tuple(frame.shape[:-2])
    if spec.semiplanar:
        return frame[..., :h, :], frame[..., h:, :]
    flat = frame.reshape(lead + (-1,))
    y_n, c_n = h * w, (h // 2) * (w // 2)
    return (flat[..., :y_n].reshape(lead + (h, w)),
            flat[..., y_n:y_n + c_n].reshape(lead + (h // 2, w // 2)),
            flat[..., y_n + c_n:].reshape(lead + (h // 2, w // 2)))
