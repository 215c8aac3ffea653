"""The "tensorrt" backend: a TensorRT engine of the K-step sampler, driven with torch's memory and streams.

Construction takes the sampler graph (fp32 or fp16) from the graph cache shared with the
onnxruntime backend (`irflow_engine.export.graph_cache`: exported once per weights and settings)
and builds (or finds, by cache key) its engine with `irflow_engine.export.tensorrt.build_engine`,
for the profile `DEFAULT_BUILD` (any N×3×H×W between its min and max). A call binds torch
tensors by address (`set_tensor_address`) and enqueues with `execute_async_v3` on torch's current
stream; when that is the legacy default stream (which TensorRT would have to synchronise around,
and which cannot be captured) it uses the backend's own stream, ordered after and before the
caller's with stream waits. No pycuda: torch allocates, torch owns the streams (docs/export.md).

Static shapes: the first call of each shape runs one plain enqueue, then captures one enqueue as
a CUDA graph between static input/output buffers with an execution context of its own (graphs
bake in the context's state and the buffers' addresses); later calls of that shape copy in,
replay and copy out. Graphs live in the Triton backend's bounded LRU (`GraphCache`). An engine
that refuses capture falls back to plain enqueues for that shape. One call at a time (a lock).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Tuple

import torch

from .base import Backend, BackendUnavailable
from .triton import CapturedLoop, GraphCache

GRAPH_PRECISIONS = ("fp32", "fp16")


@dataclass
class CapturedEnqueue(CapturedLoop):
    """A captured enqueue and the execution context whose state it baked in."""

    context: object = None

    def release(self) -> None:
        super().release()
        self.context = None


class TensorRTBackend(Backend):
    name = "tensorrt"
    default_max_graphs = 4

    def __init__(self, model, schedule, precision, device, *, engine_path: Optional[Path] = None,
                 build_options=None, cache_dir: Optional[Path] = None,
                 max_graphs: Optional[int] = None):
        super().__init__(model, schedule, precision, device)
        reason = self.unavailable_reason(self.device, precision)
        if reason is not None:
            raise BackendUnavailable(f"backend 'tensorrt' cannot run on {self.device} in {precision}: {reason}")
        from ..export.engine_cache import DEFAULT_CACHE_DIR
        from ..export.tensorrt import BuildOptions, build_engine, load_engine

        self.cache_dir = Path(cache_dir) if cache_dir is not None else DEFAULT_CACHE_DIR
        with torch.cuda.device(self.device):
            if engine_path is None:
                onnx_path = self._export(model, schedule, precision)
                options = build_options or BuildOptions(
                    min_shape=(1, 3, 32, 32), max_shape=(4, 3, 1088, 1920),
                    timing_cache=self.cache_dir / "timing.cache")
                engine_path, _ = build_engine(onnx_path, options=options, cache_dir=self.cache_dir)
            self.engine, self._runtime, self.record = load_engine(engine_path)
            self.context = self.engine.create_execution_context()
        self.engine_path = Path(engine_path)
        self.input_name, self.output_name = self._io_names()
        self._lock = threading.Lock()
        self._side_stream = torch.cuda.Stream(self.device)
        self._uncapturable = set()
        self.graphs = GraphCache(max_graphs or self.default_max_graphs, before_evict=self._wait_idle)

    @classmethod
    def unavailable_reason(cls, device, precision) -> Optional[str]:
        try:
            import tensorrt  # noqa: F401
        except ImportError:
            return ("the 'tensorrt' package is not installed (pip install 'irflow-engine[tensorrt]'; "
                    "it needs an NVIDIA GPU and driver)")
        if torch.device(device).type != "cuda" or not torch.cuda.is_available():
            return "TensorRT runs on CUDA devices only; use device='cuda'"
        if precision not in GRAPH_PRECISIONS:
            return (f"its engines are built from {' or '.join(GRAPH_PRECISIONS)} graphs; for INT8 build an "
                    "engine from `irflow export int8` with `irflow export tensorrt` and pass engine_path")
        return None

    def _export(self, model, schedule, precision) -> Path:
        """The sampler's ONNX file: from the graph cache shared with the onnxruntime backend
        (exported once per weights and settings), or, when that folder is not writable, written
        into this backend's cache folder under its checksum."""
        import hashlib

        from ..atomic import atomic_path
        from ..export.graph_cache import DEFAULT_GRAPH_CACHE, cached_sampler_graph

        proto, path = cached_sampler_graph(model, schedule, precision, DEFAULT_GRAPH_CACHE)
        if path is not None:
            return path
        data = proto.SerializeToString()
        path = self.cache_dir / f"sampler-{hashlib.sha256(data).hexdigest()[:20]}.onnx"
        if not path.is_file():
            with atomic_path(path, suffix=".onnx") as tmp:
                Path(tmp).write_bytes(data)
        return path

    def _io_names(self) -> Tuple[str, str]:
        import tensorrt as trt

        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        inputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        outputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT]
        if len(inputs) != 1 or len(outputs) != 1:
            raise BackendUnavailable(f"{self.engine_path} is not a sampler engine (inputs {inputs}, outputs "
                                     f"{outputs}); the backend runs engines of `irflow export onnx` without "
                                     "--network-only")
        for n in names:
            if self.engine.get_tensor_dtype(n) != trt.float32:
                raise BackendUnavailable(f"{self.engine_path}: tensor {n!r} is not float32")
        return inputs[0], outputs[0]

    # -- enqueue ---------------------------------------------------------------------------

    def _bind(self, context, y: torch.Tensor, out: torch.Tensor) -> None:
        if not context.set_input_shape(self.input_name, tuple(y.shape)):
            raise RuntimeError(f"TensorRT refused input shape {tuple(y.shape)}")
        context.set_tensor_address(self.input_name, y.data_ptr())
        context.set_tensor_address(self.output_name, out.data_ptr())

    @staticmethod
    def _enqueue(context, stream: "torch.cuda.Stream") -> None:
        if not context.execute_async_v3(stream.cuda_stream):
            raise RuntimeError("TensorRT's execute_async_v3 failed (see its log above)")

    def _capture(self, shape: Tuple[int, ...], stream) -> Optional[CapturedEnqueue]:
        context = self.engine.create_execution_context()
        static_in = torch.zeros(shape, device=self.device)
        static_out = torch.empty(shape, device=self.device)
        self._bind(context, static_in, static_out)
        self._enqueue(context, stream)  # TensorRT finishes its lazy set-up outside the capture
        stream.synchronize()
        graph = torch.cuda.CUDAGraph()
        try:
            with torch.cuda.graph(graph, stream=stream):
                self._enqueue(context, stream)
        except RuntimeError:
            return None
        return CapturedEnqueue(graph, static_in, static_out, context)

    def _wait_idle(self) -> None:
        torch.cuda.synchronize(self.device)

    def _run(self, y: torch.Tensor, stream) -> torch.Tensor:
        key = tuple(y.shape)
        loop = None
        if key not in self._uncapturable:
            loop = self.graphs.get(key)
            if loop is None:
                loop = self._capture(key, stream)
                if loop is None:
                    self._uncapturable.add(key)
                else:
                    self.graphs.get_or_create(key, lambda: loop)
        if loop is None:
            out = torch.empty_like(y)
            self._bind(self.context, y, out)
            self._enqueue(self.context, stream)
            return out
        loop.static_in.copy_(y)
        loop.graph.replay()
        return loop.static_out.clone()

    def restore(self, y: torch.Tensor) -> torch.Tensor:
        from ..export.engine_cache import check_shape

        check_shape(self.record, self.input_name, y.shape)
        y = y.contiguous()
        with torch.no_grad(), self._lock, torch.cuda.device(self.device):
            caller = torch.cuda.current_stream(self.device)
            own = caller == torch.cuda.default_stream(self.device)
            stream = self._side_stream if own else caller
            if own:
                stream.wait_stream(caller)
            with torch.cuda.stream(stream):
                out = self._run(y, stream)
            if own:
                caller.wait_stream(stream)
                y.record_stream(stream)
                out.record_stream(caller)
            return out
