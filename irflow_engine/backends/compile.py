"""torch.compile backend: the eager sampler, whole K-step loop compiled as one graph.

The schedule's times and weights are Python constants, so Dynamo folds them; one graph is
compiled per input shape (dynamic=False). On CUDA the graph runs as a CUDA graph
(mode="reduce-overhead"), which is the strongest plain-PyTorch baseline we compare against.
"""

from __future__ import annotations

from typing import Optional

import torch

from .eager import EagerBackend


class CompileBackend(EagerBackend):
    name = "compile"

    def __init__(self, model, schedule, precision, device):
        super().__init__(model, schedule, precision, device)
        self.cuda_graphs = self.device.type == "cuda"
        mode = "reduce-overhead" if self.cuda_graphs else None
        self._compiled = torch.compile(self.sample, mode=mode, dynamic=False, fullgraph=True)

    @classmethod
    def unavailable_reason(cls, device, precision) -> Optional[str]:
        if not hasattr(torch, "compile"):
            return "this PyTorch has no torch.compile (needs PyTorch 2.0 or newer)"
        return None

    def prepare(self, shape) -> None:
        # Two calls: the first compiles; on CUDA the second records the CUDA graph.
        y = torch.rand(shape, device=self.device)
        for _ in range(2 if self.cuda_graphs else 1):
            self.restore(y)

    def restore(self, y: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            if self.cuda_graphs:
                torch.compiler.cudagraph_mark_step_begin()
                # A CUDA-graph output is overwritten by the next replay: hand out a copy.
                return self._compiled(y).clone()
            return self._compiled(y)
