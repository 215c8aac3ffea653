"""Batches of raw frames <-> the network's N×3×H×W float32 tensors, on whichever device holds them.

A layout knows the shape of a batch of raw frames, allocates it (pinned host memory for CUDA
uploads) and converts it to and from float R'G'B' in [0, 1] where the data lies, so the pipeline
can upload raw 8/10-bit frames and convert on the GPU.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Tuple

import torch

from .. import pixfmt


@dataclass(frozen=True)
class PixfmtLayout:
    """Video frames in FFmpeg rawvideo layout, converted by `irflow_engine.pixfmt`."""

    fmt: str
    height: int
    width: int
    matrix: str = "bt709"
    range: str = "limited"
    upsample: str = "bilinear"

    @property
    def frame_shape(self) -> Tuple[int, ...]:
        spec = pixfmt.FORMATS[self.fmt]
        if spec.yuv:
            return (self.height * 3 // 2, self.width)
        return (self.height, self.width, spec.channels)

    @property
    def frame_bytes(self) -> int:
        spec = pixfmt.FORMATS[self.fmt]
        elems = 1
        for s in self.frame_shape:
            elems *= s
        return elems * spec.itemsize

    def empty(self, n: int, device="cpu", pin: bool = False) -> torch.Tensor:
        t = pixfmt.empty_frame(self.fmt, self.height, self.width, batch=n, device=device)
        return t.pin_memory() if pin else t

    def converts_on(self, device: torch.device) -> bool:
        return device.type == "cpu" or device.type in pixfmt.available_paths()

    def to_tensor(self, raw: torch.Tensor) -> torch.Tensor:
        return pixfmt.frame_to_tensor(raw, self.fmt, matrix=self.matrix, range=self.range,
                                      upsample=self.upsample, dtype=torch.float32)

    def from_tensor(self, x: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        return pixfmt.tensor_to_frame(x, self.fmt, matrix=self.matrix, range=self.range, out=out)


@dataclass(frozen=True)
class RGB8Layout:
    """uint8 N×H×W×3 frames (numpy images), scaled by 1/255 exactly as `Engine.restore` does."""

    height: int
    width: int

    @property
    def frame_shape(self) -> Tuple[int, ...]:
        return (self.height, self.width, 3)

    def empty(self, n: int, device="cpu", pin: bool = False) -> torch.Tensor:
        t = torch.empty((n,) + self.frame_shape, dtype=torch.uint8, device=device)
        return t.pin_memory() if pin else t

    def converts_on(self, device: torch.device) -> bool:
        return True

    def to_tensor(self, raw: torch.Tensor) -> torch.Tensor:
        return raw.permute(0, 3, 1, 2).float().div_(255.0).contiguous()

    def from_tensor(self, x: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        out.copy_(x.clamp(0.0, 1.0).mul_(255.0).round_().to(torch.uint8).permute(0, 2, 3, 1))
        return out
