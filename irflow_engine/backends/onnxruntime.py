"""The "onnxruntime" backend: the K-step sampler exported to ONNX, run by ONNX Runtime.

Construction exports the sampler graph (`irflow_engine.export.onnx.export_graph`: schedule and
time embeddings folded, padding inside, any N/H/W), or reads it from the graph cache
(`irflow_engine.export.graph_cache`, keyed by the weights and settings; `graph_cache=None` turns it
off), and opens a session on it. On the CPU the session uses the CPU execution provider: there it
is 1.8–2.5× faster than the eager backend (docs/PERF.md), which is why `backend="auto"` picks it
for fp32 on the CPU. On CUDA it needs an onnxruntime build with the CUDA
provider (`onnxruntime-gpu`); the TensorRT provider is put first when that build has it. CUDA
inputs and outputs are bound by address (I/O binding), so frames never leave the GPU; ONNX Runtime
runs on its own CUDA stream, so a call waits for torch's current stream first and returns when
the output is ready.
"""

from __future__ import annotations

from typing import List, Optional

import numpy as np
import torch

from ..config import CACHE_ROOT
from .base import Backend

_DEFAULT = object()

GRAPH_PRECISIONS = ("fp32", "fp16")
# Tried in this order on CUDA, among those the installed onnxruntime has.
CUDA_PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider")
TRT_PROVIDER_CACHE = CACHE_ROOT / "ort-tensorrt"


def _available_providers() -> Optional[List[str]]:
    try:
        import onnxruntime
    except ImportError:
        return None
    return list(onnxruntime.get_available_providers())


def session_providers(device: torch.device, available: List[str]) -> list:
    """Execution providers (with options) for `device`, best first, CPU last."""
    if device.type != "cuda":
        return ["CPUExecutionProvider"]
    index = device.index or 0
    options = {"TensorrtExecutionProvider": {"device_id": index, "trt_engine_cache_enable": True,
                                             "trt_engine_cache_path": str(TRT_PROVIDER_CACHE)},
               "CUDAExecutionProvider": {"device_id": index}}
    chosen = [(name, options[name]) for name in CUDA_PROVIDERS if name in available]
    return chosen + ["CPUExecutionProvider"]


class OnnxRuntimeBackend(Backend):
    name = "onnxruntime"

    def __init__(self, model, schedule, precision, device, *, graph_cache=_DEFAULT):
        """`graph_cache`: folder of cached sampler graphs (default: `graph_cache.DEFAULT_GRAPH_CACHE`,
        under $IRFLOW_CACHE_DIR or ~/.cache/irflow_engine); None exports every time."""
        super().__init__(model, schedule, precision, device)
        from ..export.graph_cache import DEFAULT_GRAPH_CACHE, cached_sampler_graph
        from ..export.onnx import SAMPLER_IO, ort_session

        (self.input_name,), self.output_name = SAMPLER_IO
        cache_dir = DEFAULT_GRAPH_CACHE if graph_cache is _DEFAULT else graph_cache
        self.graph, self.graph_path = cached_sampler_graph(model, schedule, precision, cache_dir)
        if self.device.type == "cuda":
            TRT_PROVIDER_CACHE.mkdir(parents=True, exist_ok=True)
        # On the CPU, as many threads as torch uses here (torch.set_num_threads, OMP_NUM_THREADS,
        # the Ray workers' share), not ONNX Runtime's default of every core in each session.
        threads = torch.get_num_threads() if self.device.type == "cpu" else 0
        self.session = ort_session(self.graph, session_providers(self.device, _available_providers()), threads)

    @classmethod
    def unavailable_reason(cls, device, precision) -> Optional[str]:
        available = _available_providers()
        if available is None:
            return "onnxruntime is not installed: pip install 'irflow-engine[onnx]'"
        try:
            import onnx  # noqa: F401  (the export needs it)
        except ImportError:
            return "onnx is not installed (the backend exports the model first): pip install 'irflow-engine[onnx]'"
        if precision not in GRAPH_PRECISIONS:
            return f"its graphs are {' or '.join(GRAPH_PRECISIONS)}, not {precision}"
        if torch.device(device).type == "cuda" and "CUDAExecutionProvider" not in available:
            return (f"this onnxruntime has no CUDA provider (it has {', '.join(available)}); "
                    "install onnxruntime-gpu, or use device='cpu'")
        return None

    def restore(self, y: torch.Tensor) -> torch.Tensor:
        y = y.contiguous()
        if self.device.type != "cuda":
            out = self.session.run([self.output_name], {self.input_name: y.numpy()})[0]
            return torch.from_numpy(out)
        out = torch.empty_like(y)
        binding = self.session.io_binding()
        index = self.device.index or 0
        binding.bind_input(self.input_name, "cuda", index, np.float32, tuple(y.shape), y.data_ptr())
        binding.bind_output(self.output_name, "cuda", index, np.float32, tuple(out.shape), out.data_ptr())
        torch.cuda.current_stream(self.device).synchronize()  # y is written on torch's stream
        self.session.run_with_iobinding(binding)  # returns once ONNX Runtime's stream is done
        return out
