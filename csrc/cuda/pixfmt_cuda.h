// CUDA path of the pixel-format conversions: plain C++ declarations, so that the
// pybind11 bindings (pixfmt_bindings.cpp) stay out of nvcc.
#pragma once

#include <cstdint>

#include "pixfmt_math.h"

namespace pybind11 {
class module_;
}

namespace irflow {
namespace pixfmt {
namespace cuda {

// Same contracts as pixfmt::cpu::frame_to_tensor / tensor_to_frame, on device
// memory of CUDA device `device`, enqueued on `stream` (a cudaStream_t as an
// integer; 0 is the legacy default stream).  Descriptors must have passed
// check_descriptors().  Asynchronous: returns after the launch; throws
// std::runtime_error when the launch fails.
void frame_to_tensor(const FrameDesc& f, const TensorDesc& t, Matrix m, Range r, Upsample up, int device,
                     std::uintptr_t stream);
void tensor_to_frame(const TensorDesc& t, const FrameDesc& f, Matrix m, Range r, int device,
                     std::uintptr_t stream);

}  // namespace cuda
}  // namespace pixfmt

// Adds pixfmt_cuda_frame_to_tensor / pixfmt_cuda_tensor_to_frame to the module
// (defined in cuda/pixfmt_bindings.cpp).
void init_pixfmt_cuda(pybind11::module_& m);

}  // namespace irflow
