"""Checkpoint I/O: our safetensors format, the reference's `.pth` state dicts, and presets.

Our format is a safetensors file whose metadata holds one JSON header under the key "irflow":
{"format": 1, "architecture": {...ModelConfig...}, "preset", "task", "degradation",
"training_data", "default_steps", "default_solver", "package_version"}.

Reference checkpoints (`*_G.pth`, `*_EMA.pth`) are plain state dicts, possibly with a `module.`
prefix; they are read with `torch.load(weights_only=True)` (never arbitrary unpickling) and the
architecture is inferred from the tensor shapes. Everything is validated before a model is built,
so a bad file raises one `CheckpointError` naming the file and the first bad key, and nothing is
half-loaded.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import struct
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Union

import torch

from ._version import __version__
from .atomic import atomic_path
from .config import PRESETS, ModelConfig
from .models import ConditionalUNet

FORMAT_VERSION = 1
HEADER_KEY = "irflow"
BUNDLED_DIR = Path(__file__).resolve().parent / "weights"
# Wrappers some training codes put around the state dict, in order of preference.
_NESTED_KEYS = ("params_ema", "state_dict", "params", "model", "ema")

PathLike = Union[str, os.PathLike]
StateDict = Dict[str, torch.Tensor]


class CheckpointError(ValueError):
    """A checkpoint file that cannot be loaded; the message names the file and the problem."""


@dataclass
class CheckpointMeta:
    """What our checkpoint header records besides the architecture."""

    preset: Optional[str] = None
    task: Optional[str] = None
    degradation: Optional[dict] = None
    training_data: Optional[str] = None
    default_steps: int = 3
    default_solver: str = "euler"
    package_version: str = __version__
    extra: dict = field(default_factory=dict)


@dataclass
class LoadedCheckpoint:
    """A validated state dict and what is known about it. `source`: safetensors | pth | preset."""

    config: ModelConfig
    state_dict: StateDict
    meta: CheckpointMeta
    source: str
    path: Optional[Path] = None
    random_weights: bool = False

    def build_model(self) -> ConditionalUNet:
        """A fresh fp32 ConditionalUNet on the CPU with these weights, in eval mode."""
        model = ConditionalUNet.from_config(self.config)
        model.load_state_dict(self.state_dict, strict=True)
        return model.eval().requires_grad_(False)

    @property
    def name(self) -> str:
        if self.path is not None:
            return str(self.path)
        return self.meta.preset or "ConditionalUNet"


# ---------------------------------------------------------------------------------------------
# Saving


def save_checkpoint(path: PathLike, model_or_state, config: ModelConfig,
                    meta: Optional[CheckpointMeta] = None, dtype: torch.dtype = torch.float32) -> Path:
    """Write weights + header as safetensors, atomically (temp file in the same folder, rename).

    `dtype` is the storage type (fp16 halves a bundled model's size; loading gives fp32).
    """
    path = Path(path)
    meta = meta or CheckpointMeta()
    state = model_or_state.state_dict() if isinstance(model_or_state, torch.nn.Module) else model_or_state
    state = {k: v.detach().to("cpu", dtype).contiguous() for k, v in state.items()}
    _validate_state(state, config, path)
    header = {"format": FORMAT_VERSION, "architecture": {"name": "ConditionalUNet", **config.to_dict()},
              **dataclasses.asdict(meta)}
    header["package_version"] = __version__
    from safetensors.torch import save_file

    with atomic_path(path) as tmp:
        save_file(state, tmp, metadata={HEADER_KEY: json.dumps(header)})
    return path


# ---------------------------------------------------------------------------------------------
# Loading


def load_checkpoint(path: PathLike, config: Optional[ModelConfig] = None) -> LoadedCheckpoint:
    """Load and validate a checkpoint file (ours or a reference `.pth`).

    `config` overrides the architecture recorded in the header or inferred from the shapes.
    """
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path}: no such file")
    if path.is_dir():
        raise CheckpointError(f"{path}: is a directory, not a checkpoint file")
    kind = _sniff(path)
    if kind == "safetensors":
        state, header = _read_safetensors(path)
        source = "safetensors"
    elif kind == "torch":
        state, header = _read_torch(path), None
        source = "pth"
    else:
        raise CheckpointError(
            f"{path}: not a checkpoint (neither a safetensors file nor a PyTorch state dict)")

    state = _strip_prefix(state)
    meta = CheckpointMeta()
    if header is not None:
        meta, header_config = _parse_header(header, path)
        config = config or header_config
    if config is None:
        config = infer_config(state, path)
    state = {k: _to_fp32(v, k, path) for k, v in state.items()}
    _validate_state(state, config, path)
    return LoadedCheckpoint(config=config, state_dict=state, meta=meta, source=source, path=path)


def bundled_models() -> List[str]:
    """The names of the models shipped in the package (`irflow_engine/weights/*.safetensors`)."""
    return sorted(p.stem for p in BUNDLED_DIR.glob("*.safetensors"))


def resolve(name_or_path: Union[PathLike, LoadedCheckpoint], config: Optional[ModelConfig] = None,
            seed: int = 0) -> LoadedCheckpoint:
    """A file path, the name of a bundled model, or an architecture preset (random weights)."""
    if isinstance(name_or_path, LoadedCheckpoint):
        return name_or_path
    text = os.fspath(name_or_path)
    if os.path.exists(text):
        return load_checkpoint(text, config)
    bundled = BUNDLED_DIR / f"{text}.safetensors"
    if bundled.is_file():
        return load_checkpoint(bundled, config)
    if text in PRESETS:
        return random_checkpoint(text, seed=seed)
    known = sorted(PRESETS) + bundled_models()
    raise CheckpointError(f"{text}: no such file, bundled model or preset (known names: {', '.join(known)})")


def random_checkpoint(preset: str, seed: int = 0) -> LoadedCheckpoint:
    """A preset's architecture with PyTorch's default initialisation (seeded): untrained."""
    config = ModelConfig.from_name(preset)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = ConditionalUNet.from_config(config)
    return LoadedCheckpoint(config=config, state_dict=model.state_dict(),
                            meta=CheckpointMeta(preset=preset), source="preset", random_weights=True)


def infer_config(state: Mapping[str, torch.Tensor], path: PathLike = "<state dict>") -> ModelConfig:
    """Read (in_nc, out_nc, nf, depth) off a reference state dict's tensor shapes."""
    for key in ("init_conv.weight", "final_conv.weight"):
        if key not in state:
            raise CheckpointError(f"{path}: missing key {key!r}: not a ConditionalUNet state dict "
                                  f"(first keys: {list(state)[:3]})")
        if not isinstance(state[key], torch.Tensor) or state[key].dim() != 4:
            raise CheckpointError(f"{path}: key {key!r} is not a 4-D convolution weight")
    init, final = state["init_conv.weight"], state["final_conv.weight"]
    levels = {int(m.group(1)) for k in state if (m := re.match(r"downs\.(\d+)\.", k))}
    if not levels:
        raise CheckpointError(f"{path}: no 'downs.*' keys: cannot infer the network depth")
    try:
        return ModelConfig(nf=int(init.shape[0]), depth=max(levels) + 1,
                           in_nc=int(init.shape[1]), out_nc=int(final.shape[0]))
    except ValueError as e:
        raise CheckpointError(f"{path}: {e}") from None


def expected_shapes(config: ModelConfig) -> Dict[str, torch.Size]:
    """Every state-dict key of `config`'s network and its shape (built on the meta device)."""
    with torch.device("meta"):
        model = ConditionalUNet.from_config(config)
    return {k: v.shape for k, v in model.state_dict().items()}


def _validate_state(state: Mapping[str, torch.Tensor], config: ModelConfig, path) -> None:
    expected = expected_shapes(config)
    for key, shape in expected.items():
        if key not in state:
            raise CheckpointError(f"{path}: missing key {key!r} for {_describe(config)}")
        if tuple(state[key].shape) != tuple(shape):
            raise CheckpointError(f"{path}: key {key!r} has shape {tuple(state[key].shape)}, "
                                  f"expected {tuple(shape)} for {_describe(config)}")
    for key in state:
        if key not in expected:
            raise CheckpointError(f"{path}: unexpected key {key!r} for {_describe(config)}")
    for key, value in state.items():
        if not torch.isfinite(value).all():
            raise CheckpointError(f"{path}: key {key!r} holds NaN or Inf values")


def _describe(config: ModelConfig) -> str:
    return f"ConditionalUNet(in_nc={config.in_nc}, out_nc={config.out_nc}, nf={config.nf}, depth={config.depth})"


def _sniff(path: Path) -> Optional[str]:
    with open(path, "rb") as f:
        head = f.read(9)
    size = path.stat().st_size
    if len(head) == 9:
        (n,) = struct.unpack("<Q", head[:8])
        if head[8:9] == b"{" and 8 + n <= size:
            return "safetensors"
        if head[8:9] == b"{":
            # A safetensors header that runs past the end of the file: truncated.
            raise CheckpointError(f"{path}: truncated safetensors file (header of {n} bytes, "
                                  f"file of {size} bytes)")
    if zipfile.is_zipfile(path) or head[:1] == b"\x80":
        return "torch"
    return None


def _read_safetensors(path: Path):
    from safetensors import SafetensorError, safe_open

    try:
        state = {}
        with safe_open(str(path), framework="pt") as f:
            header = (f.metadata() or {}).get(HEADER_KEY)
            for key in f.keys():
                state[key] = f.get_tensor(key)
    except (SafetensorError, OSError, RuntimeError, ValueError) as e:
        raise CheckpointError(f"{path}: unreadable safetensors file ({e})") from None
    if header is None:
        return state, None
    try:
        return state, json.loads(header)
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{path}: corrupt '{HEADER_KEY}' header ({e})") from None


def _read_torch(path: Path) -> StateDict:
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True, mmap=zipfile.is_zipfile(path))
    except Exception as e:  # torch raises many types for corrupt, truncated or unsafe files
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(f"{path}: cannot read as a PyTorch state dict ({first})") from None
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"{path}: holds a {type(obj).__name__}, not a state dict")
    if obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        return dict(obj)
    for key in _NESTED_KEYS:
        inner = obj.get(key)
        if isinstance(inner, Mapping) and inner and all(isinstance(v, torch.Tensor) for v in inner.values()):
            return dict(inner)
    bad = next((k for k, v in obj.items() if not isinstance(v, torch.Tensor)), None)
    raise CheckpointError(f"{path}: not a state dict: key {bad!r} holds a "
                          f"{type(obj.get(bad)).__name__ if bad is not None else 'nothing'}, not a tensor")


