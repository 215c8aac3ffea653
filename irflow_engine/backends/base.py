"""The backend protocol: what the Engine asks of every way of running the network.

A backend is built for one (model, schedule, precision, device) and restores N×3×H×W float32
tensors that already sit on its device, values in [0, 1]; it returns float32 x̂0 of the same
shape (unclamped). `prepare(shape)` does whatever a new input shape needs (compilation, graph
capture) so that timing can exclude it. The Engine does not know which backend it holds.
"""

from __future__ import annotations

import abc
from typing import ClassVar, Optional, Tuple

import torch

from ..flow import Schedule
from ..models import ConditionalUNet

AUTOCAST_DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16}


class BackendUnavailable(RuntimeError):
    """The requested backend cannot run here; the message says why and what to do."""


class Backend(abc.ABC):
    name: ClassVar[str]

    def __init__(self, model: ConditionalUNet, schedule: Schedule, precision: str, device: torch.device):
        self.model = model
        self.schedule = schedule
        self.precision = precision
        self.device = torch.device(device)

    @classmethod
    def unavailable_reason(cls, device: torch.device, precision: str) -> Optional[str]:
        """None when this backend can run on `device` in `precision`, else the reason it cannot."""
        return None

    def prepare(self, shape: Tuple[int, int, int, int]) -> None:
        """Get ready for inputs of `shape` (N, 3, H, W); the default has nothing to do."""

    @abc.abstractmethod
    def restore(self, y: torch.Tensor) -> torch.Tensor:
        """Run the schedule from degraded `y` (N×3×H×W float32 on self.device); return x̂0."""

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(device={self.device}, precision={self.precision}, "
                f"solver={self.schedule.solver}, steps={self.schedule.steps})")
