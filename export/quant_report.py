"""Per-layer error of a Q/DQ model against the float model it was quantised from.

Every quantised node's output (same tensor name in both models) is exposed as a graph output,
both models run on the same feeds, and each tensor's SQNR is reported: 10·log10(Σref² / Σerr²)
over all feeds. The error at a layer includes what earlier layers passed on, so the worst rows
are where quantisation hurts the result most; a drop from one row to the next points at the
layer that adds it.
"""

from __future__ import annotations

import copy
import json
import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Dict, List, Sequence

import numpy as np

from ..atomic import atomic_path
from .deps import require
from .onnx import ort_session


@dataclass(frozen=True)
class LayerError:
    node: str
    op: str
    tensor: str
    sqnr_db: float
    rel_rmse: float


def psnr(a: np.ndarray, b: np.ndarray, peak: float = 1.0) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return math.inf if mse == 0 else 10.0 * math.log10(peak * peak / mse)


def quantized_nodes(qdq_proto, op_types: Sequence[str]) -> List:
    """Nodes of `op_types` in the Q/DQ model that read a DequantizeLinear output (the INT8 ones)."""
    dq_outputs = {o for n in qdq_proto.graph.node if n.op_type == "DequantizeLinear" for o in n.output}
    return [n for n in qdq_proto.graph.node
            if n.op_type in op_types and any(i in dq_outputs for i in n.input)]


def _with_outputs(proto, names: Sequence[str]):
    onnx = require("onnx", "the INT8 error report")
    model = copy.deepcopy(proto)
    present = {o.name for o in model.graph.output}
    for name in names:
        if name not in present:
            model.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    return model


def layer_errors(float_proto, qdq_proto, feeds: Sequence[Dict[str, np.ndarray]],
                 op_types: Sequence[str] = ("Conv", "MatMul")) -> List[LayerError]:
    """SQNR of the output of every quantised node of `op_types`, worst first."""
    nodes = quantized_nodes(qdq_proto, op_types)
    tensors = [n.output[0] for n in nodes]
    ref_sess = ort_session(_with_outputs(float_proto, tensors))
    q_sess = ort_session(_with_outputs(qdq_proto, tensors))
    signal = dict.fromkeys(tensors, 0.0)
    noise = dict.fromkeys(tensors, 0.0)
    count = dict.fromkeys(tensors, 0)
    for feed in feeds:
        ref = dict(zip([o.name for o in ref_sess.get_outputs()], ref_sess.run(None, feed)))
        got = dict(zip([o.name for o in q_sess.get_outputs()], q_sess.run(None, feed)))
        for t in tensors:
            r = ref[t].astype(np.float64)
            signal[t] += float(np.sum(r * r))
            noise[t] += float(np.sum((got[t].astype(np.float64) - r) ** 2))
            count[t] += r.size
    rows = []
    for n, t in zip(nodes, tensors):
        s, e = signal[t], noise[t]
        sqnr = math.inf if e == 0 else (10.0 * math.log10(s / e) if s > 0 else -math.inf)
        rows.append(LayerError(node=n.name, op=n.op_type, tensor=t, sqnr_db=sqnr,
                               rel_rmse=math.sqrt(e / s) if s > 0 else math.inf))
    return sorted(rows, key=lambda r: r.sqnr_db)


def format_rows(rows: Sequence[LayerError], top: int = 10) -> str:
    lines = [f"{'SQNR dB':>8}  {'rel RMSE':>9}  {'op':<7} node"]
    for r in rows[:top]:
        lines.append(f"{r.sqnr_db:8.2f}  {r.rel_rmse:9.2e}  {r.op:<7} {r.node}")
    return "\n".join(lines)


def write_report(path: os.PathLike, rows: Sequence[LayerError], summary: dict) -> Path:
    """JSON: the summary (output PSNR, settings) and every layer, worst first."""
    payload = {"summary": summary, "layers": [asdict(r) for r in rows]}
    path = Path(path)
    with atomic_path(path, suffix=".json") as tmp:
        Path(tmp).write_text(json.dumps(payload, indent=2, allow_nan=True) + "\n")
    return path
