"""Backends behind one protocol (see `base.Backend`); `build_backend` picks one by name."""

from __future__ import annotations

import logging
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

log = logging.getLogger(__name__)

BACKENDS: Dict[str, Type[Backend]] = {
    EagerBackend.name: EagerBackend,
    CompileBackend.name: CompileBackend,
    TritonBackend.name: TritonBackend,
    OnnxRuntimeBackend.name: OnnxRuntimeBackend,
    TensorRTBackend.name: TensorRTBackend,
}


def resolve_backend_name(name: str, device: torch.device, precision: str = "fp16") -> str:
    """'auto' -> the fastest backend measured for (`device`, `precision`) that can run here;
    other names unchanged.

    - CUDA, fp16/bf16: 'triton' when Triton works there (an NVIDIA GPU of compute capability
      8.0 or newer; 2.5× eager at 720p, docs/PERF.md), else 'eager';
    - CPU, fp32: 'onnxruntime' when onnxruntime and onnx are installed (1.8–2.5× eager, docs/PERF.md);
    - otherwise 'eager' (Triton's CPU interpreter is for tests only; fp32 on CUDA stays on the
      reference path, the fused fp32 path has not been measured on a GPU).
    """
    if name != "auto":
        return name
    device = torch.device(device)
    if device.type == "cuda":
        if precision in ("fp16", "bf16") and TritonBackend.unavailable_reason(device, precision) is None:
            return "triton"
        return "eager"
    if device.type == "cpu" and precision == "fp32":
        reason = OnnxRuntimeBackend.unavailable_reason(device, precision)
        if reason is None:
            return "onnxruntime"
        _hint_once(f"backend auto: eager on the CPU, about half as fast as onnxruntime ({reason})")
    return "eager"


_hints_given = set()


def _hint_once(message: str) -> None:
    """A warning the first time `message` comes up in this process."""
    if message not in _hints_given:
        _hints_given.add(message)
        log.warning(message)


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
