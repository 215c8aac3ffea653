"""Configuration dataclasses and named presets.

`ModelConfig` describes a ConditionalUNet; `PRESETS` maps preset names to configs (read with
`ModelConfig.from_name`). `EngineConfig` carries the run-time choices (backend, device,
precision, schedule) from the public API down to a backend.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

# Number of integer flow time steps: t ∈ {0, …, T}.
FLOW_T = 1000


def _cache_root() -> Path:
    """$IRFLOW_CACHE_DIR, else ~/.cache/irflow_engine (a temporary folder when there is no home)."""
    if os.environ.get("IRFLOW_CACHE_DIR"):
        return Path(os.environ["IRFLOW_CACHE_DIR"])
    try:
        return Path.home() / ".cache" / "irflow_engine"
    except RuntimeError:  # no $HOME and no password entry (some containers)
        import tempfile

        return Path(tempfile.gettempdir()) / "irflow_engine-cache"


# Where exported graphs and engines are cached (read once, at import).
CACHE_ROOT = _cache_root()

PRECISIONS = ("fp32", "fp16", "bf16")
SOLVERS = ("euler", "heun")
# What an EngineConfig (and `irflow restore --precision`) accepts: a precision, or "auto".
PRECISION_CHOICES = ("auto",) + PRECISIONS


def resolve_precision(precision: str, device_type: str) -> str:
    """'auto' -> 'fp16' on CUDA (the fast path: tensor cores, and the fused `triton` backend, which
    needs fp16/bf16; the issue's bar is a relative error <= 5e-3 against fp32), 'fp32' elsewhere (the
    CPU has no fast half-precision path here); other precisions unchanged."""
    if precision not in PRECISION_CHOICES:
        raise ValueError(f"precision must be one of {PRECISION_CHOICES}, got {precision!r}")
    if precision != "auto":
        return precision
    return "fp16" if device_type == "cuda" else "fp32"


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of a ConditionalUNet (the reference's constructor arguments)."""

    nf: int = 64
    depth: int = 4
    in_nc: int = 3
    out_nc: int = 3

    def __post_init__(self):
        for name in ("nf", "depth", "in_nc", "out_nc"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"ModelConfig.{name} must be a positive integer, got {value!r}")

    @property
    def pad_multiple(self) -> int:
        """Inputs are reflect-padded to a multiple of this (2**depth)."""
        return 2 ** self.depth

    @property
    def time_dim(self) -> int:
        return 4 * self.nf

    @classmethod
    def from_name(cls, name: str) -> "ModelConfig":
        try:
            return PRESETS[name]
        except KeyError:
            known = ", ".join(sorted(PRESETS))
            raise KeyError(f"unknown model preset {name!r}; known presets: {known}") from None

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - fields
        if unknown:
            raise ValueError(f"unknown ModelConfig fields: {sorted(unknown)}")
        return cls(**d)


PRESETS: dict[str, ModelConfig] = {
    # The paper's configuration: 137.1 M parameters, 11.6 MFLOP per pixel per evaluation.
    "irflow-unet64": ModelConfig(nf=64, depth=4),
    # 34.8 M parameters, 3.04 MFLOP/px.
    "irflow-unet32": ModelConfig(nf=32, depth=4),
    # 9.1 M parameters, 2.4 MFLOP/px.
    "irflow-unet32-d3": ModelConfig(nf=32, depth=3),
    # 2.4 M parameters, 0.68 MFLOP/px: the bundled CPU-trained models (4.8 MB in fp16).
    "irflow-unet16-d3": ModelConfig(nf=16, depth=3),
}


@dataclass(frozen=True)
class EngineConfig:
    """Run-time choices for an Engine.

    `steps`/`solver` of None mean "the checkpoint's default" (3 / "euler" when it has none).
    `max_batch` bounds how many frames one backend call sees; larger inputs are split.
    `memory_budget`: bytes of activations one call may use on the CPU; fewer frames per call, then
    tiles, keep it there (`irflow_engine.memory`). None: 60 % of the memory available at the first call (then fixed);
    0: no limit.
    `threads`: torch's CPU threads on the CPU (process-wide; ONNX Runtime takes the same count).
    None: torch's own count, lowered to a container's CPU quota (`irflow_engine.cpus`).
    `precision` "auto": fp16 on CUDA, fp32 on the CPU (`resolve_precision`; the Engine resolves it).
    """

    backend: str = "eager"
    device: str = "cpu"
    precision: str = "fp32"
    steps: Optional[int] = None
    solver: Optional[str] = None
    max_batch: int = 4
    clamp: bool = True
    memory_budget: Optional[int] = None
    threads: Optional[int] = None

    def __post_init__(self):
        if self.precision not in PRECISION_CHOICES:
            raise ValueError(f"precision must be one of {PRECISION_CHOICES}, got {self.precision!r}")
        if self.solver is not None and self.solver not in SOLVERS:
            raise ValueError(f"solver must be one of {SOLVERS}, got {self.solver!r}")
        if self.steps is not None and (not isinstance(self.steps, int) or not 1 <= self.steps <= FLOW_T):
            raise ValueError(f"steps must be an integer in [1, {FLOW_T}], got {self.steps!r}")
        if not isinstance(self.max_batch, int) or self.max_batch < 1:
            raise ValueError(f"max_batch must be a positive integer, got {self.max_batch!r}")
        if self.memory_budget is not None and (not isinstance(self.memory_budget, int) or self.memory_budget < 0):
            raise ValueError(f"memory_budget must be a number of bytes >= 0 (0: no limit) or None (automatic), "
                             f"got {self.memory_budget!r}")
        if self.threads is not None and (not isinstance(self.threads, int) or isinstance(self.threads, bool)
                                         or self.threads < 1):
            raise ValueError(f"threads must be a positive integer or None (automatic), got {self.threads!r}")
