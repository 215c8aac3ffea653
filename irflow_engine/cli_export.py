"""`irflow export onnx | int8 | tensorrt`: the export subcommands (see docs/export.md)."""

from __future__ import annotations

import argparse
import functools
import sys
from pathlib import Path

from .checkpoint import bundled_models
from .config import SOLVERS

EXPORT_PRECISIONS = ("fp32", "fp16")


def _fail_cleanly(handler):
    """Turn the export's own errors (missing packages, TensorRT failures) into `irflow: error: …`."""

    @functools.wraps(handler)
    def run(args) -> int:
        from .cli import CliError
        from .export.deps import MissingDependency
        from .export.engine_cache import EngineMismatch
        from .export.tensorrt import TensorRTBuildError

        try:
            return handler(args)
        except (MissingDependency, EngineMismatch, TensorRTBuildError) as e:
            raise CliError(str(e)) from None

    return run


def _check_output(path: Path, overwrite: bool, suffix: str) -> None:
    from .cli import CliError

    if path.suffix.lower() != suffix:
        raise CliError(f"output {path} should end in {suffix}")
    if path.exists() and not overwrite:
        raise CliError(f"output {path} exists; pass --overwrite to replace it")


def _model_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, metavar="NAME_OR_PATH",
                   help=f"checkpoint file, bundled model name ({', '.join(bundled_models())}) or preset "
                        "(random weights)")
    p.add_argument("--steps", type=int, default=None, help="sampler steps K (default: the checkpoint's)")
    p.add_argument("--solver", choices=SOLVERS, default=None, help="default: the checkpoint's")
    p.add_argument("--network-only", action="store_true",
                   help="export the velocity network D(x, t) (inputs x, t) instead of the whole sampler")
    p.add_argument("-o", "--output", required=True, type=Path, help="output .onnx file")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")
    p.add_argument("--opset", type=int, default=None, help="ONNX opset (default 17)")


def _opset(args) -> dict:
    return {} if args.opset is None else {"opset": args.opset}


@_fail_cleanly
def cmd_export_onnx(args) -> int:
    from .checkpoint import resolve
    from .cli import CliError
    from .export.onnx import PARITY_TOLERANCE, export_onnx, ort_session, parity_error, read_metadata
    from .flow import make_schedule

    _check_output(args.output, args.overwrite, ".onnx")
    if args.verify and args.clamp:
        raise CliError("--verify compares the unclamped output with eager; export without --clamp to verify")
    checkpoint = resolve(args.model)
    path = export_onnx(checkpoint, args.output, args.steps, args.solver, network_only=args.network_only,
                       precision=args.precision, clamp=args.clamp, **_opset(args))
    meta = read_metadata(path)
    print(f"irflow: wrote {path} ({meta['graph']}, K={meta['steps']} {meta['solver']}, {meta['precision']}, "
          f"{path.stat().st_size / 2**20:.1f} MiB)", file=sys.stderr)
    if args.verify:
        schedule = None if args.network_only else make_schedule(int(meta["steps"]), meta["solver"])
        session, model = ort_session(path), checkpoint.build_model()
        tol = PARITY_TOLERANCE[args.precision]
        for i, shape in enumerate(((1, 3, 37, 53), (2, 3, 19, 30))):
            err = parity_error(session, model, schedule, shape, seed=i)
            print(f"irflow: ONNX Runtime vs eager at {'x'.join(map(str, shape))}: relative error {err:.2e} "
                  f"(tolerance {tol:.0e})", file=sys.stderr)
            if err > tol:
                raise CliError(f"the exported graph differs from the eager backend by {err:.2e} > {tol:.0e}")
    return 0


