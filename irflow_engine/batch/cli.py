"""`irflow restore-batch`: the command-line face of `restore_batch`."""

from __future__ import annotations

import argparse
import sys

from .plan import BatchJob


def add_restore_batch_parser(sub) -> None:
    from ..cli import add_engine_options

    b = sub.add_parser(
        "restore-batch", help="restore folders of images and videos on Ray (a local cluster by default)",
        description="Restore many images and videos with a pool of engines on Ray. Each output keeps its "
                    "input's file name in OUT_DIR. Outputs are written under a temporary name and renamed "
                    "on success, so a rerun skips finished files (--overwrite redoes them). A manifest "
                    "(JSON: per input status, frames, seconds, error) is rewritten as work completes.",
        epilog="example: irflow restore-batch photos/ clips/ -o restored/ --model irflow-denoise-s --workers 2")
    b.add_argument("inputs", nargs="+", metavar="INPUT", help="image or video files, or folders of them")
    b.add_argument("-o", "--output", required=True, metavar="OUT_DIR", help="output folder")
    add_engine_options(b, device=False)
    b.add_argument("--ray-address", default=None,
                   help="Ray cluster to join ('auto' or HOST:PORT); default: start a local one sized to this machine")
    b.add_argument("--workers", type=int, default=None,
                   help="engine actors (default: one per GPU with --gpus-per-worker, else one per 2 CPUs)")
    b.add_argument("--gpus-per-worker", type=float, default=0.0,
                   help="GPUs per engine actor; 0 runs on the CPU (default: 0)")
    b.add_argument("--batch-size", type=int, default=4, help="images per actor call (default: 4)")
    b.add_argument("--max-retries", type=int, default=2, help="Ray retries of a failed task (default: 2)")
    b.add_argument("--segment-seconds", type=float, default=None,
                   help="split videos longer than 1.5x this many seconds at keyframes and restore the parts "
                        "in parallel (default: one task per video)")
    b.add_argument("--manifest", default=None, help="manifest path (default: OUT_DIR/manifest.json)")
    b.add_argument("--overwrite", action="store_true", help="redo inputs whose output exists")
    b.set_defaults(func=cmd_restore_batch)


def cmd_restore_batch(args: argparse.Namespace) -> int:
    from ..cli import CliError
    from .ray_runner import RayStartError, RayUnavailable, restore_batch

    job = BatchJob(out_dir=args.output, model=args.model, steps=args.steps, solver=args.solver,
                   backend=args.backend, precision=args.precision, max_batch=args.max_batch,
                   memory_budget=args.memory_limit,
                   ray_address=args.ray_address, workers=args.workers, gpus_per_worker=args.gpus_per_worker,
                   batch_size=args.batch_size, max_retries=args.max_retries, overwrite=args.overwrite,
                   manifest=args.manifest, segment_seconds=args.segment_seconds)
    try:
        summary = restore_batch(job, args.inputs)
    except (RayUnavailable, RayStartError) as e:
        raise CliError(str(e)) from None
    print(f"irflow: {summary}", file=sys.stderr)
    return 1 if summary.failed else 0
