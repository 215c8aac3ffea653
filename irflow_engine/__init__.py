"""irflow_engine: fast inference for IR-Flow rectified-flow image restoration."""

from ._version import __version__
from .checkpoint import CheckpointError, CheckpointMeta, load_checkpoint, save_checkpoint
from .config import PRESETS, EngineConfig, ModelConfig
from .engine import Engine
from .flow import Schedule, make_schedule, sample
from .frames import InputError

__all__ = [
    "__version__", "Engine", "EngineConfig", "ModelConfig", "PRESETS", "Schedule", "make_schedule",
    "sample", "load_checkpoint", "save_checkpoint", "CheckpointMeta", "CheckpointError", "InputError",
]