def _degradation(text: str):
    """'auto', 'none', or NAME:LO,HI (noise:0,50; rain:0.2,1)."""
    from .degrade import DEGRADATIONS

    if text in ("auto", "none"):
        return "auto" if text == "auto" else None
    name, _, levels = text.partition(":")
    if name not in DEGRADATIONS:
        raise argparse.ArgumentTypeError(f"unknown degradation {name!r}; choose auto, none or one of "
                                         f"{', '.join(sorted(DEGRADATIONS))} as NAME:LO,HI")
    try:
        lo, hi = (float(v) for v in levels.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"degradation {text!r}: write auto, none, or NAME:LO,HI "
                                         "(noise:0,50 or rain:0.2,1)") from None
    return {"name": name, "level_range": [lo, hi]}


@_fail_cleanly
def cmd_export_int8(args) -> int:
    from .export.calibrate import QuantOptions, quantize_int8
    from .export.quant_report import format_rows

    _check_output(args.output, args.overwrite, ".onnx")
    options = QuantOptions(method=args.method, percentile=args.percentile, entropy_bins=args.entropy_bins,
                           keep_float=tuple(k for k in args.keep_float.split(",") if k and k != "none"))
    result = quantize_int8(args.model, args.output, args.calib, args.steps, args.solver,
                           network_only=args.network_only, options=options, count=args.calib_count,
                           crop=args.calib_size or None, degradation=args.degradation,
                           table_path=args.calib_table, recalibrate=args.recalibrate,
                           report_frames=args.report_frames, seed=args.seed, **_opset(args))
    verb = "reused" if result.table_reused else "wrote"
    print(f"irflow: {verb} calibration table {result.table_path}", file=sys.stderr)
    print(f"irflow: wrote {result.path} (Q/DQ INT8; {len(result.excluded_nodes)} nodes kept in float)",
          file=sys.stderr)
    if result.report_path is not None:
        print(f"irflow: output PSNR vs fp32 on the report frames: {result.output_psnr_db:.2f} dB; "
              f"worst layers (full list in {result.report_path}):", file=sys.stderr)
        print(format_rows(result.layers), file=sys.stderr)
    return 0


@_fail_cleanly
def cmd_export_tensorrt(args) -> int:
    from .export.engine_cache import DEFAULT_CACHE_DIR, parse_shape
    from .export.tensorrt import BuildOptions, build_engine

    if args.output is not None:
        _check_output(args.output, args.overwrite or args.rebuild, ".engine")
    options = BuildOptions(min_shape=parse_shape(args.min), opt_shape=parse_shape(args.opt),
                           max_shape=parse_shape(args.max), workspace_mib=args.workspace_mib,
                           optimization_level=args.opt_level, timing_cache=args.timing_cache)
    path, record = build_engine(args.onnx, args.output, options, cache_dir=args.cache_dir or DEFAULT_CACHE_DIR,
                                rebuild=args.rebuild)
    env = record.environment
    print(f"irflow: engine {path} (TensorRT {env.tensorrt_version}, {env.gpu_name}, sm {env.compute_capability}, "
          f"{record.settings.precision}); sidecar {path}.json", file=sys.stderr)
    return 0


