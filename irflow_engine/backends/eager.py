"""Eager backend: the reference network and sampler run op by op (the reference for the rest).

fp16/bf16 run under autocast with channels-last activations (convolutions in low precision,
normalisation statistics in fp32); the sampler state x stays fp32 in every precision.
"""

from __future__ import annotations

import contextlib

import torch

from ..flow import sample
from .base import AUTOCAST_DTYPES, Backend


class EagerBackend(Backend):
    name = "eager"

    def __init__(self, model, schedule, precision, device):
        super().__init__(model, schedule, precision, device)
        self.model = model.to(self.device).eval().requires_grad_(False)
        self.channels_last = precision != "fp32"
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)

    def _autocast(self):
        if self.precision == "fp32":
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=AUTOCAST_DTYPES[self.precision])

    def velocity(self, x: torch.Tensor, t: int) -> torch.Tensor:
        """D(x, t) as fp32."""
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with self._autocast():
            return self.model(x, t).float()

    def sample(self, y: torch.Tensor) -> torch.Tensor:
        return sample(self.velocity, y, self.schedule)

    def restore(self, y: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return self.sample(y)
