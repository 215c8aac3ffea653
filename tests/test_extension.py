"""Tests for the native extension irflow_engine._C (build system skeleton).

Only irflow_engine._C and irflow_engine._version are imported here.
"""

import importlib

import pytest

EXPECTED_KEYS = {"version", "cuda_compiled", "cuda_runtime_version", "openmp", "compiler"}


@pytest.fixture(scope="module")
def C():
    return importlib.import_module("irflow_engine._C")


def test_extension_imports(C):
    assert C.__name__ == "irflow_engine._C"


def test_version_matches_python_package(C):
    from irflow_engine._version import __version__

    assert C.__version__ == __version__


def test_module_flags_are_bools(C):
    assert isinstance(C.cuda_compiled, bool)
    assert isinstance(C.openmp, bool)


def test_build_info(C):
    info = C.build_info()
    assert isinstance(info, dict)
    assert set(info) == EXPECTED_KEYS
    assert info["version"] == C.__version__
    assert isinstance(info["cuda_compiled"], bool)
    assert info["cuda_compiled"] is C.cuda_compiled
    assert isinstance(info["openmp"], bool)
    assert info["openmp"] is C.openmp
    assert isinstance(info["compiler"], str) and info["compiler"]
    if info["cuda_compiled"]:
        rt = info["cuda_runtime_version"]
        # CUDART_VERSION is 1000 * major + 10 * minor, e.g. 12040 or 13000.
        assert isinstance(rt, int) and not isinstance(rt, bool)
        assert rt >= 11000
    else:
        assert info["cuda_runtime_version"] is None


def test_cuda_functions_present_only_with_cuda(C):
    assert hasattr(C, "cuda_device_count") == C.cuda_compiled
    assert hasattr(C, "cuda_runtime_version") == C.cuda_compiled


def test_cuda_device_count_is_safe(C):
    if not C.cuda_compiled:
        pytest.skip("extension built without CUDA")
    n = C.cuda_device_count()
    assert isinstance(n, int) and not isinstance(n, bool)
    assert n >= 0
    assert C.cuda_runtime_version() == C.build_info()["cuda_runtime_version"]
