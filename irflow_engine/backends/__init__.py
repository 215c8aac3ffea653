"""Backends behind one protocol (see `base.Backend`); `build_backend` picks one by name."""

from __future__ import annotations

from typing import Dict, Type

import torch

from ..flow import Schedule
from ..models import ConditionalUNet
from .base import Backend, BackendUnavailable
from .compile import CompileBackend
from .eager import EagerBackend
from .onnxruntime import OnnxRuntimeBackend
from .tensorrt import TensorRTBackend
from .triton import TritonBackend

BACKENDS: Dict[str, Type[Backend]] = {
    EagerBackend.name: EagerBackend,
    CompileBackend.name: CompileBackend,
    TritonBackend.name: TritonBackend,
    OnnxRuntimeBackend.name: OnnxRuntimeBackend,
    TensorRTBackend.name: TensorRTBackend,
}


def resolve_backend_name(name: str, device: torch.device, precision: str = "fp16") -> str:
    """'auto' -> the best backend available on `device`; other names unchanged.

    On CUDA that is 'triton' when Triton works there in `precision`, else 'eager' (also on the
    CPU: Triton's interpreter is for tests only).
    """
    if name == "auto":
        device = torch.device(device)
        if device.type == "cuda" and TritonBackend.unavailable_reason(device, precision) is None:
            return "triton"
        return "eager"
    return name


def build_backend(name: str, model: ConditionalUNet, schedule: Schedule, precision: str,
                  device: torch.device) -> Backend:
    name = resolve_backend_name(name, device, precision)
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}; choose one of {sorted(BACKENDS) + ['auto']}")
    cls = BACKENDS[name]
    reason = cls.unavailable_reason(device, precision)
    if reason is not None:
        raise BackendUnavailable(f"backend {name!r} cannot run on {device} in {precision}: {reason}")
    return cls(model, schedule, precision, device)


__all__ = ["Backend", "BackendUnavailable", "BACKENDS", "build_backend", "resolve_backend_name",
           "EagerBackend", "CompileBackend", "TritonBackend", "OnnxRuntimeBackend", "TensorRTBackend"]
