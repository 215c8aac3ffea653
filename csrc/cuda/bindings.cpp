// Python bindings for the CUDA helpers (host C++, compiled only with CUDA).
#include <pybind11/pybind11.h>

#include "cuda_info.h"

namespace irflow {

void init_cuda_info(pybind11::module_& m) {
  m.def("cuda_runtime_version", &cuda::compiled_runtime_version,
        "CUDART_VERSION the extension was compiled against.");
  m.def("cuda_device_count", &cuda::device_count,
        "Number of visible CUDA devices (0 when there is no driver or GPU).");
}

}  // namespace irflow
