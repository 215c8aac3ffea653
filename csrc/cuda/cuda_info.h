// CUDA facts; only compiled when the build has IRFLOW_WITH_CUDA.
// The functions below are plain C++ so that pybind11 stays out of nvcc.
#pragma once

namespace pybind11 {
class module_;
}

namespace irflow {
namespace cuda {

// CUDART_VERSION the extension was compiled against (e.g. 13000).
int compiled_runtime_version();

// Number of visible CUDA devices; 0 on any error (no driver, no GPU, ...).
int device_count();

}  // namespace cuda

// Adds cuda_runtime_version() and cuda_device_count() to the module
// (defined in cuda/bindings.cpp).
void init_cuda_info(pybind11::module_& m);

}  // namespace irflow
