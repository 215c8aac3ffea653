// Video pixel formats <-> N x 3 x H x W planar R'G'B' tensors (float32/float16 in
// [0, 1]): the C++ CPU path, argument checking shared with the CUDA path, and the
// Python bindings.  The arithmetic and its conventions live in pixfmt_math.h; the
// user-facing API (argument parsing from numpy arrays / torch tensors, errors that
// name the problem) is irflow_engine/pixfmt.py.
#pragma once

#include <string>
#include <tuple>
#include <vector>

#include "pixfmt_math.h"

namespace pybind11 {
class module_;
}

namespace irflow {
namespace pixfmt {

// Name -> enum; throw std::invalid_argument (ValueError in Python) for unknown names.
Format parse_format(const std::string& name);
Matrix parse_matrix(const std::string& name);
Range parse_range(const std::string& name);
Upsample parse_upsample(const std::string& name);
DType parse_dtype(const std::string& name);

// Bits per code of a format (8 for the RGB formats).
int format_bits(Format f);

// Defensive checks on descriptors built by irflow_engine/pixfmt.py (which checks
// the same things first, with more specific messages): positive sizes, even sizes
// for 4:2:0, pitches that hold a row, aligned pointers, a tensor at least as large
// as the frame (the frame -> tensor direction pads it, the other crops it).
// Throws std::invalid_argument.
void check_descriptors(const FrameDesc& f, const TensorDesc& t);

// Descriptors from the flat arguments the bindings receive: planes as
// (address, pitch, batch stride) in bytes; tensor strides (n, c, h) in elements.
using PlaneArg = std::tuple<std::uintptr_t, std::int64_t, std::int64_t>;
using StridesArg = std::tuple<std::int64_t, std::int64_t, std::int64_t>;
FrameDesc make_frame_desc(const std::string& format, std::int64_t n, std::int64_t height,
                          std::int64_t width, const std::vector<PlaneArg>& planes);
TensorDesc make_tensor_desc(std::uintptr_t ptr, const std::string& dtype, std::int64_t n,
                            std::int64_t height, std::int64_t width, const StridesArg& strides);

namespace cpu {

// Decode a batch of frames into the tensor; rows/columns of the tensor beyond the
// frame are filled by reflect padding (pixfmt_math.h reflect_index).
void frame_to_tensor(const FrameDesc& f, const TensorDesc& t, Matrix m, Range r, Upsample up);

// Encode the top-left frame-sized region of the tensor into the frames.
void tensor_to_frame(const TensorDesc& t, const FrameDesc& f, Matrix m, Range r);

// float32 <-> float16 over n elements (round to nearest even), with the converters the
// float16 tensors use: F16C instructions where the CPU has them, unless `portable`
// asks for the plain C++ ones (exposed for tests).
void float_to_half(const float* src, std::uint16_t* dst, std::int64_t n, bool portable);
void half_to_float(const std::uint16_t* src, float* dst, std::int64_t n, bool portable);

// Whether the float16 conversions use F16C instructions on this CPU.
bool has_fast_half();

}  // namespace cpu
}  // namespace pixfmt

// Adds the pixfmt_* functions of the CPU path to the module (pixfmt.cpp).
void init_pixfmt(pybind11::module_& m);

}  // namespace irflow
