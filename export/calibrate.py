"""INT8 by explicit quantisation: calibrate an fp32 ONNX graph, write a Q/DQ model.

Steps (`quantize_int8`): export the fp32 graph (sampler or network), run ONNX Runtime's
`quant_pre_process` on it, collect activation ranges on calibration feeds (`calibrate_ranges`:
minmax, entropy or percentile), save them as a calibration table (JSON, keyed by the graph's
sha256 and the method, so a rebuild reuses it), and insert QuantizeLinear/DequantizeLinear pairs
with ONNX Runtime's QDQ quantiser: INT8 weights per output channel, INT8 activations symmetric
(zero point 0, as TensorRT requires). Only Conv and MatMul are quantised; nodes matched by
`keep_float` stay in float (the groups: `stem` = first conv, `head` = velocity head, `tail` =
the up path's last conv, whose INT8 error reaches the output almost unfiltered (docs/export.md),
`attention` = the attention's MatMuls: the q and k projections and the products with the softmax
outputs; normalisations and softmax are never quantised). Then the per-layer report
(`quant_report.py`).
"""

from __future__ import annotations

import fnmatch
import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from ..atomic import atomic_path
from ..checkpoint import LoadedCheckpoint, resolve
from ..flow import make_schedule
from . import calib_frames, quant_report
from .deps import require
from .onnx import DEFAULT_OPSET, export_graph, file_sha256, graph_metadata, io_names, ort_session, set_metadata

METHODS = ("minmax", "entropy", "percentile")
QUANTIZED_OPS = ("Conv", "MatMul")
# Node-name globs of the TorchScript exporter's scoped names ("/ups.2.3_1/Conv": `_k` marks the
# k-th evaluation). {last} is the shallowest up level, depth − 1.
KEEP_FLOAT_GROUPS = {
    "stem": "*init_conv*/Conv*",
    "head": "*final_conv*/Conv*",
    "tail": "*ups.{last}.3*/Conv*",
    "attention": "*/fn/fn*/MatMul*",
}
DEFAULT_KEEP_FLOAT = ("stem", "head", "tail", "attention")
TABLE_FORMAT = 1


@dataclass(frozen=True)
class QuantOptions:
    """Calibration method (percentile: which one; entropy: histogram bins, > 128), what stays float
    (group names or node globs)."""

    method: str = "minmax"
    percentile: float = 99.999
    entropy_bins: int = 512
    keep_float: Tuple[str, ...] = DEFAULT_KEEP_FLOAT
    op_types: Tuple[str, ...] = QUANTIZED_OPS

    def __post_init__(self):
        if self.method not in METHODS:
            raise ValueError(f"calibration method must be one of {METHODS}, got {self.method!r}")
        if not 0.0 < self.percentile <= 100.0:
            raise ValueError(f"percentile must be in (0, 100], got {self.percentile}")
        if self.entropy_bins <= 128:
            raise ValueError(f"entropy calibration needs more than 128 histogram bins, got {self.entropy_bins}")
        keep_float_globs(self.keep_float, depth=1)  # validates the names


