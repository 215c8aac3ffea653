"""Build glue for the native extension ``irflow_engine._C``.

Package metadata lives in pyproject.toml; this file only adds a CMake-driven
``build_ext`` so that ``pip install .`` and ``pip install -e .`` build
csrc/ with CMakeLists.txt.

Environment variables honoured:
  CMAKE_ARGS                  extra arguments for the CMake configure step
                              (e.g. "-DIRFLOW_WITH_CUDA=OFF"), split with shlex
  CMAKE_BUILD_PARALLEL_LEVEL  number of parallel build jobs (default: all CPUs)
  CMAKE_GENERATOR             read by CMake itself
"""

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

ROOT = Path(__file__).resolve().parent


class CMakeExtension(Extension):
    """An extension whose sources are built by the CMake project in ``sourcedir``."""

    def __init__(self, name: str, sourcedir: Path = ROOT) -> None:
        super().__init__(name, sources=[])
        self.sourcedir = str(Path(sourcedir).resolve())


class CMakeBuild(build_ext):
    def build_extension(self, ext: Extension) -> None:
        if not isinstance(ext, CMakeExtension):
            super().build_extension(ext)
            return

        cmake = shutil.which("cmake")
        if cmake is None:
            raise RuntimeError(
                "CMake >= 3.18 is required to build irflow_engine._C "
                "(install it with your package manager or `pip install cmake`)."
            )
        import pybind11  # from [build-system] requires

        # Where setuptools expects the built module (build/lib... for a normal
        # build; setuptools copies it into the source tree for editable ones).
        extdir = os.path.abspath(os.path.dirname(self.get_ext_fullpath(ext.name)))
        cfg = "Debug" if self.debug else "Release"

        cmake_args = [
            f"-DCMAKE_LIBRARY_OUTPUT_DIRECTORY={extdir}{os.sep}",
            # Multi-config generators (Ninja Multi-Config, MSVC) use this one.
            f"-DCMAKE_LIBRARY_OUTPUT_DIRECTORY_{cfg.upper()}={extdir}{os.sep}",
            f"-DPython_EXECUTABLE={sys.executable}",
            f"-Dpybind11_DIR={pybind11.get_cmake_dir()}",
            f"-DIRFLOW_VERSION={self.distribution.get_version()}",
            f"-DCMAKE_BUILD_TYPE={cfg}",
            # Reset to the default on every build so a value cached by an
            # earlier CMAKE_ARGS does not stick; CMAKE_ARGS below overrides it.
            "-DIRFLOW_WITH_CUDA=AUTO",
        ]
        cmake_args += shlex.split(os.environ.get("CMAKE_ARGS", ""))

        jobs = os.environ.get("CMAKE_BUILD_PARALLEL_LEVEL") or str(
            self.parallel or os.cpu_count() or 1
        )
        build_args = ["--config", cfg, "--parallel", jobs]

        build_temp = Path(self.build_temp) / ext.name
        build_temp.mkdir(parents=True, exist_ok=True)

        subprocess.run(
            [cmake, "-S", ext.sourcedir, "-B", str(build_temp), *cmake_args],
            check=True,
        )
        subprocess.run([cmake, "--build", str(build_temp), *build_args], check=True)


setup(
    ext_modules=[CMakeExtension("irflow_engine._C")],
    cmdclass={"build_ext": CMakeBuild},
)
