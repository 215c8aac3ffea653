"""The "triton" backend: fused Triton kernels, the whole K-step loop replayed as one CUDA graph.

Construction folds the schedule into the network (`fused_unet.FusedSampler`: per-evaluation FiLM
tables, weights cast and laid out channels-last once). On CUDA, the first input of each shape
(batch, 3, H, W) and dtype captures `FusedSampler.run` as one CUDA graph between a static input
and a static output buffer; later calls copy the input in, replay, and copy the output out
(`restore` returns a fresh tensor, since the next replay overwrites the static output). Graphs
live in a bounded LRU (`GraphCache`, `max_graphs` entries, 4 by default): capturing a new shape
past the bound evicts the least recently used graph and frees its memory pool.

Threads: one replay at a time per backend. A lock serialises capture, copy-in, replay and
copy-out; each call makes its stream wait for the previous call's work (a CUDA event) so that
calls from threads on different streams never overlap on the shared static buffers. A graph
replay already fills the GPU, so serialising costs nothing in throughput; to run two loops
concurrently (e.g. two video streams on one GPU), build one engine per stream.

On the CPU the same fused code path runs, without graph capture, only when Triton's interpreter
is enabled (TRITON_INTERPRET=1, for tests); otherwise `unavailable_reason` explains that Triton
needs CUDA — the backend never falls back to eager silently.
"""

from __future__ import annotations

import collections
import contextlib
import threading
from dataclasses import dataclass
from typing import Callable, Dict, Hashable, Optional, Tuple

import torch

from ..kernels import interpreter_enabled, triton_unavailable_reason
from .base import AUTOCAST_DTYPES, Backend, BackendUnavailable

STORAGE_DTYPES: Dict[str, torch.dtype] = {"fp32": torch.float32, **AUTOCAST_DTYPES}


@contextlib.contextmanager
def _cudnn_benchmark(on: Optional[bool]):
    """torch.backends.cudnn.benchmark = on inside the block (only that flag; restored after);
    None leaves it as the application set it."""
    before = torch.backends.cudnn.benchmark
    if on is not None:
        torch.backends.cudnn.benchmark = on
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark = before


# Triton's own support matrix: NVIDIA GPUs of compute capability 8.0 (Ampere) and newer.
MIN_COMPUTE_CAPABILITY = (8, 0)


def _gpu_unsupported_reason(device: torch.device) -> Optional[str]:
    """Why the fused kernels cannot run on CUDA `device` (None when they can): Triton supports
    NVIDIA GPUs from compute capability 8.0 (a T4 is 7.5, a V100 7.0), and these kernels are
    compiled and tested for NVIDIA GPUs only (a ROCm build of PyTorch also calls its GPUs "cuda")."""
    if getattr(torch.version, "hip", None):
        return ("the fused kernels are built and tested for NVIDIA GPUs, and this PyTorch is a ROCm "
                "(AMD) build; use backend 'eager' or 'compile'")
    index = device.index if device.index is not None else torch.cuda.current_device()
    capability = tuple(torch.cuda.get_device_capability(index))
    if capability < MIN_COMPUTE_CAPABILITY:
        name = torch.cuda.get_device_name(index)
        need = ".".join(map(str, MIN_COMPUTE_CAPABILITY))
        return (f"Triton supports NVIDIA GPUs of compute capability {need} and newer; {name} is "
                f"{capability[0]}.{capability[1]}; use backend 'eager' or 'compile'")
    return None


@dataclass
class CapturedLoop:
    """One captured K-step loop: replaying `graph` maps `static_in` to `static_out`."""

    graph: "torch.cuda.CUDAGraph"
    static_in: torch.Tensor
    static_out: torch.Tensor

    def release(self) -> None:
        self.graph.reset()  # frees the graph's executable; its memory pool goes with the tensors
        self.static_in = self.static_out = None


