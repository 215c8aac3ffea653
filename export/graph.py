"""Export-ready forms of the network and of the K-step sampler (torch modules to trace).

They compute what the eager backend computes, written so that one traced graph serves every
input size:

- `GraphUNet` pads by gathering rows/columns with a reflect index computed from the input's
  shape (no Python branch on sizes), so the padding and the final crop are inside the graph.
- `VelocityGraph(x, t)` is D(x, t) with the time MLP in the graph.
- `SamplerGraph(y)` unrolls `flow.sample` for one schedule; each evaluation's time embedding is a
  constant buffer (the exporter then folds every ResBlock's FiLM projection as well).

Precision: inputs and outputs are always float32. In fp16 the convolutions and FiLM run in fp16;
the time MLP, the channel LayerNorm statistics, the attention core (softmaxes, pixel sums) and the
sampler state x stay fp32 (islands a strongly-typed TensorRT build keeps as they are).
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from ..flow import Schedule, sample
from ..models import ConditionalUNet

GRAPH_DTYPES = {"fp32": torch.float32, "fp16": torch.float16}


def reflect_index(n, pad, device) -> torch.Tensor:
    """Indices of `reflect_pad`'s output along one axis of size `n` padded by `pad`.

    Branch-free, so it traces for any n: while tracing, n and pad are 0-dim tensors. Period
    2·(n−1), or 1 when n = 1 (1 // n is 1 only then): the single pixel repeats, as in
    `models.unet.reflect_pad`.
    """
    idx = torch.arange(n + pad, device=device)
    period = 2 * (n - 1) + 1 // n
    m = idx % period
    return torch.where(m < n, m, period - m)


class GraphUNet(ConditionalUNet):
    """ConditionalUNet whose input padding is a gather, traceable for any H, W."""

    def pad_input(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        s = self.config.pad_multiple
        rows = reflect_index(h, (s - h % s) % s, x.device)
        cols = reflect_index(w, (s - w % s) % s, x.device)
        return x.index_select(-2, rows).index_select(-1, cols)


def graph_network(model: ConditionalUNet, precision: str) -> GraphUNet:
    """A GraphUNet with `model`'s weights, cast for `precision` (time MLP kept in fp32)."""
    if precision not in GRAPH_DTYPES:
        raise ValueError(f"ONNX export supports precision {sorted(GRAPH_DTYPES)}, got {precision!r}")
    net = GraphUNet.from_config(model.config)
    net.load_state_dict(model.state_dict(), strict=True)
    net = net.to(GRAPH_DTYPES[precision]).eval().requires_grad_(False)
    net.time_mlp.float()
    return net


class VelocityGraph(nn.Module):
    """D(x, t): x N×3×H×W float32, t [N] float32 integer times in [0, 1000] -> float32 N×3×H×W."""

    def __init__(self, model: ConditionalUNet, precision: str = "fp32"):
        super().__init__()
        self.net = graph_network(model, precision)
        self.dtype = GRAPH_DTYPES[precision]

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        emb = self.net.time_mlp(t.reshape(-1)).to(self.dtype)
        return self.net.forward_emb(x.to(self.dtype), emb).float()


class SamplerGraph(nn.Module):
    """The whole K-step sampler: degraded y N×3×H×W float32 -> x̂0 float32 (clamped if asked)."""

    def __init__(self, model: ConditionalUNet, schedule: Schedule, precision: str = "fp32",
                 clamp: bool = False):
        super().__init__()
        self.net = graph_network(model, precision)
        self.dtype = GRAPH_DTYPES[precision]
        self.schedule = schedule
        self.clamp = clamp
        with torch.no_grad():
            for t in sorted(set(schedule.times)):
                emb = self.net.time_mlp(torch.tensor([t])).to(self.dtype)
                self.register_buffer(self._emb_name(t), emb, persistent=False)

    @staticmethod
    def _emb_name(t: int) -> str:
        return f"emb_t{t}"

    def velocity(self, x: torch.Tensor, t: int) -> torch.Tensor:
        emb = getattr(self, self._emb_name(t))
        return self.net.forward_emb(x.to(self.dtype), emb).float()

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        x = sample(self.velocity, y, self.schedule)
        return x.clamp(0.0, 1.0) if self.clamp else x


def build_graph(model: ConditionalUNet, schedule: Optional[Schedule], precision: str = "fp32",
                clamp: bool = False) -> nn.Module:
    """`SamplerGraph` for a schedule, `VelocityGraph` when `schedule` is None."""
    if schedule is None:
        if clamp:
            raise ValueError("clamp applies to the sampler graph, not to the network alone")
        return VelocityGraph(model, precision)
    return SamplerGraph(model, schedule, precision, clamp)
