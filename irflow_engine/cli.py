"""The `irflow` command line: `irflow restore` for images and folders (videos and raw pipes:
`video.cli`); train, eval, demo, export (`cli_export.py`) and restore-batch (`batch.cli`)."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

from ._version import __version__
from .config import PRECISION_CHOICES, SOLVERS
from .video.cli import VIDEO_SUFFIXES, add_video_arguments, cmd_restore_video, is_video_request

log = logging.getLogger("irflow")


class CliError(Exception):
    """A problem with the user's request; printed as `irflow: error: …`, exit status 1."""


def add_engine_options(p: argparse.ArgumentParser, device: bool = True) -> None:
    """The options that choose a model and how to run it (shared by every subcommand)."""
    from .checkpoint import bundled_models

    p.add_argument("--model", required=True, metavar="NAME_OR_PATH",
                   help="checkpoint file (.safetensors, or a reference .pth state dict), bundled model name "
                        f"({', '.join(bundled_models())}), or architecture preset (irflow-unet64, irflow-unet32, "
                        "irflow-unet32-d3: random weights)")
    p.add_argument("--steps", type=int, default=None,
                   help="network steps K (default: the checkpoint's, else 3)")
    p.add_argument("--solver", choices=SOLVERS, default=None,
                   help="sampler (default: the checkpoint's, else euler); 'heun' is the reference's Heun-2")
    p.add_argument("--backend", default="auto",
                   help="auto | eager | compile | triton (CUDA) | onnxruntime | tensorrt (CUDA, TensorRT). auto "
                        "(default) picks the fastest measured for the device and precision: triton on CUDA in "
                        "fp16/bf16 (NVIDIA, compute capability 8.0+), onnxruntime on the CPU in fp32 when "
                        "installed (its exported graph is cached in $IRFLOW_CACHE_DIR or ~/.cache/irflow_engine), "
                        "else eager (the reference)")
    p.add_argument("--precision", choices=PRECISION_CHOICES, default="auto",
                   help="auto (default): fp16 on CUDA (with --backend auto, the fused triton backend), fp32 on "
                        "the CPU")
    if device:
        p.add_argument("--device", default="auto", help="cpu | cuda | cuda:N | auto (default: auto)")
    p.add_argument("--max-batch", type=int, default=4, help="frames per backend call (default: 4)")
    p.add_argument("--memory-limit", type=_gigabytes, default=None, metavar="GB",
                   help="on the CPU, memory one call may use: fewer frames per call, then tiles, keep within it "
                        "(default: 60%% of the memory available; 0: no limit)")


