"""Where a batch is converted and restored, and how it travels between host and device.

`HostIO` (engine on the CPU, or a CUDA engine whose layout cannot convert on the GPU): the work
thread converts raw frames to float on the host, restores (moving the float batch to the device
and back if needed) and converts back, synchronously.

`CudaIO`: raw 8/10-bit frames go up, not float ones. The source writes each batch into a pinned
host buffer from a small pool; the work thread copies it to the GPU on an upload stream, converts,
restores and converts back on the compute stream, and copies the raw result into a pinned output
buffer on a download stream; the consumer waits on that copy's event only. So uploads of batch
i+1 and downloads of batch i-1 overlap the network on batch i, and the work thread never waits
for the GPU. Compute time is measured with CUDA events.
"""

from __future__ import annotations

import queue
from dataclasses import dataclass
from typing import Callable, Dict, Optional, Tuple

import torch

from .pipeline import StageClock, StopFlag

Restore = Callable[[torch.Tensor], torch.Tensor]


@dataclass
class Pending:
    """A restored batch on its way to the host: `out[:n]` once `collect` returns it."""

    out: torch.Tensor
    n: int
    done: Optional["torch.cuda.Event"] = None
    timing: Optional[Tuple["torch.cuda.Event", "torch.cuda.Event"]] = None


class HostIO:
    """Convert and restore in the calling thread; float batches move to the engine's device.

    `clock` times the restoration (with any host<->device copies), `convert_clock` the two
    conversions.
    """

    def __init__(self, layout, restore: Restore, device: torch.device, clock: StageClock,
                 convert_clock: Optional[StageClock] = None, out_layout=None):
        self.layout, self.out_layout = layout, out_layout or layout
        self.restore, self.device = restore, torch.device(device)
        self.clock, self.convert_clock = clock, convert_clock or StageClock("convert")

    def alloc(self, n: int) -> torch.Tensor:
        """A host buffer for n raw frames."""
        return self.layout.empty(n)

    def work(self, raw: torch.Tensor, n: int) -> Pending:
        with self.convert_clock.timed():
            x = self.layout.to_tensor(raw[:n])
        with self.clock.timed(n):
            y = self.restore(x.to(self.device)).cpu()
        with self.convert_clock.timed(n):
            out = self.out_layout.from_tensor(y, self.out_layout.empty(n))
        return Pending(out, n)

    def collect(self, p: Pending) -> torch.Tensor:
        return p.out[:p.n]

    def recycle(self, p: Pending) -> None:
        """Give `p`'s output buffer back once the consumer has copied it out."""


class _PinnedPool:
    """Pinned buffers of one shape, reused; each may carry the event that must end before reuse."""

    def __init__(self, make: Callable[[], torch.Tensor], count: int, stop: StopFlag):
        self._free: "queue.Queue" = queue.Queue()
        self._after: Dict[int, "torch.cuda.Event"] = {}
        self._stop = stop
        for _ in range(count):
            self._free.put(make())

    def acquire(self) -> torch.Tensor:
        buf = self._stop.get(self._free)
        event = self._after.pop(buf.data_ptr(), None)
        if event is not None:
            event.synchronize()
        return buf

    def release(self, buf: torch.Tensor, after: Optional["torch.cuda.Event"] = None) -> None:
        if after is not None:
            self._after[buf.data_ptr()] = after
        self._free.put(buf)


class CudaIO:
    """Pinned buffers, side streams for the copies, conversion and restoration on the GPU."""

    def __init__(self, layout, restore: Restore, device: torch.device, clock: StageClock, batch: int,
                 depth: int, stop: StopFlag, out_layout=None):
        self.layout, self.out_layout = layout, out_layout or layout
        self.restore, self.device, self.clock = restore, torch.device(device), clock
        self.upload_stream = torch.cuda.Stream(self.device)
        self.download_stream = torch.cuda.Stream(self.device)
        # In flight at most: one being filled / drained per end, `depth` queued, one in work.
        count = depth + 3
        self.inputs = _PinnedPool(lambda: self.layout.empty(batch, pin=True), count, stop)
        self.outputs = _PinnedPool(lambda: self.out_layout.empty(batch, pin=True), count, stop)

    def alloc(self, n: int) -> torch.Tensor:
        return self.inputs.acquire()

    def work(self, raw: torch.Tensor, n: int) -> Pending:
        with torch.cuda.device(self.device):
            compute = torch.cuda.current_stream()
            with torch.cuda.stream(self.upload_stream):
                raw_dev = raw[:n].to(self.device, non_blocking=True)
                uploaded = torch.cuda.Event()
                uploaded.record()
            self.inputs.release(raw, after=uploaded)
            compute.wait_event(uploaded)
            raw_dev.record_stream(compute)
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            y = self.restore(self.layout.to_tensor(raw_dev))
            out_dev = self.out_layout.from_tensor(y, self.out_layout.empty(n, device=self.device))
            end.record()
            host = self.outputs.acquire()
            self.download_stream.wait_event(end)
            with torch.cuda.stream(self.download_stream):
                host[:n].copy_(out_dev, non_blocking=True)
                out_dev.record_stream(self.download_stream)
                done = torch.cuda.Event()
                done.record()
        return Pending(host, n, done, (start, end))

    def collect(self, p: Pending) -> torch.Tensor:
        p.done.synchronize()
        start, end = p.timing
        self.clock.add(start.elapsed_time(end) / 1e3, p.n)
        return p.out[:p.n]

    def recycle(self, p: Pending) -> None:
        self.outputs.release(p.out)


def make_io(layout, restore: Restore, device: torch.device, clock: StageClock, *, batch: int, depth: int,
            stop: StopFlag, convert_clock: Optional[StageClock] = None, out_layout=None):
    """`CudaIO` for a CUDA engine whose layouts convert on the GPU, else `HostIO`."""
    device = torch.device(device)
    out_layout = out_layout or layout
    if device.type == "cuda" and layout.converts_on(device) and out_layout.converts_on(device):
        return CudaIO(layout, restore, device, clock, batch, depth, stop, out_layout)
    return HostIO(layout, restore, device, clock, convert_clock, out_layout)
