"""ONNX export of the velocity network D(x, t) or of the whole K-step sampler.

Graphs (see `graph.py`):

- sampler (default): input `degraded` N×3×H×W float32 in [0, 1] -> output `restored`, same
  layout; the schedule's weights and every step's time embedding are constants.
- network (`network_only=True`): inputs `x` N×3×H×W float32 and `t` [N] float32 -> `velocity`.

Batch, height and width are dynamic; padding to a multiple of 2**depth and the crop back are in
the graph. The model's metadata properties record what the graph is (`METADATA_KEYS`).

Exporter: torch's TorchScript-based exporter (`dynamo=False`), see docs/export.md for why.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import warnings
from pathlib import Path
from typing import Dict, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from .._version import __version__
from ..atomic import atomic_path
from ..checkpoint import LoadedCheckpoint, resolve
from ..flow import Schedule, make_schedule, sample
from ..models import ConditionalUNet
from .deps import require
from .graph import build_graph

DEFAULT_OPSET = 17
# Sizes traced at export: odd on purpose (they need padding), never special-cased (not 0 or 1).
TRACE_SHAPE = (1, 3, 21, 30)
TRACE_TIME = 500.0
SAMPLER_IO = (("degraded",), "restored")
NETWORK_IO = (("x", "t"), "velocity")
METADATA_KEYS = ("graph", "preset", "task", "steps", "solver", "times", "precision", "clamped",
                 "pad_multiple", "model", "package_version")
# Relative error (max |a − b| / max |b|) of an exported graph in ONNX Runtime (CPU) against the
# eager fp32 backend on random inputs. Measured on the bundled models: fp32 about 1e-6; fp16
# 3e-5 to 7e-4 (the network alone), 3e-5 to 3e-4 (the 3-step sampler).
PARITY_TOLERANCE = {"fp32": 1e-4, "fp16": 5e-3}

PathLike = Union[str, os.PathLike]


def io_names(network_only: bool) -> Tuple[Tuple[str, ...], str]:
    """(input names, output name) of the sampler or the network graph."""
    return NETWORK_IO if network_only else SAMPLER_IO


def trace_inputs(network_only: bool) -> Tuple[torch.Tensor, ...]:
    x = torch.rand(TRACE_SHAPE, generator=torch.Generator().manual_seed(0))
    return (x, torch.full((TRACE_SHAPE[0],), TRACE_TIME)) if network_only else (x,)


def export_graph(model: ConditionalUNet, schedule: Optional[Schedule], precision: str = "fp32", *,
                 clamp: bool = False, opset: int = DEFAULT_OPSET,
                 metadata: Optional[Dict[str, str]] = None):
    """Trace the sampler for `schedule` (or the network when None) into a checked onnx.ModelProto."""
    onnx = require("onnx", "ONNX export")
    module = build_graph(model, schedule, precision, clamp)
    inputs, output = io_names(schedule is None)
    dynamic = {name: {0: "batch", 2: "height", 3: "width"} for name in inputs if name != "t"}
    dynamic[output] = {0: "batch", 2: "height", 3: "width"}
    if "t" in inputs:
        dynamic["t"] = {0: "batch"}
    with tempfile.TemporaryDirectory(prefix="irflow-onnx-") as tmp:
        path = os.path.join(tmp, "graph.onnx")
        with warnings.catch_warnings(), torch.no_grad():
            # The legacy exporter warns that it is deprecated, and the tracer about shape values
            # turned into Python ints (they stay symbolic in the graph: graph.reflect_index).
            warnings.simplefilter("ignore")
            torch.onnx.export(module, trace_inputs(schedule is None), path, dynamo=False,
                              opset_version=opset, input_names=list(inputs), output_names=[output],
                              dynamic_axes=dynamic, do_constant_folding=True)
        proto = onnx.load(path)
    proto.producer_name, proto.producer_version = "irflow_engine", __version__
    set_metadata(proto, metadata or {})
    onnx.checker.check_model(proto, full_check=True)
    return proto


def set_metadata(proto, values: Dict[str, str]) -> None:
    """Replace the model's metadata properties with `values` (all strings)."""
    del proto.metadata_props[:]
    for key, value in values.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, str(value)