def add_export_parser(sub) -> None:
    """Add `export` with its `onnx`, `int8` and `tensorrt` subcommands to the `irflow` subparsers."""
    ex = sub.add_parser("export", help="export to ONNX (fp32/fp16/INT8) or build a TensorRT engine",
                        description="Export a model for deployment; see docs/export.md.")
    exs = ex.add_subparsers(dest="export_command", metavar="FORMAT")
    exs.required = True

    o = exs.add_parser("onnx", help="ONNX graph of the whole K-step sampler (or of the network alone)",
                       description="One graph: degraded N×3×H×W float in [0, 1] -> restored, any N/H/W; "
                                   "schedule and time embeddings folded in. --network-only exports D(x, t).",
                       epilog="example: irflow export onnx --model irflow-denoise-s --steps 3 -o denoise.onnx --verify")
    _model_options(o)
    o.add_argument("--precision", choices=EXPORT_PRECISIONS, default="fp32",
                   help="fp16 keeps LayerNorm statistics, attention softmaxes and the sampler state in fp32")
    o.add_argument("--clamp", action="store_true", help="clamp the sampler's output to [0, 1] in the graph")
    o.add_argument("--verify", action="store_true",
                   help="run the graph in ONNX Runtime (CPU) on random odd-sized inputs and compare with eager")
    o.set_defaults(func=cmd_export_onnx)

    q = exs.add_parser("int8", help="INT8 Q/DQ ONNX, calibrated on images (for ONNX Runtime or TensorRT)",
                       description="Calibrate activation ranges on degraded frames, save them as a table "
                                   "(reused on rebuild), insert Q/DQ pairs (INT8 per-channel weights, symmetric "
                                   "activations), and report the per-layer error.",
                       epilog="example: irflow export int8 --model irflow-denoise-s --steps 3 --calib photos/ "
                              "-o denoise-int8.onnx")
    _model_options(q)
    q.add_argument("--calib", required=False, default=None,
                   help="folder of images, one image, or a video file to calibrate on; optional when --calib-table fits")
    q.add_argument("--calib-count", type=int, default=16, help="frames, spread evenly (default 16)")
    q.add_argument("--calib-size", type=int, default=256,
                   help="centre crop side in pixels, 0 for whole frames (default 256)")
    q.add_argument("--degradation", type=_degradation, default="auto",
                   help="auto (the checkpoint's task), none (frames already degraded), or NAME:LO,HI")
    q.add_argument("--method", choices=("minmax", "entropy", "percentile"), default="minmax")
    q.add_argument("--percentile", type=float, default=99.999, help="for --method percentile")
    q.add_argument("--entropy-bins", type=int, default=512,
                   help="histogram bins for --method entropy (> 128; its search time grows with the square)")
    q.add_argument("--keep-float", default="stem,head,tail,attention",
                   help="comma list of groups (stem, head, tail, attention) and node-name globs kept in "
                        "float, or none (default: stem,head,tail,attention)")
    q.add_argument("--calib-table", type=Path, default=None, help="default: OUTPUT with suffix .calib.json")
    q.add_argument("--recalibrate", action="store_true", help="ignore an existing calibration table")
    q.add_argument("--report-frames", type=int, default=2, help="frames for the per-layer report (0: none)")
    q.add_argument("--seed", type=int, default=0, help="seed of the synthetic degradation")
    q.set_defaults(func=cmd_export_int8)

    t = exs.add_parser("tensorrt", help="build a TensorRT engine from an exported ONNX (needs TensorRT and a GPU)",
                       description="Strongly typed build (precision from the graph: fp32, fp16 or INT8 Q/DQ), one "
                                   "optimisation profile, timing cache; writes ENGINE and ENGINE.json (sidecar).",
                       epilog="example: irflow export tensorrt denoise-fp16.onnx -o denoise.engine "
                              "--min 1x3x64x64 --opt 1x3x720x1280 --max 1x3x1088x1920")
    t.add_argument("onnx", type=Path, help="ONNX file from `irflow export onnx` or `irflow export int8`")
    t.add_argument("-o", "--output", type=Path, default=None,
                   help="engine file (default: in --cache-dir, named by the cache key)")
    t.add_argument("--overwrite", action="store_true", help="replace an existing output")
    t.add_argument("--min", default="1x3x64x64", help="smallest input NxCxHxW (or HxW)")
    t.add_argument("--opt", default="1x3x720x1280", help="input shape the kernels are tuned for")
    t.add_argument("--max", default="1x3x1088x1920", help="largest input")
    t.add_argument("--workspace-mib", type=int, default=4096, help="builder workspace limit (MiB)")
    t.add_argument("--opt-level", type=int, default=3, help="builder optimisation level 0-5 (default 3)")
    t.add_argument("--timing-cache", type=Path, default=None, help="timing cache file, read and updated")
    t.add_argument("--cache-dir", type=Path, default=None,
                   help="engine cache folder (default $IRFLOW_CACHE_DIR/tensorrt, else ~/.cache/irflow_engine/tensorrt)")
    t.add_argument("--rebuild", action="store_true", help="build even when a matching engine exists")
    t.set_defaults(func=cmd_export_tensorrt)
