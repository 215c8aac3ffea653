"""Run a batch on Ray: images through a Ray Data pipeline, videos as one task per file.

Images: read (Ray tasks) → restore (`map_batches` over a pool of `EngineActor`s, one engine per
actor, built once; same-sized images are restored together) → write (Ray tasks, temp file +
rename). Errors that name a bad input (unreadable image, wrong size) are recorded as "failed" in
the manifest and the run goes on; any other exception in an engine actor fails its Ray task,
which Ray retries (`max_retries` times, on a restarted actor if the actor died); read and write
tasks get Ray's default retries when their worker dies.

Videos: one Ray task per file (`restore_video_file`); with `segment_seconds`, a long file is split
at keyframes (`segments.split_at_keyframes`), its parts restored by parallel tasks, and joined by
stream copy (`segments.join_parts`). Video tasks retry like the actors' (bad-input errors are
recorded, anything else is retried).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import pickle
import secrets
import shutil
import sys
import time
from pathlib import Path
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

import numpy as np

from .manifest import Manifest
from .plan import BatchJob, WorkItem, plan_work

log = logging.getLogger(__name__)

# CPU share that Ray Data's read and write tasks ask for: small, so that a pool of actors
# holding most of the CPUs never starves them.
IO_TASK_CPUS = 0.1
INPUT_ERRORS = (ValueError, OSError)  # ImageFileError and InputError are ValueErrors


class RayUnavailable(ImportError):
    """Ray (with Ray Data) is not installed; the message says how to install it."""


class RayStartError(RuntimeError):
    """A local Ray instance could not be started; the message says what to try."""


def _require_ray():
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise RayUnavailable("restore-batch needs Ray: pip install 'irflow-engine[ray]' "
                           "(or pip install 'ray[data]')") from None
    return ray


@dataclass
class BatchSummary:
    done: int
    failed: int
    skipped: int
    seconds: float
    manifest: str

    def __str__(self) -> str:
        return (f"{self.done} restored, {self.failed} failed, {self.skipped} skipped (already done) "
                f"in {self.seconds:.1f}s; manifest {self.manifest}")


def claim_marker(path: Optional[str]) -> bool:
    """True for exactly one caller across processes: the one that removes the file at `path`."""
    if not path:
        return False
    try:
        os.remove(path)
        return True
    except FileNotFoundError:
        return False


def build_engine(job: BatchJob, threads: Optional[int] = None):
    """The worker's engine. On the CPU without a set budget, a worker of `threads` CPUs gets that
    share of the node's automatic memory budget, as the other workers run beside it."""
    from ..cpus import available_cpus
    from ..engine import Engine
    from ..memory import memory_budget

    budget = job.memory_budget
    if budget is None and job.device == "cpu":
        auto = memory_budget(None)
        share = 1.0 if threads is None else min(1.0, max(1, threads) / available_cpus())
        budget = None if auto is None else max(1, int(auto * share))
    cpu_threads = max(1, threads) if threads is not None and job.device == "cpu" else None
    return Engine.from_checkpoint(job.model, backend=job.backend, device=job.device, precision=job.precision,
                                  steps=job.steps, solver=job.solver, max_batch=job.max_batch,
                                  memory_budget=budget, threads=cpu_threads)


# -- the image pipeline: read → restore → write -------------------------------------------------

def read_row(row: Dict) -> Dict:
    from ..images import load_image

    t0 = time.perf_counter()
    # 16-bit PNG/TIFF samples get columns of their own: a tensor column holds one dtype.
    row = dict(row, image=np.zeros((0, 0, 3), np.uint8), alpha=np.zeros((0, 0), np.uint8),
               image16=np.zeros((0, 0, 3), np.uint16), alpha16=np.zeros((0, 0), np.uint16),
               meta=np.zeros(0, np.uint8), error="")
    try:
        image = load_image(row["src"])
        row["image"] = image.rgb
        if image.alpha is not None:
            row["alpha"] = image.alpha
        if image.rgb16 is not None:
            row["image16"] = image.rgb16
            if image.alpha16 is not None:
                row["alpha16"] = image.alpha16
        # Profile, EXIF, XMP, dpi, PNG text, pickled as uint8 like alpha: a bytes column may lose
        # trailing zero bytes.
        row["meta"] = np.frombuffer(pickle.dumps(image.metadata), np.uint8).copy()
    except INPUT_ERRORS as e:
        row["error"] = str(e)
    row["seconds"] = time.perf_counter() - t0
    return row