def _gigabytes(text: str) -> int:
    """--memory-limit's value (GB, decimal) in bytes."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of GB, got {text!r}") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be >= 0 (0: no limit), got {text}")
    return int(value * 1e9)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="irflow",
        description="Restore images with IR-Flow (rectified-flow deraining/denoising) models.")
    parser.add_argument("--version", action="version", version=f"irflow_engine {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    r = sub.add_parser(
        "restore", help="restore an image, a folder of images, a video, or raw frames from stdin",
        description="Restore one image (PNG/JPEG/TIFF/BMP/WebP/GIF/AVIF; every frame of an animated PNG, WebP, GIF or AVIF "
                    "written as one of those), every image in a folder, a video file "
                    "(audio/subtitles copied, or converted where the output's container cannot hold them; "
                    "frame timing, colour tags and bit depth kept), or raw frames "
                    "piped through stdin/stdout ('-'). The output's suffix decides its format: an animated image "
                    "written as a video (.mp4, .webm, ...) becomes one, and a video written as .gif/.png/.webp/"
                    ".avif an animated image. A folder's results keep their file names in the output "
                    "folder. Outputs are written to a temporary file and renamed, so a failure never leaves a "
                    "partial file.",
        epilog="examples: irflow restore rainy.png -o clean.png --model irflow-unet32-d3 --steps 3; "
               "irflow restore in.mp4 -o out.mp4 --model irflow-denoise-s --steps 1; "
               "irflow restore clip.mp4 -o clip.gif --model irflow-denoise-s; "
               "ffmpeg -i in.mp4 -f rawvideo -pix_fmt yuv420p - | irflow restore - -o - --raw-size 1280x720 "
               "--pix-fmt yuv420p --model irflow-denoise-s | ffmpeg -f rawvideo -pix_fmt yuv420p -s 1280x720 -i - out.mp4")
    r.add_argument("input", help="an image file, a folder of images, a video file, or '-' for raw frames on stdin")
    r.add_argument("-o", "--output", required=True,
                   help="output image file or folder, video file, or '-' (stdout, raw input only)")
    add_engine_options(r)
    r.add_argument("--threads", type=int, default=None, metavar="N",
                   help="CPU threads (default: torch's, lowered to a container's CPU quota; OMP_NUM_THREADS "
                        "also sets it)")
    r.add_argument("--overwrite", action="store_true", help="replace outputs that already exist")
    add_video_arguments(r)
    r.set_defaults(func=cmd_restore)

    from .evaluate import add_eval_arguments, cmd_eval
    from .train import add_train_arguments, cmd_train

    t = sub.add_parser(
        "train", help="train an IR-Flow model",
        description="Train with the paper's objective (cumulative-velocity loss at uniform t, multilevel "
                    "degradations, a back-propagated multi-step consistency term, EMA). Options come from "
                    "--config (JSON) and the flags, which override it.",
        epilog="example: irflow train --config configs/denoise-s.json --steps 200 --out-dir runs/try")
    add_train_arguments(t)
    t.set_defaults(func=cmd_train)

    e = sub.add_parser(
        "eval", help="PSNR/SSIM of a model on paired or synthetically degraded images",
        description="Score a model (and the degraded input, optionally non-local means) with PSNR and SSIM "
                    "on RGB and on the BT.601 Y channel, for a list of step counts.",
        epilog="example: irflow eval --model irflow-denoise-s --gt skimage:heldout --degradation noise "
               "--level 25 --steps 1,2,3,4 --baseline nlm")
    add_eval_arguments(e)
    e.set_defaults(func=cmd_eval)

    from .demo import add_demo_arguments, cmd_demo

    d = sub.add_parser(
        "demo", help="denoise a held-out photograph and report PSNR",
        description="Add Gaussian noise (fixed seed) to a photograph held out of training, restore it on the "
                    "CPU, write noisy.png, restored.png and side_by_side.png, and print PSNR before/after.")
    add_demo_arguments(d)
    d.set_defaults(func=cmd_demo)

    from .batch.cli import add_restore_batch_parser
    add_restore_batch_parser(sub)

    from .cli_export import add_export_parser

    add_export_parser(sub)
    return parser


def _plan_outputs(src: Path, dst: Path) -> List[Tuple[Path, Path]]:
    from .images import IMAGE_SUFFIXES, is_image_path, list_images

    kinds = ", ".join(IMAGE_SUFFIXES)

    if not src.exists():
        raise CliError(f"input {src} does not exist")
    if src.is_dir():
        if dst.exists() and not dst.is_dir():
            raise CliError(f"input {src} is a folder, so the output must be a folder; {dst} is a file")
        if dst.resolve() == src.resolve():
            raise CliError("the output folder is the input folder: choose another so inputs are never touched")
        pairs = [(p, dst / p.name) for p in list_images(src)]
        videos = sorted(p.name for p in src.iterdir() if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES)
        if videos:
            more = f" and {len(videos) - 3} more" if len(videos) > 3 else ""
            log.warning("the folder's videos (%s%s) are not restored with its images: give each video to irflow "
                        "restore, or the folder to irflow restore-batch, which restores both",
                        ", ".join(videos[:3]), more)
        if not pairs:
            raise CliError(f"no images ({kinds}) in folder {src}")
        return pairs
    if dst.is_dir():
        dst = dst / src.name
    if not is_image_path(dst):
        if dst.suffix.lower() in VIDEO_SUFFIXES:
            raise CliError(f"{src.name} is a still image, so its output is one too ({kinds}); only an animated "
                           f"image (GIF, APNG, WebP, AVIF) becomes a video")
        raise CliError(f"output {dst} has no image suffix ({kinds})")
    if dst.resolve() == src.resolve():
        raise CliError("the output is the input: choose another path so the input is never touched")
    return [(src, dst)]


def build_engine(args):
    """The Engine the engine options ask for; says on stderr when it is ready."""
    from .engine import Engine

    t0 = time.perf_counter()
    engine = Engine.from_checkpoint(args.model, backend=args.backend, device=args.device,
                                    precision=args.precision, steps=args.steps, solver=args.solver,
                                    max_batch=args.max_batch, memory_budget=args.memory_limit,
                                    threads=args.threads)
    print(f"irflow: {engine!r} ready in {time.perf_counter() - t0:.1f}s", file=sys.stderr)
    return engine


def cmd_restore(args) -> int:
    from tqdm import tqdm

    from .frames import InputError
    from .images import ImageFileError
    from .tiling import check_tile_options

    check_tile_options(args.tile, args.tile_overlap)   # every check before the model loads
    if is_video_request(args):
        return cmd_restore_video(args, build_engine)
    pairs = _plan_outputs(Path(args.input), Path(args.output))
    existing = [d for _, d in pairs if d.exists()]
    if existing and not args.overwrite:
        more = f" (and {len(existing) - 1} more)" if len(existing) > 1 else ""
        raise CliError(f"output {existing[0]} exists{more}; pass --overwrite to replace")
    if len(pairs) == 1:   # read first: an unreadable image fails without the engine's start-up
        src, dst = pairs[0]
        source = _read_image_file(src, dst)
        engine = build_engine(args)
        t1 = time.perf_counter()
        size = _restore_image_file(engine, source, dst, args, progress=_PartsBar())
        print(f"irflow: wrote {dst} ({size[1]}x{size[0]}, {time.perf_counter() - t1:.2f}s)", file=sys.stderr)
        return 0

    engine = build_engine(args)
    t1 = time.perf_counter()
    # A folder: an unreadable or unusable image is reported and skipped, the others are restored.
    bar = tqdm(pairs, desc="restore", unit="img", disable=None, file=sys.stderr)
    failed = []
    for src, dst in bar:
        try:
            _restore_image_file(engine, _read_image_file(src, dst), dst, args)
        except (ImageFileError, InputError) as e:
            failed.append(src)
            bar.write(f"irflow: skipped {src.name}: {e}", file=sys.stderr)
    done = f"{len(pairs) - len(failed)} of {len(pairs)}" if failed else str(len(pairs))
    print(f"irflow: restored {done} images into {args.output} in "
          f"{time.perf_counter() - t1:.1f}s", file=sys.stderr)
    if failed:
        names = ", ".join(p.name for p in failed[:5]) + (f" and {len(failed) - 5} more" if len(failed) > 5 else "")
        print(f"irflow: error: {len(failed)} image(s) could not be restored: {names} (reasons above)",
              file=sys.stderr)
        return 1
    return 0


def _read_image_file(src: Path, dst: Path):
    """`src` decoded for `_restore_image_file`: every frame of an animation (APNG, animated WebP, GIF,
    AVIF) written to .png/.webp/.gif/.avif, else one image (a still format gets an animation's first
    frame; `load_image` warns)."""
    from .animation import ANIMATION_SUFFIXES, is_animation, read_animation
    from .images import load_image

    if dst.suffix.lower() in ANIMATION_SUFFIXES and is_animation(src):
        return read_animation(src)
    return load_image(src)


def _restore_image_file(engine, source, dst: Path, args, progress=None) -> Tuple[int, int]:
    """Restore what `_read_image_file` read into `dst` (atomically), keeping alpha, colour profile and
    an animation's timing; returns (H, W)."""
    from .animation import Animation
    from .images import write_image

    if isinstance(source, Animation):
        return _restore_animation_file(engine, source, dst, args, frame_bar=progress is not None)
    restored = engine.restore(source.pixels, tile=args.tile, tile_overlap=args.tile_overlap, progress=progress)
    write_image(dst, restored, source.alpha_to_write, **source.metadata)   # 16-bit in, 16-bit out
    return source.rgb.shape[:2]