def _strip_prefix(state: StateDict) -> StateDict:
    if state and all(k.startswith("module.") for k in state):
        return {k[len("module."):]: v for k, v in state.items()}
    return state


def _to_fp32(value: torch.Tensor, key: str, path) -> torch.Tensor:
    if not value.is_floating_point():
        raise CheckpointError(f"{path}: key {key!r} has dtype {value.dtype}, expected floating point")
    return value.to(torch.float32)


def _parse_header(header, path):
    if not isinstance(header, dict) or header.get("format") != FORMAT_VERSION:
        raise CheckpointError(f"{path}: unsupported '{HEADER_KEY}' header format "
                              f"{header.get('format') if isinstance(header, dict) else header!r}")
    arch = dict(header.get("architecture") or {})
    name = arch.pop("name", "ConditionalUNet")
    if name != "ConditionalUNet":
        raise CheckpointError(f"{path}: unsupported architecture {name!r}")
    try:
        config = ModelConfig.from_dict(arch)
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{path}: bad architecture in header ({e})") from None
    known = {f.name for f in dataclasses.fields(CheckpointMeta)}
    fields = {k: v for k, v in header.items() if k in known}
    extra = {k: v for k, v in header.items() if k not in known and k not in ("format", "architecture")}
    meta = CheckpointMeta(**fields)
    meta.extra.update(extra)
    return meta, config