@dataclass
class CalibrationTable:
    """Activation ranges (tensor -> (min, max)) of one graph for one calibration method."""

    onnx_sha256: str
    method: str
    percentile: float
    ranges: Dict[str, Tuple[float, float]]
    entropy_bins: int = 512
    frames: int = 0
    source: str = ""
    format: int = TABLE_FORMAT

    def save(self, path: os.PathLike) -> None:
        with atomic_path(path, suffix=".json") as tmp:
            Path(tmp).write_text(json.dumps(asdict(self), indent=1) + "\n")

    @classmethod
    def load(cls, path: os.PathLike) -> "CalibrationTable":
        try:
            d = json.loads(Path(path).read_text())
            d["ranges"] = {k: (float(v[0]), float(v[1])) for k, v in d["ranges"].items()}
            return cls(**d)
        except (ValueError, KeyError, TypeError, IndexError) as e:
            raise ValueError(f"{path}: not a calibration table ({e}); delete it or pass --recalibrate") from None

    def mismatch(self, onnx_sha256: str, options: QuantOptions) -> Optional[str]:
        """Why this table cannot be reused for the graph and options, or None."""
        if self.format != TABLE_FORMAT:
            return f"table format {self.format}, expected {TABLE_FORMAT}"
        if self.onnx_sha256 != onnx_sha256:
            return "it was made for another graph (the fp32 ONNX checksum differs)"
        if self.method != options.method or (self.method == "percentile" and self.percentile != options.percentile) \
                or (self.method == "entropy" and self.entropy_bins != options.entropy_bins):
            return (f"it was made with method {self.method} (percentile {self.percentile}, "
                    f"entropy bins {self.entropy_bins})")
        return None


@dataclass
class Int8Result:
    path: Path
    table_path: Path
    table_reused: bool
    excluded_nodes: List[str]
    report_path: Optional[Path] = None
    layers: List[quant_report.LayerError] = field(default_factory=list)
    output_psnr_db: Optional[float] = None


def keep_float_globs(names: Sequence[str], depth: int) -> List[str]:
    """Group names (stem, head, tail, attention) and node-name globs -> globs, for a network of `depth`."""
    globs = []
    for name in names:
        if name in KEEP_FLOAT_GROUPS:
            globs.append(KEEP_FLOAT_GROUPS[name].format(last=depth - 1))
        elif any(c in name for c in "*?[/"):
            globs.append(name)
        else:
            raise ValueError(f"keep-float entry {name!r} is neither a group ({', '.join(KEEP_FLOAT_GROUPS)}) "
                             "nor a node-name glob (use * or /)")
    return globs


def excluded_nodes(proto, options: QuantOptions, depth: int) -> List[str]:
    """Names of the nodes of a quantised op type that `options.keep_float` keeps in float."""
    globs = keep_float_globs(options.keep_float, depth)
    return [n.name for n in proto.graph.node
            if n.op_type in options.op_types and any(fnmatch.fnmatchcase(n.name, g) for g in globs)]


def _method(name: str):
    from onnxruntime.quantization.calibrate import CalibrationMethod

    return {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
            "percentile": CalibrationMethod.Percentile}[name]


class _FeedReader:
    """ONNX Runtime's CalibrationDataReader protocol over a list of feeds."""

    def __init__(self, feeds: Sequence[Dict[str, np.ndarray]]):
        self.feeds = list(feeds)
        self._next = 0

    def get_next(self):
        if self._next >= len(self.feeds):
            return None
        self._next += 1
        return self.feeds[self._next - 1]

    def __len__(self) -> int:
        return len(self.feeds)


def calibrate_ranges(model_path: os.PathLike, feeds: Sequence[Dict[str, np.ndarray]],
                     options: QuantOptions) -> Dict[str, Tuple[float, float]]:
    """Activation ranges of the inputs/outputs of `options.op_types` nodes over `feeds`."""
    require("onnxruntime", "INT8 calibration")
    from onnxruntime.quantization.calibrate import create_calibrator

    # Histogram methods: symmetric histograms (the quantiser symmetrises the ranges anyway). For
    # entropy, ONNX Runtime's default of 128 bins for a 128-level search leaves nothing to search
    # (it returns min/max); its search is Python, quadratic in the bins, hence `entropy_bins`.
    extra = {"minmax": {},
             "entropy": {"num_bins": options.entropy_bins, "num_quantized_bins": 128, "symmetric": True},
             "percentile": {"percentile": options.percentile, "symmetric": True}}[options.method]
    with tempfile.TemporaryDirectory(prefix="irflow-calib-") as tmp:
        calibrator = create_calibrator(Path(model_path), list(options.op_types),
                                       augmented_model_path=os.path.join(tmp, "augmented.onnx"),
                                       calibrate_method=_method(options.method), extra_options=extra)
        calibrator.collect_data(_FeedReader(feeds))
        data = calibrator.compute_data()
    ranges = {}
    for name in data:
        lo, hi = data[name].range_value  # arrays of one element (or more, reduced here)
        ranges[name] = (float(np.min(lo)), float(np.max(hi)))
    return ranges


