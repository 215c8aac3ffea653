// Python bindings of the CUDA pixel-format path (host C++, compiled only with CUDA).
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "pixfmt.h"
#include "pixfmt_cuda.h"

namespace py = pybind11;

namespace irflow {

void init_pixfmt_cuda(py::module_& m) {
  using namespace pixfmt;
  m.def(
      "pixfmt_cuda_frame_to_tensor",
      [](const std::string& format, std::int64_t n, std::int64_t height, std::int64_t width,
         const std::vector<PlaneArg>& planes, std::uintptr_t tensor, const std::string& dtype,
         std::int64_t tensor_height, std::int64_t tensor_width, const StridesArg& strides,
         const std::string& matrix, const std::string& range, const std::string& upsample, int device,
         std::uintptr_t stream) {
        const FrameDesc f = make_frame_desc(format, n, height, width, planes);
        const TensorDesc t = make_tensor_desc(tensor, dtype, n, tensor_height, tensor_width, strides);
        check_descriptors(f, t);
        const Matrix mat = parse_matrix(matrix);
        const Range rng = parse_range(range);
        const Upsample up = parse_upsample(upsample);
        py::gil_scoped_release release;
        cuda::frame_to_tensor(f, t, mat, rng, up, device, stream);
      },
      py::arg("format"), py::arg("n"), py::arg("height"), py::arg("width"), py::arg("planes"),
      py::arg("tensor"), py::arg("dtype"), py::arg("tensor_height"), py::arg("tensor_width"),
      py::arg("strides"), py::arg("matrix"), py::arg("range"), py::arg("upsample"), py::arg("device"),
      py::arg("stream"),
      "CUDA: as pixfmt_frame_to_tensor on device memory of `device`, enqueued on `stream` "
      "(cudaStream_t as an integer).  Internal: use irflow_engine.pixfmt.");
  m.def(
      "pixfmt_cuda_tensor_to_frame",
      [](std::uintptr_t tensor, const std::string& dtype, std::int64_t tensor_height,
         std::int64_t tensor_width, const StridesArg& strides, const std::string& format, std::int64_t n,
         std::int64_t height, std::int64_t width, const std::vector<PlaneArg>& planes,
         const std::string& matrix, const std::string& range, int device, std::uintptr_t stream) {
        const FrameDesc f = make_frame_desc(format, n, height, width, planes);
        const TensorDesc t = make_tensor_desc(tensor, dtype, n, tensor_height, tensor_width, strides);
        check_descriptors(f, t);
        const Matrix mat = parse_matrix(matrix);
        const Range rng = parse_range(range);
        py::gil_scoped_release release;
        cuda::tensor_to_frame(t, f, mat, rng, device, stream);
      },
      py::arg("tensor"), py::arg("dtype"), py::arg("tensor_height"), py::arg("tensor_width"),
      py::arg("strides"), py::arg("format"), py::arg("n"), py::arg("height"), py::arg("width"),
      py::arg("planes"), py::arg("matrix"), py::arg("range"), py::arg("device"), py::arg("stream"),
      "CUDA: as pixfmt_tensor_to_frame on device memory, enqueued on `stream`.  "
      "Internal: use irflow_engine.pixfmt.");
}

}  // namespace irflow
