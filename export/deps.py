"""The export's optional dependencies: import them, or raise one error that says how to get them."""

from __future__ import annotations

import importlib
from types import ModuleType

INSTALL_HINTS = {
    "onnx": "pip install 'irflow-engine[onnx]'  (onnx, onnxruntime)",
    "onnxruntime": "pip install 'irflow-engine[onnx]'  (or onnxruntime-gpu for the CUDA provider)",
    "tensorrt": "pip install 'irflow-engine[tensorrt]'  (NVIDIA's tensorrt wheel: needs an NVIDIA GPU "
                "and driver; TensorRT cannot run on the CPU)",
}


class MissingDependency(ImportError):
    """An optional package the export needs is not installed; the message says how to install it."""


def require(name: str, purpose: str) -> ModuleType:
    """Import `name` (onnx, onnxruntime, tensorrt) or raise MissingDependency naming `purpose`."""
    try:
        return importlib.import_module(name)
    except ImportError as e:
        raise MissingDependency(f"{purpose} needs the '{name}' package, which cannot be imported here "
                                f"({e}); install it with: {INSTALL_HINTS[name]}") from None
