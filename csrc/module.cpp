// Entry point of irflow_engine._C: one init function per source file.
#include <pybind11/pybind11.h>

#include "build_info.h"
#ifdef IRFLOW_WITH_CUDA
#include "cuda/cuda_info.h"
#endif

PYBIND11_MODULE(_C, m) {
  m.doc() = "irflow_engine native extension";
  irflow::init_build_info(m);
#ifdef IRFLOW_WITH_CUDA
  irflow::init_cuda_info(m);
#endif
}