class EngineActor:
    """One engine per actor, built once; restores a batch of rows (same-sized images together)."""

    def __init__(self, job: BatchJob, threads: int):
        self.job = job
        self.engine = build_engine(job, threads)

    def __call__(self, batch: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
        if claim_marker(self.job.fail_once):
            raise RuntimeError(f"injected failure (fail_once marker {self.job.fail_once})")
        images, images16 = list(batch["image"]), list(batch["image16"])
        errors = [str(e) for e in batch["error"]]
        seconds = [float(s) for s in batch["seconds"]]
        groups: Dict[tuple, List[int]] = {}   # (shape, 16-bit) -> rows restored in one call
        for i, (img, err) in enumerate(zip(images, errors)):
            if not err:
                groups.setdefault((img.shape, images16[i].size > 0), []).append(i)
        for (_, deep), idx in groups.items():
            t0 = time.perf_counter()
            try:
                restored = self.engine.restore(np.stack([(images16 if deep else images)[i] for i in idx]))
            except INPUT_ERRORS as e:
                for i in idx:
                    errors[i] = str(e)
                continue
            share = (time.perf_counter() - t0) / len(idx)
            for k, i in enumerate(idx):
                if deep:
                    images16[i] = restored[k]
                else:
                    images[i] = restored[k]
                seconds[i] += share
        out = dict(batch)
        out["image"], out["image16"] = _object_array(images), _object_array(images16)
        out["error"] = np.array(errors, dtype=object)
        out["seconds"] = np.array(seconds)
        return out


def _object_array(arrays: Sequence[np.ndarray]) -> np.ndarray:
    out = np.empty(len(arrays), dtype=object)
    for i, a in enumerate(arrays):
        out[i] = a
    return out


def write_row(row: Dict) -> Dict:
    from ..images import write_image

    t0 = time.perf_counter()
    error = str(row["error"])
    if not error:
        try:
            deep = row["image16"].size > 0   # a 16-bit file: written 16-bit (PNG/TIFF)
            rgb, alpha = (row["image16"], row["alpha16"]) if deep else (row["image"], row["alpha"])
            meta = pickle.loads(np.asarray(row["meta"], np.uint8).tobytes())
            write_image(row["dst"], np.ascontiguousarray(rgb), alpha if alpha.size else None, **meta)
        except INPUT_ERRORS as e:
            error = str(e)
    return {"src": row["src"], "dst": row["dst"], "error": error,
            "seconds": float(row["seconds"]) + time.perf_counter() - t0}


def _pool(job: BatchJob, ray) -> tuple:
    """(workers, CPUs per worker) for this cluster."""
    resources = ray.cluster_resources()
    cpus = float(resources.get("CPU", 1.0))
    if job.gpus_per_worker > 0:
        gpus = float(resources.get("GPU", 0.0))
        if gpus < job.gpus_per_worker:
            raise ValueError(f"gpus_per_worker={job.gpus_per_worker} but the Ray cluster has {gpus:g} GPUs")
        workers = job.workers or max(1, int(gpus // job.gpus_per_worker))
        return workers, 1.0
    workers = job.workers or max(1, int(cpus // 2))
    # Leave IO_TASK_CPUS-sized room for a read and a write task next to the pool.
    per_worker = max(IO_TASK_CPUS, min(1.0 * max(1, int(cpus // workers)), (cpus - 2 * IO_TASK_CPUS) / workers))
    return workers, per_worker


def run_images(job: BatchJob, items: List[WorkItem], manifest: Manifest, ray, progress) -> None:
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False        # ours counts files; Ray Data's logs go to its log file
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    ctx.actor_task_retry_on_errors = True   # application errors in the actor are retried …
    ctx.max_errored_blocks = 0              # … and a batch that still fails fails the run
    workers, cpus = _pool(job, ray)
    ds = ray.data.from_items([{"src": i.src, "dst": i.dst} for i in items], override_num_blocks=len(items))
    ds = ds.map(read_row, num_cpus=IO_TASK_CPUS)
    gpus = {"num_gpus": job.gpus_per_worker} if job.gpus_per_worker > 0 else {}
    ds = ds.map_batches(EngineActor, fn_constructor_kwargs={"job": job, "threads": int(round(cpus))},
                        batch_size=job.batch_size, batch_format="numpy",
                        compute=ray.data.ActorPoolStrategy(size=workers),
                        num_cpus=cpus, max_restarts=job.max_retries, max_task_retries=job.max_retries, **gpus)
    ds = ds.map(write_row, num_cpus=IO_TASK_CPUS)
    for row in ds.iter_rows():
        error = row["error"] or None
        manifest.update(row["src"], status="failed" if error else "done", frames=1,
                        seconds=round(float(row["seconds"]), 4), error=error)
        progress(row["src"], error)


# -- videos: a task per file, or split → parts → join ------------------------------------------

def restore_video_file(job: BatchJob, src: str, dst: str, threads: int, part: bool = False) -> Dict:
    """Restore one video file (or one part of a split video); {"frames", "seconds"} or {"error"}."""
    if claim_marker(job.fail_once):
        raise RuntimeError(f"injected failure (fail_once marker {job.fail_once})")
    options = dict(job.video_options, overwrite=True, progress=False)
    if part:
        from .segments import PART_ENCODER_OPTIONS

        options["encoder_options"] = {**PART_ENCODER_OPTIONS, **(options.get("encoder_options") or {})}
    try:
        report = build_engine(job, threads).restore_video(src, dst, **options)
    except INPUT_ERRORS as e:
        return {"error": str(e)}
    return {"frames": report.frames, "seconds": report.seconds}


def restore_animation_file(job: BatchJob, src: str, dst: str, threads: int) -> Dict:
    """Restore every frame of one animated image (`irflow_engine.animation`); {"frames", "seconds"} or {"error"}."""
    from ..animation import read_animation, restore_animation, write_animation

    if claim_marker(job.fail_once):
        raise RuntimeError(f"injected failure (fail_once marker {job.fail_once})")
    t0 = time.perf_counter()
    try:
        engine = build_engine(job, threads)
        animation = read_animation(src)
        write_animation(dst, restore_animation(engine, animation))
    except INPUT_ERRORS as e:
        return {"error": str(e)}
    return {"frames": len(animation.frames), "seconds": time.perf_counter() - t0}


def split_video(src: str, folder: str, seconds: float) -> Dict:
    from .segments import split_at_keyframes

    try:
        return {"parts": [str(p) for p in split_at_keyframes(src, folder, seconds)]}
    except INPUT_ERRORS as e:
        return {"error": str(e)}


def join_video(parts: List[str], original: str, dst: str) -> Dict:
    from .segments import join_parts

    try:
        return {"frames": join_parts([Path(p) for p in parts], original, dst)}
    except INPUT_ERRORS as e:
        return {"error": str(e)}


class VideoRuns:
    """Drives every video (and animated image) through its Ray tasks and records each result in the
    manifest."""

    def __init__(self, job: BatchJob, manifest: Manifest, ray, progress):
        self.job, self.manifest, self.ray, self.progress = job, manifest, ray, progress
        _, self.cpus = _pool(job, ray)
        options = dict(num_cpus=self.cpus, max_retries=job.max_retries, retry_exceptions=True)
        if job.gpus_per_worker > 0:
            options["num_gpus"] = job.gpus_per_worker
        self.restore = ray.remote(restore_video_file).options(**options)
        self.restore_animation = ray.remote(restore_animation_file).options(**options)
        self.split = ray.remote(split_video).options(num_cpus=IO_TASK_CPUS, max_retries=job.max_retries)
        self.join = ray.remote(join_video).options(num_cpus=IO_TASK_CPUS, max_retries=job.max_retries)
        self.pending: Dict = {}   # ObjectRef -> (item, stage, state)

    def submit(self, items: List[WorkItem]) -> None:
        from .segments import video_duration

        seconds = self.job.segment_seconds
        for item in items:
            state = {"t0": time.perf_counter(), "parts": [], "left": 0, "folder": None, "failed": False}
            if item.kind == "animation":
                ref = self.restore_animation.remote(self.job, item.src, item.dst, int(round(self.cpus)))
                self.pending[ref] = (item, "whole", state)
                continue
            try:
                long = seconds is not None and video_duration(item.src) > 1.5 * seconds
            except INPUT_ERRORS as e:
                self._finish(item, state, error=str(e))
                continue
            if long:
                dst = Path(item.dst)
                state["folder"] = str(dst.parent / f".{dst.name}.parts-{secrets.token_hex(4)}")
                self.pending[self.split.remote(item.src, state["folder"], seconds)] = (item, "split", state)
            else:
                self.pending[self.restore.remote(self.job, item.src, item.dst, int(round(self.cpus)))] = \
                    (item, "whole", state)

    def wait_all(self) -> None:
        while self.pending:
            (ref,), _ = self.ray.wait(list(self.pending), num_returns=1)
            item, stage, state = self.pending.pop(ref)
            if state["failed"]:
                continue
            try:
                result = self.ray.get(ref)
            except Exception as e:  # retries exhausted: Ray re-raises the task's error
                result = {"error": f"{type(e).__name__}: {getattr(e, 'cause', None) or e}"}
            if "error" in result:
                self._finish(item, state, error=result["error"])
            elif stage == "split":
                state["parts"] = result["parts"]
                state["left"] = len(result["parts"])
                for part in result["parts"]:
                    out = str(Path(part).with_name("restored-" + Path(part).name))
                    ref = self.restore.remote(self.job, part, out, int(round(self.cpus)), part=True)
                    self.pending[ref] = (item, "part", state)
            elif stage == "part":
                state["left"] -= 1
                if state["left"] == 0:
                    outs = [str(Path(p).with_name("restored-" + Path(p).name)) for p in state["parts"]]
                    self.pending[self.join.remote(outs, item.src, item.dst)] = (item, "join", state)
            else:  # "whole" or "join"
                self._finish(item, state, frames=result["frames"])

    def _finish(self, item: WorkItem, state: Dict, frames: Optional[int] = None, error: Optional[str] = None):
        state["failed"] = error is not None
        if state["folder"]:
            shutil.rmtree(state["folder"], ignore_errors=True)
        self.manifest.update(item.src, status="failed" if error else "done", frames=frames,
                             seconds=round(time.perf_counter() - state["t0"], 4), error=error,
                             parts=len(state["parts"]) or None)
        self.progress(item.src, error)


# -- the driver ------------------------------------------------------------------------------

# Starts of a local Ray instance before giving up. Ray waits a fixed 30 s for its raylet to
# register (15 s for its agents' ports); on a machine whose CPUs are all busy a start can miss
# that and succeed when tried again (seen on a 2-core box with a training run beside it).
LOCAL_START_ATTEMPTS = 2
RAY_INIT_OPTIONS = dict(include_dashboard=False, logging_level=logging.WARNING, configure_logging=False)


def _init_ray(job: BatchJob, ray, retry_wait_s: float = 2.0) -> bool:
    """Connect to `job.ray_address`, or start a local instance sized to this machine
    (`start_local_ray`); True if we started (and so must stop) it."""
    if ray.is_initialized():
        return False
    if job.ray_address:
        ray.init(address=job.ray_address, **RAY_INIT_OPTIONS)
        return True
    import torch

    from ..cpus import available_cpus

    start_local_ray(ray, available_cpus(), torch.cuda.device_count(), retry_wait_s)
    return True


def start_local_ray(ray, num_cpus: int, num_gpus: int = 0, retry_wait_s: float = 2.0) -> None:
    """`ray.init` of a local instance with `num_cpus`/`num_gpus`; a failed start is shut down and
    tried again (`LOCAL_START_ATTEMPTS` in all), then `RayStartError`."""
    errors = []
    for attempt in range(LOCAL_START_ATTEMPTS):
        try:
            ray.init(num_cpus=num_cpus, num_gpus=num_gpus, **RAY_INIT_OPTIONS)
            return
        except Exception as e:  # Ray raises a bare Exception when its node times out during start-up
            errors.append(f"{type(e).__name__}: {e}")
            ray.shutdown()   # stop what did start, so the next attempt begins clean
            if attempt + 1 < LOCAL_START_ATTEMPTS:
                log.warning("starting a local Ray instance failed (%s); trying again", errors[-1])
                time.sleep(retry_wait_s)
    raise RayStartError(f"could not start a local Ray instance ({LOCAL_START_ATTEMPTS} attempts; last: {errors[-1]}). "
                        "Ray gives its processes fixed start-up times, which a machine whose CPUs are all busy "
                        "can miss: retry when it is less loaded, or start Ray yourself (`ray start --head`) "
                        "and pass --ray-address auto")


def restore_batch(job: BatchJob, inputs: Sequence[str], progress: bool = True) -> BatchSummary:
    """Restore every input file into `job.out_dir` (same file names) on Ray; see `BatchJob`."""
    from tqdm import tqdm

    ray = _require_ray()
    todo, done = plan_work(inputs, job.out_dir, job.overwrite)
    manifest = Manifest(job.manifest_path, job={k: v for k, v in dataclasses.asdict(job).items() if k != "fail_once"})
    manifest.add(done, "skipped")
    manifest.add(todo, "pending")
    t0 = time.perf_counter()
    bar = tqdm(total=len(todo), desc="restore-batch", unit="file", disable=not progress or None, file=sys.stderr)

    def report(src, error):
        bar.update(1)
        if error:
            bar.write(f"irflow: failed: {error if src in error else f'{src}: {error}'}", file=sys.stderr)

    started = _init_ray(job, ray) if todo else False
    try:
        images = [i for i in todo if i.kind == "image"]
        videos = [i for i in todo if i.kind in ("video", "animation")]
        runs = VideoRuns(job, manifest, ray, report) if videos else None
        if runs:
            runs.submit(videos)      # video tasks start now and run beside the image pipeline
        if images:
            run_images(job, images, manifest, ray, report)
        if runs:
            runs.wait_all()
    finally:
        bar.close()
        if started:
            ray.shutdown()
    counts = manifest.counts()
    return BatchSummary(done=counts["done"], failed=counts["failed"], skipped=counts["skipped"],
                        seconds=time.perf_counter() - t0, manifest=str(manifest.path))
