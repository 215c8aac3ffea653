// Entry point of irflow_engine._C: one init function per source file.
#include <pybind11/pybind11.h>

#include "build_info.h"
#include "pixfmt.h"
#ifdef IRFLOW_WITH_CUDA
#include "cuda/cuda_info.h"
#include "cuda/pixfmt_cuda.h"
#endif

PYBIND11_MODULE(_C, m) {
  m.doc() = "irflow_engine native extension";
  irflow::init_build_info(m);
  irflow::init_pixfmt(m);
#ifdef IRFLOW_WITH_CUDA
  irflow::init_cuda_info(m);
  irflow::init_pixfmt_cuda(m);
#endif
}
