#include "build_info.h"

#ifdef IRFLOW_WITH_CUDA
#include "cuda/cuda_info.h"
#endif

#ifndef IRFLOW_VERSION
#error "IRFLOW_VERSION must be defined by the build (see CMakeLists.txt)"
#endif
#ifndef IRFLOW_COMPILER
#define IRFLOW_COMPILER "unknown"
#endif

namespace py = pybind11;

namespace irflow {
namespace {

constexpr bool kCudaCompiled =
#ifdef IRFLOW_WITH_CUDA
    true;
#else
    false;
#endif

constexpr bool kOpenMP =
#ifdef IRFLOW_WITH_OPENMP
    true;
#else
    false;
#endif

}  // namespace

void init_build_info(py::module_& m) {
  m.attr("__version__") = IRFLOW_VERSION;
  m.attr("cuda_compiled") = kCudaCompiled;
  m.attr("openmp") = kOpenMP;

  m.def(
      "build_info",
      []() {
        py::dict info;
        info["version"] = IRFLOW_VERSION;
        info["cuda_compiled"] = kCudaCompiled;
#ifdef IRFLOW_WITH_CUDA
        info["cuda_runtime_version"] = cuda::compiled_runtime_version();
#else
        info["cuda_runtime_version"] = py::none();
#endif
        info["openmp"] = kOpenMP;
        info["compiler"] = IRFLOW_COMPILER;
        return info;
      },
      "Return a dict describing how this extension was built: version, "
      "cuda_compiled, cuda_runtime_version (CUDART_VERSION at compile time, "
      "or None), openmp, compiler.");
}

}  // namespace irflow
