"""TensorRT engine files: the JSON sidecar, the cache key, and the checks made before loading.

An engine runs only on the TensorRT version and GPU model that built it, and only for input
shapes inside its optimisation profile. Every engine file `X.engine` has a sidecar `X.engine.json`
recording what it was built from and for (`EngineRecord`). The cache key hashes everything that
invalidates an engine: TensorRT version, GPU name and compute capability, profile shapes,
precision, workspace, optimisation level and the ONNX file's sha256. Nothing here imports
TensorRT, so all of it is tested without a GPU.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Optional, Sequence, Tuple

from .._version import __version__
from ..atomic import atomic_path
from ..config import CACHE_ROOT

SIDECAR_FORMAT = 1
ENGINE_SUFFIX = ".engine"
DEFAULT_CACHE_DIR = CACHE_ROOT / "tensorrt"

Shape = Tuple[int, ...]


class EngineMismatch(RuntimeError):
    """An engine file cannot be used here (other TensorRT/GPU, no sidecar, shape outside profile)."""


@dataclass(frozen=True)
class Environment:
    """What an engine is tied to: the TensorRT version and the GPU model."""

    tensorrt_version: str
    gpu_name: str
    compute_capability: str  # "9.0"


@dataclass(frozen=True)
class Profile:
    """One input's optimisation profile: min ≤ opt ≤ max, element by element."""

    name: str
    min: Shape
    opt: Shape
    max: Shape

    def __post_init__(self):
        if not (len(self.min) == len(self.opt) == len(self.max)):
            raise ValueError(f"profile for {self.name!r}: min {self.min}, opt {self.opt} and max {self.max} "
                             "have different ranks")
        if any(d < 1 for d in self.min):
            raise ValueError(f"profile for {self.name!r}: every minimum dimension must be ≥ 1, got {self.min}")
        if not all(a <= b <= c for a, b, c in zip(self.min, self.opt, self.max)):
            raise ValueError(f"profile for {self.name!r}: need min ≤ opt ≤ max in every dimension, got "
                             f"min {fmt_shape(self.min)}, opt {fmt_shape(self.opt)}, max {fmt_shape(self.max)}")

    def contains(self, shape: Sequence[int]) -> bool:
        return len(shape) == len(self.min) and all(a <= s <= b for a, s, b in zip(self.min, shape, self.max))


@dataclass(frozen=True)
class BuildSettings:
    """Everything besides the environment that decides what the builder produces."""

    onnx_sha256: str
    precision: str
    profiles: Tuple[Profile, ...]
    workspace_mib: int
    optimization_level: int

    def __post_init__(self):
        if not 0 <= self.optimization_level <= 5:
            raise ValueError(f"builder optimisation level must be in 0–5, got {self.optimization_level}")
        if self.workspace_mib < 1:
            raise ValueError(f"workspace must be at least 1 MiB, got {self.workspace_mib}")


@dataclass(frozen=True)
class EngineRecord:
    """The sidecar: the build's environment and settings, plus what the graph is (ONNX metadata)."""

    environment: Environment
    settings: BuildSettings
    graph: Dict[str, str]
    package_version: str = __version__
    format: int = SIDECAR_FORMAT

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict) -> "EngineRecord":
        s = dict(d["settings"])
        s["profiles"] = tuple(Profile(p["name"], tuple(p["min"]), tuple(p["opt"]), tuple(p["max"]))
                              for p in s["profiles"])
        return cls(environment=Environment(**d["environment"]), settings=BuildSettings(**s),
                   graph=dict(d.get("graph", {})), package_version=d.get("package_version", "?"),
                   format=d.get("format", SIDECAR_FORMAT))

    def profile(self, name: str) -> Profile:
        for p in self.settings.profiles:
            if p.name == name:
                return p
        raise EngineMismatch(f"the engine has no input named {name!r} "
                             f"(inputs: {', '.join(p.name for p in self.settings.profiles)})")


def fmt_shape(shape: Sequence[int]) -> str:
    return "x".join(str(d) for d in shape)