def quantize_qdq(model_path: os.PathLike, ranges: Dict[str, Tuple[float, float]], options: QuantOptions,
                 exclude: Sequence[str]):
    """The Q/DQ onnx.ModelProto of the (pre-processed) float model at `model_path`."""
    require("onnxruntime", "INT8 quantisation")
    from onnxruntime.quantization import QuantType
    from onnxruntime.quantization.calibrate import TensorData, TensorsData
    from onnxruntime.quantization.qdq_quantizer import QDQQuantizer
    from onnxruntime.quantization.quant_utils import load_model_with_shape_infer

    tensors = TensorsData(_method(options.method), {
        k: TensorData(lowest=np.array(lo, np.float32), highest=np.array(hi, np.float32))
        for k, (lo, hi) in ranges.items()})
    quantizer = QDQQuantizer(
        model=load_model_with_shape_infer(Path(model_path)), per_channel=True, reduce_range=False,
        weight_qType=QuantType.QInt8, activation_qType=QuantType.QInt8, tensors_range=tensors,
        nodes_to_quantize=[], nodes_to_exclude=list(exclude), op_types_to_quantize=list(options.op_types),
        extra_options={"ActivationSymmetric": True, "WeightSymmetric": True})
    quantizer.quantize_model()
    quantizer.model.topological_sort()  # the quantiser appends its nodes; ONNX wants them in order
    return quantizer.model.model


def _feeds(checkpoint: LoadedCheckpoint, schedule, network_only: bool, batches):
    if network_only:
        return calib_frames.network_feeds(checkpoint.build_model(), schedule, batches)
    return calib_frames.sampler_feeds(batches, io_names(False)[0][0])


def _reusable_table(path: Path, onnx_sha256: str, options: QuantOptions) -> Optional[CalibrationTable]:
    """The table at `path` when it fits the graph and options; None when there is none."""
    if not path.is_file():
        return None
    table = CalibrationTable.load(path)
    reason = table.mismatch(onnx_sha256, options)
    if reason is not None:
        raise ValueError(f"calibration table {path} does not fit: {reason}; pass --recalibrate to replace it")
    return table


def _describe_source(calib) -> str:
    return os.fspath(calib) if isinstance(calib, (str, os.PathLike)) else type(calib).__name__


def _report(result: Int8Result, float_proto, qdq, feeds, options: QuantOptions, out_name: str) -> None:
    """Fill in the per-layer errors and the output PSNR, and write the report beside the model."""
    result.layers = quant_report.layer_errors(float_proto, qdq, feeds, options.op_types)
    ref, got = ort_session(float_proto), ort_session(qdq)
    result.output_psnr_db = min(quant_report.psnr(got.run([out_name], f)[0], ref.run([out_name], f)[0])
                                for f in feeds)
    result.report_path = quant_report.write_report(
        result.path.with_suffix(".int8-report.json"), result.layers,
        {"output_psnr_db_vs_fp32": result.output_psnr_db, "method": options.method,
         "keep_float": list(options.keep_float), "excluded_nodes": result.excluded_nodes,
         "report_frames": len(feeds), "table": str(result.table_path), "table_reused": result.table_reused})


