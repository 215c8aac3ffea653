// Argument checking shared by both paths, and the Python bindings of the CPU path.
#include "pixfmt.h"

#include <stdexcept>

#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

namespace py = pybind11;

namespace irflow {
namespace pixfmt {
namespace {

using i64 = std::int64_t;

[[noreturn]] void fail(const std::string& what) { throw std::invalid_argument("pixfmt: " + what); }

int planes_of(Format f) {
  if (!is_yuv(f)) return 1;
  return is_semiplanar(f) ? 2 : 3;
}

}  // namespace

Format parse_format(const std::string& name) {
  if (name == "rgb24") return Format::kRGB24;
  if (name == "bgr24") return Format::kBGR24;
  if (name == "rgba") return Format::kRGBA;
  if (name == "yuv420p") return Format::kYUV420P;
  if (name == "yuv420p10le") return Format::kYUV420P10;
  if (name == "nv12") return Format::kNV12;
  if (name == "p010") return Format::kP010;
  fail("unknown pixel format '" + name + "'");
}

Matrix parse_matrix(const std::string& name) {
  if (name == "bt601") return Matrix::kBT601;
  if (name == "bt709") return Matrix::kBT709;
  if (name == "bt2020") return Matrix::kBT2020;
  fail("unknown colour matrix '" + name + "'");
}

Range parse_range(const std::string& name) {
  if (name == "limited") return Range::kLimited;
  if (name == "full") return Range::kFull;
  fail("unknown range '" + name + "'");
}

Upsample parse_upsample(const std::string& name) {
  if (name == "nearest") return Upsample::kNearest;
  if (name == "bilinear") return Upsample::kBilinear;
  fail("unknown chroma upsampling '" + name + "'");
}

DType parse_dtype(const std::string& name) {
  if (name == "float32") return DType::kFloat32;
  if (name == "float16") return DType::kFloat16;
  fail("unsupported tensor dtype '" + name + "' (float32 or float16)");
}

int format_bits(Format f) { return is_16bit(f) ? 10 : 8; }

FrameDesc make_frame_desc(const std::string& format, i64 n, i64 height, i64 width,
                          const std::vector<PlaneArg>& planes) {
  FrameDesc f{};
  f.format = parse_format(format);
  f.n = n;
  f.height = height;
  f.width = width;
  if (static_cast<int>(planes.size()) != planes_of(f.format))
    fail(format + " needs " + std::to_string(planes_of(f.format)) + " plane(s), got " +
         std::to_string(planes.size()));
  for (size_t p = 0; p < planes.size(); ++p)
    f.plane[p] = {std::get<0>(planes[p]), std::get<1>(planes[p]), std::get<2>(planes[p])};
  return f;
}

TensorDesc make_tensor_desc(std::uintptr_t ptr, const std::string& dtype, i64 n, i64 height, i64 width,
                            const StridesArg& strides) {
  TensorDesc t{};
  t.ptr = ptr;
  t.dtype = parse_dtype(dtype);
  t.n = n;
  t.height = height;
  t.width = width;
  t.stride_n = std::get<0>(strides);
  t.stride_c = std::get<1>(strides);
  t.stride_h = std::get<2>(strides);
  return t;
}

void check_descriptors(const FrameDesc& f, const TensorDesc& t) {
  if (f.n < 1 || f.height < 1 || f.width < 1) fail("frame sizes must be positive");
  const bool yuv = is_yuv(f.format);
  if (yuv && (f.height % 2 || f.width % 2)) fail("4:2:0 formats need an even height and width");
  const i64 es = is_16bit(f.format) ? 2 : 1;
  for (int p = 0; p < planes_of(f.format); ++p) {
    const Plane& pl = f.plane[p];
    i64 row_bytes = 0;
    if (!yuv) row_bytes = f.width * packed_channels(f.format);
    else if (p == 0 || is_semiplanar(f.format)) row_bytes = f.width * es;
    else row_bytes = (f.width / 2) * es;
    if (pl.ptr == 0) fail("plane " + std::to_string(p) + " has a null address");
    if (pl.pitch < row_bytes) fail("plane " + std::to_string(p) + " pitch is smaller than a row");
    if (pl.batch_stride < 0) fail("plane " + std::to_string(p) + " has a negative batch stride");
    if (es == 2 && ((pl.ptr | static_cast<std::uintptr_t>(pl.pitch) |
                     static_cast<std::uintptr_t>(pl.batch_stride)) & 1u))
      fail("plane " + std::to_string(p) + " of a 16-bit format is not 2-byte aligned");
  }
  if (t.ptr == 0) fail("tensor has a null address");
  if (t.n != f.n) fail("tensor and frame batch sizes differ");
  if (t.height < f.height || t.width < f.width) fail("tensor is smaller than the frame");
  if (t.stride_n < 0 || t.stride_c < 0 || t.stride_h < 0) fail("tensor strides must be non-negative");
  const std::uintptr_t align = t.dtype == DType::kFloat32 ? 4 : 2;
  if (t.ptr % align) fail("tensor address is not aligned to its element size");
}

}  // namespace pixfmt

void init_pixfmt(py::module_& m) {
  using namespace pixfmt;
  m.def(
      "pixfmt_frame_to_tensor",
      [](const std::string& format, std::int64_t n, std::int64_t height, std::int64_t width,
         const std::vector<PlaneArg>& planes, std::uintptr_t tensor, const std::string& dtype,
         std::int64_t tensor_height, std::int64_t tensor_width, const StridesArg& strides,
         const std::string& matrix, const std::string& range, const std::string& upsample) {
        const FrameDesc f = make_frame_desc(format, n, height, width, planes);
        const TensorDesc t = make_tensor_desc(tensor, dtype, n, tensor_height, tensor_width, strides);
        const Matrix mat = parse_matrix(matrix);
        const Range rng = parse_range(range);
        const Upsample up = parse_upsample(upsample);
        py::gil_scoped_release release;
        cpu::frame_to_tensor(f, t, mat, rng, up);
      },
      py::arg("format"), py::arg("n"), py::arg("height"), py::arg("width"), py::arg("planes"),
      py::arg("tensor"), py::arg("dtype"), py::arg("tensor_height"), py::arg("tensor_width"),
      py::arg("strides"), py::arg("matrix"), py::arg("range"), py::arg("upsample"),
      "CPU: decode n frames (planes as (address, pitch, batch stride) in bytes) into the "
      "n x 3 x tensor_height x tensor_width tensor at `tensor` (strides n, c, h in elements; "
      "w stride 1), reflect-padding beyond the frame.  Internal: use irflow_engine.pixfmt, "
      "which checks that the addresses cover the arrays.");
  m.def(
      "pixfmt_tensor_to_frame",
      [](std::uintptr_t tensor, const std::string& dtype, std::int64_t tensor_height,
         std::int64_t tensor_width, const StridesArg& strides, const std::string& format, std::int64_t n,
         std::int64_t height, std::int64_t width, const std::vector<PlaneArg>& planes,
         const std::string& matrix, const std::string& range) {
        const FrameDesc f = make_frame_desc(format, n, height, width, planes);
        const TensorDesc t = make_tensor_desc(tensor, dtype, n, tensor_height, tensor_width, strides);
        const Matrix mat = parse_matrix(matrix);
        const Range rng = parse_range(range);
        py::gil_scoped_release release;
        cpu::tensor_to_frame(t, f, mat, rng);
      },
      py::arg("tensor"), py::arg("dtype"), py::arg("tensor_height"), py::arg("tensor_width"),
      py::arg("strides"), py::arg("format"), py::arg("n"), py::arg("height"), py::arg("width"),
      py::arg("planes"), py::arg("matrix"), py::arg("range"),
      "CPU: encode the top-left height x width region of the tensor into n frames.  "
      "Internal: use irflow_engine.pixfmt.");
  m.def(
      "pixfmt_float_to_half",
      [](std::uintptr_t src, std::uintptr_t dst, std::int64_t count, bool portable) {
        if (count < 0 || (count > 0 && (src == 0 || dst == 0 || src % 4 || dst % 2)))
          throw std::invalid_argument("pixfmt: bad float_to_half arguments");
        py::gil_scoped_release release;
        cpu::float_to_half(reinterpret_cast<const float*>(src), reinterpret_cast<std::uint16_t*>(dst), count,
                           portable);
      },
      py::arg("src"), py::arg("dst"), py::arg("count"), py::arg("portable") = false,
      "CPU: float32 -> float16 bits (round to nearest even) over `count` elements with the "
      "converter float16 tensors use (portable=True: the plain C++ one); for tests.");
  m.def(
      "pixfmt_half_to_float",
      [](std::uintptr_t src, std::uintptr_t dst, std::int64_t count, bool portable) {
        if (count < 0 || (count > 0 && (src == 0 || dst == 0 || src % 2 || dst % 4)))
          throw std::invalid_argument("pixfmt: bad half_to_float arguments");
        py::gil_scoped_release release;
        cpu::half_to_float(reinterpret_cast<const std::uint16_t*>(src), reinterpret_cast<float*>(dst), count,
                           portable);
      },
      py::arg("src"), py::arg("dst"), py::arg("count"), py::arg("portable") = false,
      "CPU: float16 bits -> float32 over `count` elements (see pixfmt_float_to_half); for tests.");
  m.attr("pixfmt_fast_half") = cpu::has_fast_half();
}

}  // namespace irflow
