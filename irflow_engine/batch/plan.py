"""What a batch run does: its options (`BatchJob`) and its work items (`plan_work`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

from ..animation import is_animation
from ..images import is_image_path

from ..video.cli import VIDEO_SUFFIXES


def is_video_path(path) -> bool:
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


@dataclass(frozen=True)
class BatchJob:
    """Everything a batch run depends on; passed down to every worker.

    Engine options (`model` … `max_batch`) are those of `Engine.from_checkpoint`. `workers`
    None means one per GPU when `gpus_per_worker` > 0, else one per two CPUs. `fail_once` is a
    testing aid: the path of a marker file; the first task that removes it fails on purpose,
    which exercises Ray's retries.
    """

    out_dir: str
    model: str
    steps: Optional[int] = None
    solver: Optional[str] = None
    backend: str = "eager"
    precision: str = "fp32"
    max_batch: int = 4
    memory_budget: Optional[int] = None       # bytes per worker's call on the CPU; None: its share of the node's
    ray_address: Optional[str] = None
    workers: Optional[int] = None
    gpus_per_worker: float = 0.0
    batch_size: int = 4
    max_retries: int = 2
    overwrite: bool = False
    manifest: Optional[str] = None            # default: OUT_DIR/manifest.json
    video_options: dict = field(default_factory=dict)   # keyword options of Engine.restore_video
    segment_seconds: Optional[float] = None   # split videos longer than 1.5× this at keyframes
    fail_once: Optional[str] = None

    def __post_init__(self):
        if self.workers is not None and self.workers < 1:
            raise ValueError(f"workers must be >= 1, got {self.workers}")
        if self.gpus_per_worker < 0:
            raise ValueError(f"gpus_per_worker must be >= 0, got {self.gpus_per_worker}")
        if self.batch_size < 1 or self.max_retries < 0:
            raise ValueError("batch_size must be >= 1 and max_retries >= 0")
        if self.segment_seconds is not None and self.segment_seconds <= 0:
            raise ValueError(f"segment_seconds must be > 0, got {self.segment_seconds}")

    @property
    def manifest_path(self) -> Path:
        return Path(self.manifest) if self.manifest else Path(self.out_dir) / "manifest.json"

    @property
    def device(self) -> str:
        return "cuda" if self.gpus_per_worker > 0 else "cpu"


@dataclass(frozen=True)
class WorkItem:
    src: str
    dst: str
    kind: str  # "image" | "video" | "animation" (an APNG, animated WebP or GIF: every frame restored)


def _expand(inputs: Sequence[str]) -> List[Path]:
    files: List[Path] = []
    for name in inputs:
        path = Path(name)
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.is_file() and (is_image_path(p) or is_video_path(p)))
            if not found:
                raise ValueError(f"no images or videos in folder {path}")
            files += found
        elif path.is_file():
            if not (is_image_path(path) or is_video_path(path)):
                raise ValueError(f"{path}: not an image or video file (by its suffix)")
            files.append(path)
        else:
            raise ValueError(f"input {path} does not exist")
    return files


def plan_work(inputs: Sequence[str], out_dir, overwrite: bool = False) -> Tuple[List[WorkItem], List[WorkItem]]:
    """(to do, already done): each input file maps to OUT_DIR/<its file name>; absolute paths.

    Folders contribute their images and videos (not recursively); an animated image is an
    "animation", restored whole like a short video. Two inputs with the same file
    name, or an output that would overwrite an input, are errors. Outputs that exist are "done"
    unless `overwrite`.
    """
    out = Path(out_dir).absolute()
    files = [f.absolute() for f in _expand(inputs)]
    if not files:
        raise ValueError("no inputs given")
    by_name = {}
    for f in files:
        if f.name in by_name and by_name[f.name].resolve() != f.resolve():
            raise ValueError(f"two inputs share the file name {f.name!r} ({by_name[f.name]} and {f}); "
                             f"their outputs would collide in {out}")
        by_name[f.name] = f
    todo, done = [], []
    for name, src in sorted(by_name.items()):
        dst = out / name
        if dst.resolve() == src.resolve():
            raise ValueError(f"output {dst} is the input itself: choose another output folder")
        kind = ("animation" if is_animation(src) else "image") if is_image_path(src) else "video"
        item = WorkItem(str(src), str(dst), kind)
        (done if dst.exists() and not overwrite else todo).append(item)
    return todo, done
