"""Exported sampler graphs cached on disk, so that an onnxruntime backend starts in well under a second.

Exporting a sampler (tracing, constant folding, the full ONNX check) takes about 5 s on a 2-core
CPU for the bundled models; reading a cached graph takes a few tens of milliseconds. The cache key
hashes everything the exported graph depends on: the weights (each tensor's name, dtype, shape and
bytes), the architecture, the schedule, the graph precision, the clamp flag, the opset, the
versions of irflow_engine, torch and onnx, and the source of the modules that define the traced
graph (the network, the sampler, the export wrappers), so an edited network is exported again even
under the same version number. The key is also written into the graph's metadata and checked on
reading, so an entry that fails to parse or does not carry its own key is exported again and
replaced. Each entry also carries the metadata that `irflow export onnx` writes for a sampler
(`graph`, `precision`, `steps`, `solver`), which the TensorRT build reads: the onnxruntime and
tensorrt backends share one cache. Entries are written atomically (write, then rename), a hit
refreshes the entry's modification time, and the least recently used entries beyond
`max_entries` (16) or 2 GiB in all are deleted.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path
from typing import Optional

import torch

from .._version import __version__
from ..atomic import atomic_path
from ..config import CACHE_ROOT
from ..flow import Schedule
from ..models import ConditionalUNet
from .deps import require
from .onnx import DEFAULT_OPSET, export_graph, set_metadata

log = logging.getLogger(__name__)

DEFAULT_GRAPH_CACHE = CACHE_ROOT / "onnx"
DEFAULT_MAX_ENTRIES = 16
DEFAULT_MAX_BYTES = 2 << 30   # irflow-unet64's fp32 sampler is ~0.55 GB, the bundled models' ~10 MB
KEY_PROPERTY = "irflow_cache_key"
KEY_FORMAT = 3  # bump when what the key covers or an entry holds changes (2: sampler metadata; 3: code)


def _source_digest() -> str:
    """sha256 of the source files whose code the traced graph is made of."""
    from .. import flow
    from ..models import unet
    from . import graph, onnx as onnx_export

    digest = hashlib.sha256()
    for module in (unet, flow, graph, onnx_export):
        digest.update(Path(module.__file__).read_bytes())
    return digest.hexdigest()


def graph_key(model: ConditionalUNet, schedule: Schedule, precision: str, *, clamp: bool = False,
              opset: int = DEFAULT_OPSET) -> str:
    """The sha256 (hex) of everything the exported sampler graph depends on."""
    onnx = require("onnx", "ONNX export")
    digest = hashlib.sha256()
    header = (f"format={KEY_FORMAT};irflow={__version__};torch={torch.__version__};onnx={onnx.__version__};"
              f"opset={opset};precision={precision};clamp={bool(clamp)};model={model.config!r};"
              f"schedule={schedule!r};code={_source_digest()}")
    digest.update(header.encode())
    for name, tensor in sorted(model.state_dict().items()):
        data = tensor.detach().to("cpu").contiguous()
        digest.update(f";{name}:{data.dtype}:{tuple(data.shape)}:".encode())
        digest.update(data.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def sampler_metadata(schedule: Schedule, precision: str) -> dict:
    """What a cached sampler graph says about itself (the keys the TensorRT build reads)."""
    return {"graph": "sampler", "precision": precision, "steps": str(schedule.steps), "solver": schedule.solver}


def _read_entry(path: Path, key: str):
    """The cached ModelProto at `path`, or None when it is missing, unreadable or not `key`'s."""
    onnx = require("onnx", "ONNX export")
    if not path.is_file():
        return None
    try:
        proto = onnx.load(os.fspath(path))
        onnx.checker.check_model(proto)
    except Exception as e:  # a truncated or foreign file: export again
        log.warning("graph cache: %s is unreadable (%s: %s); exporting again", path, type(e).__name__, e)
        return None
    stored = {p.key: p.value for p in proto.metadata_props}.get(KEY_PROPERTY)
    if stored != key:
        log.warning("graph cache: %s does not carry its key; exporting again", path)
        return None
    return proto


def prune(cache_dir: Path, max_entries: int, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
    """Delete the least recently used graphs beyond `max_entries` or `max_bytes` in all; the most
    recently used one always stays. Temporary files (hidden, being written) are never touched."""
    entries = []
    for path in Path(cache_dir).glob("sampler-*.onnx"):
        try:
            stat = path.stat()
        except FileNotFoundError:  # deleted by another process meanwhile
            continue
        entries.append((stat.st_mtime, stat.st_size, path))
    entries.sort(key=lambda e: e[0], reverse=True)
    kept = 0
    for i, (_, size, path) in enumerate(entries):
        if i == 0 or (i < max_entries and kept + size <= max_bytes):
            kept += size
            continue
        try:
            path.unlink()
        except FileNotFoundError:
            pass


def cached_sampler_graph(model: ConditionalUNet, schedule: Schedule, precision: str,
                         cache_dir: Optional[Path] = DEFAULT_GRAPH_CACHE, *,
                         max_entries: int = DEFAULT_MAX_ENTRIES):
    """The sampler graph of `export_graph(model, schedule, precision)`, from `cache_dir` when it
    holds one for exactly these weights and settings, else exported and stored there.

    `cache_dir=None` exports without caching. Returns (onnx.ModelProto, path or None).
    """
    if max_entries < 1:
        raise ValueError(f"max_entries must be >= 1, got {max_entries}")
    if cache_dir is None:
        return export_graph(model, schedule, precision, metadata=sampler_metadata(schedule, precision)), None
    onnx = require("onnx", "ONNX export")
    key = graph_key(model, schedule, precision)
    path = Path(cache_dir) / f"sampler-{key[:32]}.onnx"
    proto = _read_entry(path, key)
    if proto is not None:
        try:
            os.utime(path)  # most recently used
        except OSError:
            pass
        return proto, path
    proto = export_graph(model, schedule, precision, metadata=sampler_metadata(schedule, precision))
    set_metadata(proto, {**{p.key: p.value for p in proto.metadata_props}, KEY_PROPERTY: key})
    try:
        with atomic_path(path, suffix=".onnx") as tmp:
            onnx.save_model(proto, tmp)
        prune(Path(cache_dir), max_entries)
    except OSError as e:  # a read-only or full cache folder costs the next start an export, nothing more
        log.warning("graph cache: cannot write %s (%s); continuing without caching", path, e)
        return proto, None
    return proto, path