def _restore_animation_file(engine, animation, dst: Path, args, frame_bar: bool) -> Tuple[int, int]:
    """Restore every frame of an animated image into `dst` (atomically), with its timing; returns (H, W)."""
    from tqdm import tqdm

    from .animation import restore_animation, write_animation

    with tqdm(total=len(animation.frames), desc="frames", unit="frame", file=sys.stderr,
              disable=None if frame_bar else True) as bar:
        restored = restore_animation(engine, animation, tile=args.tile, tile_overlap=args.tile_overlap,
                                     progress=bar.update)
    write_animation(dst, restored)
    return animation.frames[0].shape[:2]


class _PartsBar:
    """`Engine.restore`'s progress callback: a bar on stderr (when it is a terminal) once one image
    takes more than one backend call (tiles of a large photograph on the CPU)."""

    def __init__(self):
        self.bar, self.done = None, 0

    def __call__(self, done: int, total: int) -> None:
        from tqdm import tqdm

        if total <= 1:
            return
        if self.bar is None or self.bar.total != total:   # a first call, or a retry in tiles
            if self.bar is not None:
                self.bar.close()
            self.bar, self.done = tqdm(total=total, desc="tiles", unit="tile", file=sys.stderr, disable=None), 0
        self.bar.update(done - self.done)
        self.done = done
        if done == total:
            self.bar.close()
            self.bar = None


def main(argv: Optional[Sequence[str]] = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="irflow: %(levelname)s: %(message)s")
    parser = build_parser()
    args = parser.parse_args(argv)
    from .backends.base import BackendUnavailable
    from .checkpoint import CheckpointError
    from .frames import InputError
    from .images import ImageFileError

    try:
        return args.func(args)
    except (CliError, CheckpointError, InputError, ImageFileError, BackendUnavailable, ValueError) as e:
        print(f"irflow: error: {e}", file=sys.stderr)
        return 1
    except OSError as e:   # the file system's answer (unwritable folder, full disk): one line, no traceback
        print(f"irflow: error: {e.strerror if e.filename is None and e.strerror else e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("irflow: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