def graph_metadata(checkpoint: LoadedCheckpoint, schedule: Schedule, precision: str, network_only: bool,
                   clamp: bool) -> Dict[str, str]:
    meta = checkpoint.meta
    return {
        "graph": "network" if network_only else "sampler",
        "preset": meta.preset or "",
        "task": meta.task or "",
        "steps": str(schedule.steps),
        "solver": schedule.solver,
        "times": ",".join(str(t) for t in schedule.times),
        "precision": precision,
        "clamped": str(bool(clamp)).lower(),
        "pad_multiple": str(checkpoint.config.pad_multiple),
        "model": Path(checkpoint.name).name,
        "package_version": __version__,
    }


def export_onnx(model: Union[PathLike, LoadedCheckpoint], output: PathLike, steps: Optional[int] = None,
                solver: Optional[str] = None, *, network_only: bool = False, precision: str = "fp32",
                clamp: bool = False, opset: int = DEFAULT_OPSET) -> Path:
    """Export a checkpoint (file, bundled name or preset) to `output` (written atomically).

    `steps`/`solver` default to the checkpoint's; the network graph records them in its metadata
    only (it has no schedule inside).
    """
    onnx = require("onnx", "ONNX export")
    checkpoint = resolve(model)
    schedule = make_schedule(steps if steps is not None else checkpoint.meta.default_steps,
                             solver if solver is not None else checkpoint.meta.default_solver)
    proto = export_graph(checkpoint.build_model(), None if network_only else schedule, precision,
                         clamp=clamp, opset=opset,
                         metadata=graph_metadata(checkpoint, schedule, precision, network_only, clamp))
    output = Path(output)
    with atomic_path(output, suffix=".onnx") as tmp:
        onnx.save_model(proto, tmp)
    return output


def read_metadata(path_or_proto) -> Dict[str, str]:
    """The metadata properties of an ONNX file (or ModelProto) as a dict."""
    if isinstance(path_or_proto, (str, os.PathLike)):
        onnx = require("onnx", "reading ONNX metadata")
        path_or_proto = onnx.load(os.fspath(path_or_proto), load_external_data=False)
    return {p.key: p.value for p in path_or_proto.metadata_props}


def file_sha256(path: PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def ort_session(path_or_proto, providers=("CPUExecutionProvider",), threads: int = 0):
    """An ONNX Runtime session (all graph optimisations on; `threads` 0 = ONNX Runtime's default).

    The memory-pattern cache is off: our graphs take any H×W, and with it on, the CPU session's
    peak memory from the second frame of one size on was 1.6× that without (720p, K = 3: 5.36 vs
    3.26 KiB per pixel, docs/PERF.md), at the same speed. Only errors are logged: an fp16 graph
    makes the CPU provider warn about every fp16 node it cannot constant-fold, which is noise.
    """
    ort = require("onnxruntime", "running ONNX graphs")
    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.intra_op_num_threads = threads
    options.enable_mem_pattern = False
    model = path_or_proto.SerializeToString() if hasattr(path_or_proto, "SerializeToString") \
        else os.fspath(path_or_proto)
    return ort.InferenceSession(model, options, providers=list(providers))


def eager_reference(model: ConditionalUNet, schedule: Optional[Schedule], inputs: Sequence[torch.Tensor]):
    """What the eager fp32 backend computes: the sampler's x̂0, or D(x, t) when `schedule` is None."""
    model = model.float().eval()
    with torch.inference_mode():
        if schedule is None:
            x, t = inputs
            return model(x, t)
        return sample(model, inputs[0], schedule)


def random_inputs(shape: Tuple[int, int, int, int], network_only: bool, seed: int = 0):
    """Random non-constant inputs: y (or x) uniform in [0, 1], and distinct times in [0, 1000]."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(shape, generator=g)
    if not network_only:
        return (x,)
    return x, torch.randint(0, 1001, (shape[0],), generator=g).float()


def parity_error(session, model: ConditionalUNet, schedule: Optional[Schedule],
                 shape: Tuple[int, int, int, int], seed: int = 0) -> float:
    """max |onnx − eager| / max |eager| for one random input of `shape`."""
    network_only = schedule is None
    inputs = random_inputs(shape, network_only, seed)
    names, _ = io_names(network_only)
    got = session.run(None, {n: v.numpy() for n, v in zip(names, inputs)})[0]
    want = eager_reference(model, schedule, inputs).numpy()
    if got.shape != want.shape:
        raise AssertionError(f"ONNX output has shape {got.shape}, eager {want.shape}")
    return float(np.abs(got.astype(np.float64) - want).max() / np.abs(want).max())
