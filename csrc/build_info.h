// Build-time facts about the native extension (version, CUDA, OpenMP, compiler).
#pragma once

#include <pybind11/pybind11.h>

namespace irflow {

// Adds __version__, cuda_compiled, openmp and build_info() to the module.
void init_build_info(pybind11::module_& m);

}  // namespace irflow