class GraphCache:
    """A bounded LRU of captured loops keyed by (shape, dtype); eviction calls `release()`.

    Not thread-safe by itself: the backend holds its lock around every use.
    """

    def __init__(self, capacity: int, before_evict: Optional[Callable[[], None]] = None):
        if capacity < 1:
            raise ValueError(f"the graph cache needs room for at least one graph, got capacity {capacity}")
        self.capacity = capacity
        self._before_evict = before_evict
        self._entries: "collections.OrderedDict[Hashable, CapturedLoop]" = collections.OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key) -> bool:
        return key in self._entries

    def keys(self):
        return list(self._entries)

    def get(self, key) -> Optional[CapturedLoop]:
        entry = self._entries.get(key)
        if entry is not None:
            self._entries.move_to_end(key)
        return entry

    def get_or_create(self, key, create: Callable[[], CapturedLoop]) -> CapturedLoop:
        entry = self.get(key)
        if entry is None:
            # Evict before capturing, so the new graph can reuse the memory the old one frees.
            while len(self._entries) >= self.capacity:
                self._evict_oldest()
            entry = self._entries[key] = create()
        return entry

    def clear(self) -> None:
        while self._entries:
            self._evict_oldest()

    def _evict_oldest(self) -> None:
        if self._before_evict is not None:
            self._before_evict()
        _, entry = self._entries.popitem(last=False)
        entry.release()