def parse_shape(text: str) -> Shape:
    """'1x3x720x1280' (N×C×H×W) or '720x1280' (H×W, batch 1, 3 channels)."""
    parts = re.split(r"[x×,]", text.strip().lower())
    try:
        dims = tuple(int(p) for p in parts)
    except ValueError:
        raise ValueError(f"cannot read shape {text!r}: write NxCxHxW (1x3x720x1280) or HxW (720x1280)") from None
    if len(dims) == 2:
        dims = (1, 3) + dims
    if len(dims) != 4 or dims[1] != 3 or min(dims) < 1:
        raise ValueError(f"shape {text!r} must be NxCxHxW with C = 3 and every dimension ≥ 1 (or HxW)")
    return dims


def cache_key(environment: Environment, settings: BuildSettings) -> str:
    """A hex digest that changes whenever anything that invalidates an engine changes."""
    payload = json.dumps({"environment": dataclasses.asdict(environment),
                          "settings": dataclasses.asdict(settings)}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:20]


def cached_engine_path(cache_dir: os.PathLike, onnx_path: os.PathLike, key: str) -> Path:
    """`<cache_dir>/<onnx stem>-<key>.engine`."""
    return Path(cache_dir) / f"{Path(onnx_path).stem}-{key}{ENGINE_SUFFIX}"


def sidecar_path(engine_path: os.PathLike) -> Path:
    return Path(f"{os.fspath(engine_path)}.json")


def write_engine(engine_path: os.PathLike, plan: bytes, record: EngineRecord) -> None:
    """Write the serialized engine and its sidecar, each atomically (sidecar last)."""
    with atomic_path(engine_path, suffix=ENGINE_SUFFIX) as tmp:
        Path(tmp).write_bytes(plan)
    with atomic_path(sidecar_path(engine_path), suffix=".json") as tmp:
        Path(tmp).write_text(record.to_json() + "\n")


def read_record(engine_path: os.PathLike) -> EngineRecord:
    path = sidecar_path(engine_path)
    if not path.is_file():
        raise EngineMismatch(f"{engine_path}: no sidecar {path.name} beside it, so nothing says which "
                             "TensorRT version and GPU built it; rebuild it with `irflow export tensorrt`")
    try:
        record = EngineRecord.from_dict(json.loads(path.read_text()))
    except (ValueError, KeyError, TypeError) as e:
        raise EngineMismatch(f"{path}: not a valid engine sidecar ({e}); rebuild the engine") from None
    if record.format != SIDECAR_FORMAT:
        raise EngineMismatch(f"{path}: sidecar format {record.format}, this version reads {SIDECAR_FORMAT}")
    return record


def mismatches(record: EngineRecord, here: Environment) -> Dict[str, Tuple[str, str]]:
    """{field: (built with, here)} for every environment field that differs."""
    built = dataclasses.asdict(record.environment)
    now = dataclasses.asdict(here)
    return {k: (built[k], now[k]) for k in built if built[k] != now[k]}


def check_compatible(engine_path: os.PathLike, record: EngineRecord, here: Environment) -> None:
    """Raise EngineMismatch naming each difference when the engine was built elsewhere."""
    diff = mismatches(record, here)
    if diff:
        details = "; ".join(f"{k.replace('_', ' ')}: built with {a!r}, here {b!r}" for k, (a, b) in diff.items())
        raise EngineMismatch(f"{engine_path} cannot run here ({details}). A TensorRT engine runs only on the "
                             "TensorRT version and GPU model that built it: rebuild it on this machine with "
                             "`irflow export tensorrt`")


def check_shape(record: EngineRecord, name: str, shape: Sequence[int]) -> None:
    """Raise EngineMismatch when `shape` is outside the engine's profile for input `name`."""
    p = record.profile(name)
    if not p.contains(tuple(shape)):
        raise EngineMismatch(f"input {name!r} of shape {fmt_shape(shape)} is outside the engine's optimisation "
                             f"profile (min {fmt_shape(p.min)}, max {fmt_shape(p.max)}); rebuild the engine with "
                             "--min/--max covering it")


def find_cached(engine_path: os.PathLike, environment: Environment,
                settings: BuildSettings) -> Optional[EngineRecord]:
    """The record of `engine_path` when it exists and was built with exactly these inputs, else None."""
    if not Path(engine_path).is_file():
        return None
    try:
        record = read_record(engine_path)
    except EngineMismatch:
        return None
    if record.environment != environment or record.settings != settings:
        return None
    return record