def quantize_int8(model: Union[os.PathLike, str, LoadedCheckpoint], output: os.PathLike,
                  calib: Optional[calib_frames.FrameSource], steps: Optional[int] = None,
                  solver: Optional[str] = None, *, network_only: bool = False,
                  options: QuantOptions = QuantOptions(), count: int = 16, crop: Optional[int] = 256,
                  degradation: Union[str, dict, None] = "auto", table_path: Optional[os.PathLike] = None,
                  recalibrate: bool = False, report_frames: int = 2, seed: int = 0,
                  opset: int = DEFAULT_OPSET) -> Int8Result:
    """Export, calibrate (or reuse `table_path`), quantise to Q/DQ INT8, and report per layer.

    `calib`: image folder, image file(s), registered video, or iterable of uint8 H×W×3 frames
    (`count` spread evenly, centre-cropped to `crop`); None when a fitting table exists.
    `degradation` "auto" applies the checkpoint's recorded task degradation; None means the
    frames are degraded already. The table defaults to `<output stem>.calib.json`; the report
    (when `report_frames` > 0 and `calib` is given) goes to `<output stem>.int8-report.json`.
    """
    onnx = require("onnx", "INT8 export")
    require("onnxruntime", "INT8 quantisation")
    from onnxruntime.quantization.shape_inference import quant_pre_process

    checkpoint = resolve(model)
    output = Path(output)
    schedule = make_schedule(steps if steps is not None else checkpoint.meta.default_steps,
                             solver if solver is not None else checkpoint.meta.default_solver)
    if degradation == "auto":
        degradation = checkpoint.meta.degradation
        if degradation is None:
            raise ValueError(f"{checkpoint.name} records no degradation to apply to calibration frames: pass "
                             "one (e.g. {'name': 'noise', 'level_range': [0, 50]}) or None for degraded frames")
    table_path = Path(table_path) if table_path is not None else output.with_suffix(".calib.json")
    metadata = graph_metadata(checkpoint, schedule, "fp32", network_only, clamp=False)

    with tempfile.TemporaryDirectory(prefix="irflow-int8-") as tmp:
        float_path, pre_path = Path(tmp) / "float.onnx", Path(tmp) / "float.pre.onnx"
        onnx.save_model(export_graph(checkpoint.build_model(), None if network_only else schedule, "fp32",
                                     opset=opset, metadata=metadata), float_path)
        # ONNX shape inference and ORT's basic optimisations; ORT's symbolic shape inference (for
        # transformers) cannot follow the in-graph padding arithmetic and is not needed here.
        quant_pre_process(str(float_path), str(pre_path), skip_symbolic_shape=True)
        sha = file_sha256(pre_path)
        table = None if recalibrate else _reusable_table(table_path, sha, options)
        batches = None
        if calib is not None and (table is None or report_frames > 0):
            batches = calib_frames.degraded_batches(calib_frames.read_frames(calib, count), degradation, seed, crop)
        reused = table is not None
        if table is None:
            if batches is None:
                raise ValueError(f"no calibration table at {table_path} to reuse and no calibration frames given")
            ranges = calibrate_ranges(pre_path, _feeds(checkpoint, schedule, network_only, batches), options)
            table = CalibrationTable(sha, options.method, options.percentile, ranges, options.entropy_bins,
                                     frames=len(batches), source=_describe_source(calib))
            table.save(table_path)

        pre_proto = onnx.load(str(pre_path))
        exclude = excluded_nodes(pre_proto, options, checkpoint.config.depth)
        qdq = quantize_qdq(pre_path, table.ranges, options, exclude)
        set_metadata(qdq, {**metadata, "precision": "int8", "calibration": options.method,
                           "keep_float": ",".join(options.keep_float), "calibration_frames": str(table.frames)})
        onnx.checker.check_model(qdq)
        with atomic_path(output, suffix=".onnx") as out_tmp:
            onnx.save_model(qdq, out_tmp)
        result = Int8Result(output, table_path, reused, exclude)
        if batches is not None and report_frames > 0:
            _report(result, pre_proto, qdq, _feeds(checkpoint, schedule, network_only, batches[:report_frames]),
                    options, io_names(network_only)[1])
    return result