class TritonBackend(Backend):
    name = "triton"
    default_max_graphs = 4
    # Un-captured runs of the loop before capture: JIT-compile every Triton kernel and let cuDNN
    # pick its algorithms (neither may happen during capture).
    warmup_runs = 2

    def __init__(self, model, schedule, precision, device, *, max_graphs: Optional[int] = None,
                 conv: str = "cudnn", cudnn_benchmark: Optional[bool] = None, upsample: str = "subpixel"):
        """`conv`: "cudnn" or "triton" (3×3 convs on the Triton kernel with fused epilogues);
        `upsample`: "subpixel" (the decoder's upsample + 3×3 conv folded into a 2×2 conv whose
        phases the next concatenation interleaves) or "nearest" (upsample, then the 3×3 conv);
        `cudnn_benchmark`: True lets cuDNN time its algorithms for each shape during the warm-up
        runs before capture, False forbids it (torch.backends.cudnn.benchmark, set only around the
        warm-up and capture); None (default) keeps the application's setting."""
        super().__init__(model, schedule, precision, device)
        reason = self.unavailable_reason(self.device, precision)
        if reason is not None:
            raise BackendUnavailable(f"backend 'triton' cannot run on {self.device} in {precision}: {reason}")
        from .fused_unet import FusedSampler  # imports Triton: only once it is known to work

        self.dtype = STORAGE_DTYPES[precision]
        self.sampler = FusedSampler(model, schedule, self.dtype, self.device, conv, upsample)
        self.cudnn_benchmark = cudnn_benchmark
        self.cuda_graphs = self.device.type == "cuda"
        self._lock = threading.Lock()
        self._last_replay: Optional["torch.cuda.Event"] = None
        self.graphs = GraphCache(max_graphs or self.default_max_graphs, before_evict=self._wait_idle)

    @classmethod
    def unavailable_reason(cls, device, precision) -> Optional[str]:
        if precision not in STORAGE_DTYPES:
            return f"unknown precision {precision!r}; choose one of {sorted(STORAGE_DTYPES)}"
        reason = triton_unavailable_reason()
        if reason is not None:
            return reason
        device = torch.device(device)
        if device.type == "cuda":
            if interpreter_enabled():
                return ("TRITON_INTERPRET=1 is set, which runs kernels in Triton's CPU interpreter "
                        "and cannot be captured in a CUDA graph; unset it to use the GPU")
            if not torch.cuda.is_available():
                return "CUDA is not available"
            reason = _gpu_unsupported_reason(device)
            if reason is not None:
                return reason
            if precision == "bf16" and not torch.cuda.is_bf16_supported():
                return "this GPU has no bf16 support; use fp16"
            return None
        if device.type == "cpu":
            if not interpreter_enabled():
                return ("Triton kernels need a CUDA GPU; on the CPU they run only in Triton's "
                        "interpreter, meant for tests (set TRITON_INTERPRET=1 before starting Python; "
                        "slow). Use backend='eager' on the CPU")
            if precision == "bf16":
                return "Triton's CPU interpreter does not compute bf16 products correctly; use fp32 or fp16"
            return None
        return f"Triton runs on CUDA devices, not {device.type}"

    # -- the loop --------------------------------------------------------------------------

    def _run_uncaptured(self, y: torch.Tensor) -> torch.Tensor:
        out = torch.empty_like(y)
        return self.sampler.run(y, out)

    def _key(self, shape, dtype) -> Tuple:
        return (tuple(int(s) for s in shape), dtype)

    capture_attempts = 2

    def _capture(self, shape: Tuple[int, ...], dtype: torch.dtype) -> CapturedLoop:
        """Warm up and capture the loop for `shape`; a capture that fails is retried once.

        On an H200 a capture failed twice (cuDNN INTERNAL_ERROR inside the capture, while other
        processes shared the GPU) and succeeded when run again, so one failure is not final; a
        second one is raised with the first in its message.
        """
        errors = []
        for _ in range(self.capture_attempts):
            try:
                return self._capture_once(shape, dtype)
            except RuntimeError as e:  # torch.AcceleratorError and cuDNN errors are RuntimeErrors
                errors.append(f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")
                if self.device.type == "cuda":
                    torch.cuda.synchronize(self.device)
        raise RuntimeError(f"capturing the {self.name} loop for input shape {tuple(shape)} failed "
                           f"{len(errors)} times: " + "; ".join(errors))

    def _capture_once(self, shape: Tuple[int, ...], dtype: torch.dtype) -> CapturedLoop:
        static_in = torch.zeros(shape, dtype=dtype, device=self.device)
        static_out = torch.empty_like(static_in)
        current = torch.cuda.current_stream(self.device)
        side = torch.cuda.Stream(self.device)
        side.wait_stream(current)
        with _cudnn_benchmark(self.cudnn_benchmark):
            with torch.cuda.stream(side):
                for _ in range(self.warmup_runs):
                    self.sampler.run(static_in, static_out)
            current.wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            # thread_local: CUDA calls made meanwhile by other threads of the host application
            # (a decoder allocating, another engine) do not invalidate this capture.
            with torch.cuda.graph(graph, capture_error_mode="thread_local"):
                self.sampler.run(static_in, static_out)
        return CapturedLoop(graph, static_in, static_out)

    def _wait_idle(self) -> None:
        # An evicted graph's memory may still be in use by a replay queued on another stream.
        torch.cuda.synchronize(self.device)

    def prepare(self, shape) -> None:
        if not self.cuda_graphs:
            return
        with torch.no_grad(), self._lock:
            key = self._key(shape, torch.float32)
            self.graphs.get_or_create(key, lambda: self._capture(key[0], torch.float32))

    def restore(self, y: torch.Tensor) -> torch.Tensor:
        y = y.contiguous()
        with torch.no_grad():
            if not self.cuda_graphs:
                return self._run_uncaptured(y)
            with self._lock:
                key = self._key(y.shape, y.dtype)
                loop = self.graphs.get_or_create(key, lambda: self._capture(key[0], y.dtype))
                stream = torch.cuda.current_stream(self.device)
                if self._last_replay is not None:
                    stream.wait_event(self._last_replay)
                loop.static_in.copy_(y)
                loop.graph.replay()
                result = loop.static_out.clone()
                self._last_replay = torch.cuda.Event()
                self._last_replay.record(stream)
            return result

    def clear_graphs(self) -> None:
        """Drop every captured graph (and its memory)."""
        with self._lock:
            if self.cuda_graphs:
                self.graphs.clear()
