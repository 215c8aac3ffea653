"""Build and load TensorRT engines from our ONNX graphs (TensorRT 10.x and 11.x Python API).

Networks are strongly typed (TensorRT 11 has nothing else: no FP16/INT8 builder flags, no
calibrators), so the precision comes from the graph: an fp16 export (fp32 islands for the
normalisation statistics, softmaxes and the sampler state), or the INT8 Q/DQ model from
`calibrate.py` (explicit quantisation). One optimisation profile per build, from min/opt/max
shapes; kernels are tuned for `opt`. A timing cache file is read before and written after every
build. Each engine gets a JSON sidecar (`engine_cache.EngineRecord`); `load_engine` refuses an
engine built by another TensorRT version or on another GPU model, naming the difference.

TensorRT and a CUDA device are needed to build or load; everything else is in `engine_cache`.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence, Tuple

from ..atomic import atomic_path
from .deps import require
from .engine_cache import (DEFAULT_CACHE_DIR, BuildSettings, EngineMismatch, EngineRecord, Environment,
                           Profile, cache_key, cached_engine_path, check_compatible, find_cached,
                           read_record, write_engine)
from .onnx import file_sha256, read_metadata

log = logging.getLogger(__name__)

DEFAULT_MIN = (1, 3, 64, 64)
DEFAULT_OPT = (1, 3, 720, 1280)
DEFAULT_MAX = (1, 3, 1088, 1920)


class TensorRTBuildError(RuntimeError):
    """The ONNX parser or the builder failed; the message carries their errors."""


@dataclass(frozen=True)
class BuildOptions:
    """How to build: image input shapes (N×3×H×W), workspace limit, optimisation level, caches.

    `optimization_level` 0–5 (TensorRT's default 3): higher searches more tactics, builds slower.
    `timing_cache`: file of tactic timings reused across builds (same TensorRT version and GPU).
    """

    min_shape: Tuple[int, ...] = DEFAULT_MIN
    opt_shape: Tuple[int, ...] = DEFAULT_OPT
    max_shape: Tuple[int, ...] = DEFAULT_MAX
    workspace_mib: int = 4096
    optimization_level: int = 3
    timing_cache: Optional[Path] = None


def import_tensorrt():
    """The tensorrt module, or MissingDependency saying how to install it."""
    return require("tensorrt", "Building or running TensorRT engines")


def current_environment(trt=None) -> Environment:
    """TensorRT version and the current CUDA device's name and compute capability."""
    import torch

    trt = trt or import_tensorrt()
    if not torch.cuda.is_available():
        raise EngineMismatch("TensorRT needs a CUDA GPU, and torch sees none here")
    index = torch.cuda.current_device()
    major, minor = torch.cuda.get_device_capability(index)
    return Environment(tensorrt_version=trt.__version__, gpu_name=torch.cuda.get_device_name(index),
                       compute_capability=f"{major}.{minor}")


def input_profiles(input_names: Sequence[str], options: BuildOptions) -> Tuple[Profile, ...]:
    """Profiles for our graphs' inputs: the image input(s) from the options, `t` follows the batch."""
    profiles = []
    for name in input_names:
        if name == "t":
            profiles.append(Profile(name, options.min_shape[:1], options.opt_shape[:1], options.max_shape[:1]))
        else:
            profiles.append(Profile(name, tuple(options.min_shape), tuple(options.opt_shape),
                                    tuple(options.max_shape)))
    return tuple(profiles)


def graph_precision(onnx_path: os.PathLike) -> str:
    """The precision recorded in the graph's metadata (fp32, fp16 or int8)."""
    return read_metadata(onnx_path).get("precision", "fp32")


def _trt_logger(trt):
    return trt.Logger(trt.Logger.WARNING)


def _parse(trt, builder, logger, onnx_path: Path):
    network = builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED))
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "\n".join(f"  {parser.get_error(i)}" for i in range(parser.num_errors))
        raise TensorRTBuildError(f"TensorRT's ONNX parser rejected {onnx_path}:\n{errors}")
    return network, parser


def _configure(trt, builder, network, settings: BuildSettings, timing_cache: Optional[Path]):
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, settings.workspace_mib << 20)
    config.builder_optimization_level = settings.optimization_level
    profile = builder.create_optimization_profile()
    for i in range(network.num_inputs):
        name = network.get_input(i).name
        p = next((q for q in settings.profiles if q.name == name), None)
        if p is None:
            raise TensorRTBuildError(f"the network has an input {name!r} with no profile")
        profile.set_shape(name, p.min, p.opt, p.max)
    config.add_optimization_profile(profile)
    previous = timing_cache.read_bytes() if timing_cache is not None and timing_cache.is_file() else b""
    config.set_timing_cache(config.create_timing_cache(previous), ignore_mismatch=False)
    return config


def build_engine(onnx_path: os.PathLike, output: Optional[os.PathLike] = None,
                 options: BuildOptions = BuildOptions(), *, cache_dir: os.PathLike = DEFAULT_CACHE_DIR,
                 rebuild: bool = False) -> Tuple[Path, EngineRecord]:
    """Build (or find in the cache) the engine for `onnx_path`; returns (engine path, record).

    Without `output` the engine goes to `cache_dir` under its cache key. An existing engine whose
    sidecar matches the key is reused unless `rebuild`.
    """
    trt = import_tensorrt()
    onnx_path = Path(onnx_path)
    environment = current_environment(trt)
    graph = read_metadata(onnx_path)
    input_names = ("x", "t") if graph.get("graph") == "network" else ("degraded",)
    settings = BuildSettings(onnx_sha256=file_sha256(onnx_path), precision=graph.get("precision", "fp32"),
                             profiles=input_profiles(input_names, options),
                             workspace_mib=options.workspace_mib, optimization_level=options.optimization_level)
    key = cache_key(environment, settings)
    engine_path = Path(output) if output is not None else cached_engine_path(cache_dir, onnx_path, key)
    if not rebuild:
        record = find_cached(engine_path, environment, settings)
        if record is not None:
            log.info("reusing %s (cache key %s)", engine_path, key)
            return engine_path, record

    logger = _trt_logger(trt)
    builder = trt.Builder(logger)
    network, _parser = _parse(trt, builder, logger, onnx_path)
    config = _configure(trt, builder, network, settings, options.timing_cache)
    plan = builder.build_serialized_network(network, config)
    if plan is None:
        raise TensorRTBuildError(f"TensorRT could not build an engine from {onnx_path} (see its log above)")
    record = EngineRecord(environment=environment, settings=settings, graph=graph)
    write_engine(engine_path, bytes(plan), record)
    if options.timing_cache is not None:
        with atomic_path(options.timing_cache, suffix=".cache") as tmp:
            Path(tmp).write_bytes(bytes(config.get_timing_cache().serialize()))
    return engine_path, record


def load_engine(engine_path: os.PathLike):
    """Deserialize an engine after checking its sidecar against this machine.

    Returns (ICudaEngine, Runtime, EngineRecord); keep the runtime alive as long as the engine.
    """
    trt = import_tensorrt()
    record = read_record(engine_path)
    check_compatible(engine_path, record, current_environment(trt))
    runtime = trt.Runtime(_trt_logger(trt))
    engine = runtime.deserialize_cuda_engine(Path(engine_path).read_bytes())
    if engine is None:
        raise EngineMismatch(f"TensorRT could not deserialize {engine_path} (see its log above)")
    return engine, runtime, record
