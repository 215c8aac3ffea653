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
from .formats import AV_TO_PIXFMT, RGB48


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


@dataclass(frozen=True)
class RGB48Layout:
    """rgb48le frames (N×H×W×3 16-bit codes, R G B per pixel, full range: value = code / 65535),
    what swscale makes of deep 4:2:2, 4:4:4 and RGB video so that no chroma is averaged away.

    Stored as int16, the same bytes (int16 works on every device; uint16 tensors support few
    operations), and converted with torch operations wherever the batch lies. Codes round to
    nearest; NaN becomes 0.
    """

    height: int
    width: int
    fmt: str = RGB48

    @property
    def frame_shape(self) -> Tuple[int, ...]:
        return (self.height, self.width, 3)

    @property
    def frame_bytes(self) -> int:
        return self.height * self.width * 3 * 2

    def empty(self, n: int, device="cpu", pin: bool = False) -> torch.Tensor:
        t = torch.empty((n,) + self.frame_shape, dtype=torch.int16, device=device)
        return t.pin_memory() if pin else t

    def converts_on(self, device: torch.device) -> bool:
        return True

    def to_tensor(self, raw: torch.Tensor) -> torch.Tensor:
        codes = raw.permute(0, 3, 1, 2).to(torch.int32).bitwise_and_(0xFFFF)
        return codes.to(torch.float32).div_(65535.0).contiguous()

    def from_tensor(self, x: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        codes = torch.nan_to_num(x.float(), nan=0.0).clamp_(0.0, 1.0).mul_(65535.0).round_().to(torch.int32)
        codes = torch.where(codes >= 32768, codes - 65536, codes)   # the int16 with the same 16 bits
        out.copy_(codes.to(torch.int16).permute(0, 2, 3, 1))
        return out


@dataclass(frozen=True)
class EvenPaddedLayout:
    """4:2:0 frames of odd width or height (VP9, AV1 and FFV1 allow them; pixfmt needs even
    sides): each frame is held in a slot one row and/or column larger, its last luma row and
    column repeated there (`avframes.copy_to_slot`; the chroma planes, ceil(W/2) × ceil(H/2), fit
    as they are), converted by `inner` at the even size and cropped. On the way out the restored
    frame's last row and column are repeated before conversion, so each edge chroma sample averages
    a real pixel with its copy: what FFmpeg's own 4:2:0 chroma of an odd frame holds."""

    inner: PixfmtLayout
    height: int
    width: int

    @property
    def fmt(self) -> str:
        return self.inner.fmt

    @property
    def frame_shape(self) -> Tuple[int, ...]:
        return self.inner.frame_shape

    @property
    def frame_bytes(self) -> int:
        return self.inner.frame_bytes

    def empty(self, n: int, device="cpu", pin: bool = False) -> torch.Tensor:
        return self.inner.empty(n, device=device, pin=pin)

    def converts_on(self, device: torch.device) -> bool:
        return self.inner.converts_on(device)

    def to_tensor(self, raw: torch.Tensor) -> torch.Tensor:
        return self.inner.to_tensor(raw)[..., :self.height, :self.width].contiguous()

    def from_tensor(self, x: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        pad = (0, self.inner.width - self.width, 0, self.inner.height - self.height)
        return self.inner.from_tensor(torch.nn.functional.pad(x, pad, mode="replicate"), out)


def layout_for(av_fmt: str, height: int, width: int, matrix: str = "bt709", range: str = "limited"):
    """The layout of frames in PyAV format `av_fmt`: rgb48le, else one `pixfmt` converts (a 4:2:0
    format of odd size in even slots)."""
    if av_fmt == RGB48:
        return RGB48Layout(height, width)
    fmt = AV_TO_PIXFMT[av_fmt]
    if pixfmt.FORMATS[fmt].yuv and (height % 2 or width % 2):
        inner = PixfmtLayout(fmt, height + height % 2, width + width % 2, matrix, range)
        return EvenPaddedLayout(inner, height, width)
    return PixfmtLayout(fmt, height, width, matrix, range)
