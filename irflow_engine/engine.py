"""The public API: `Engine` loads a checkpoint, picks a backend, and restores frames."""

from __future__ import annotations

import dataclasses
import logging
from functools import partial
from typing import Callable, Optional

import torch

from .backends import build_backend, resolve_backend_name
from .checkpoint import LoadedCheckpoint, resolve
from .config import EngineConfig, ModelConfig, resolve_precision
from .cpus import fit_threads
from .flow import Schedule, make_schedule
from .frames import Frame, from_batch, to_batch
from .memory import CPU_BYTES_PER_PIXEL, PassPlan, memory_budget, plan_pass
from .tiling import DEFAULT_OVERLAP, fallback_tile, restore_tiled

log = logging.getLogger(__name__)


def resolve_device(device) -> torch.device:
    """'auto' -> cuda when available, else cpu; 'cuda' without a GPU is a clear error."""
    if isinstance(device, torch.device):
        device = str(device)
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError as e:
        raise ValueError(f"unknown device {device!r} ({e})") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} requested but CUDA is not available "
                         f"(torch {torch.__version__}, built with CUDA {torch.version.cuda}); use device='cpu'")
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f"unsupported device {device!r}: use 'cpu', 'cuda', 'cuda:N' or 'auto'")
    return dev


_UNSET = object()
Progress = Callable[[int, int], None]   # (backend calls done, backend calls in all)


def is_out_of_memory(error: BaseException) -> bool:
    """A CUDA out-of-memory error, or a CPU allocation failure (torch's or onnxruntime's)."""
    if isinstance(error, (torch.cuda.OutOfMemoryError, MemoryError)):
        return True
    if isinstance(error, RuntimeError) or type(error).__name__ == "RuntimeException":   # onnxruntime's
        text = str(error)
        return "allocate memory" in text or "bad_alloc" in text
    return False


class Engine:
    """Restores images with an IR-Flow model.

    >>> engine = Engine.from_checkpoint("irflow-unet32-d3", steps=3)   # doctest: +SKIP
    >>> restored = engine.restore(image)  # numpy uint8 H×W×3 in, numpy uint8 H×W×3 out
    """

    def __init__(self, checkpoint: LoadedCheckpoint, config: EngineConfig = EngineConfig()):
        self.checkpoint = checkpoint
        self.device = resolve_device(config.device)
        # `config` as given, with precision "auto" resolved for the device.
        config = dataclasses.replace(config, precision=resolve_precision(config.precision, self.device.type))
        self.config = config
        steps = config.steps if config.steps is not None else checkpoint.meta.default_steps
        solver = config.solver if config.solver is not None else checkpoint.meta.default_solver
        self.schedule: Schedule = make_schedule(steps, solver)
        if self.device.type == "cpu":   # before the backend: an ONNX Runtime session takes torch's count
            fit_threads(config.threads)
        self.backend_name = resolve_backend_name(config.backend, self.device, config.precision)
        self.backend = build_backend(self.backend_name, checkpoint.build_model(), self.schedule,
                                     config.precision, self.device)
        if checkpoint.random_weights:
            log.warning("'%s' is an architecture preset with RANDOM, untrained weights: the output "
                        "shows the pipeline working, it is NOT a restoration", checkpoint.name)
        # Set after an out-of-memory error (CUDA's or a CPU allocation failure): the tile size later
        # calls use from the start.
        self.oom_tile: Optional[int] = None
        self._memory_tiled: set = set()   # frame sizes the CPU memory budget made tiled (warned once)
        self._budget = _UNSET             # the CPU memory budget, fixed at the first call

    @classmethod
    def from_checkpoint(cls, path_or_preset, backend: str = "eager", device: str = "cpu",
                        precision: str = "fp32", steps: Optional[int] = None,
                        solver: Optional[str] = None, *, model_config: Optional[ModelConfig] = None,
                        max_batch: int = 4, clamp: bool = True,
                        memory_budget: Optional[int] = None, threads: Optional[int] = None) -> "Engine":
        """Build an engine from a checkpoint file, a bundled model name or a preset.

        `steps`/`solver` default to the checkpoint's own defaults (3, "euler" for presets and
        reference `.pth` files). `model_config` overrides the architecture read from the file.
        `precision`: fp32, fp16, bf16, or "auto" (fp16 on CUDA, fp32 on the CPU).
        `memory_budget`: bytes one call may use on the CPU (None: 60 % of the memory available; 0: no
        limit); see `restore_batch`. `threads`: torch's CPU threads (None: its own count, lowered to a
        container's CPU quota).
        """
        config = EngineConfig(backend=backend, device=str(device), precision=precision, steps=steps,
                              solver=solver, max_batch=max_batch, clamp=clamp, memory_budget=memory_budget,
                              threads=threads)
        return cls(resolve(path_or_preset, model_config), config)

    @property
    def model_config(self) -> ModelConfig:
        return self.checkpoint.config

    def restore(self, x: Frame, *, tile: Optional[int] = None, tile_overlap: int = DEFAULT_OVERLAP,
                progress: Optional[Progress] = None) -> Frame:
        """Restore one frame or a batch; returns the same kind (type, dtype, layout, device).

        numpy: uint8 H×W×3 / N×H×W×3 (0–255) or float (0–1). torch: float 3×H×W / N×3×H×W in
        [0, 1] (or uint8 0–255), on any device. Float outputs are clamped to [0, 1] unless the
        engine was built with clamp=False. `tile`/`tile_overlap`/`progress`: see `restore_batch`.
        """
        batch, kind = to_batch(x, self.model_config.in_nc)
        out = self.restore_batch(batch.to(self.device), tile=tile, tile_overlap=tile_overlap, progress=progress)
        return from_batch(out, kind, clamp=self.config.clamp)

    def restore_batch(self, y: torch.Tensor, *, tile: Optional[int] = None,
                      tile_overlap: int = DEFAULT_OVERLAP, progress: Optional[Progress] = None) -> torch.Tensor:
        """N×3×H×W float32 on the engine's device -> unclamped float32 x̂0, `max_batch` at a time.

        `tile`: restore in overlapping tiles of at most tile×tile pixels, blended with feathered
        weights (`irflow_engine.tiling`). Without it, on the CPU the frames per call (and, for a
        frame too large alone, tiles) are chosen to fit `EngineConfig.memory_budget`
        (`irflow_engine.memory`; a warning says when it tiles). An out-of-memory error all the same
        (CUDA's, or a CPU allocation failure) is retried once in tiles (logged as a warning), and
        later calls tile from the start.
        `progress(done, total)` is called after each backend call with the calls done and to do
        (frames or tiles at a time): a long restore can show a progress bar.
        """
        if y.dim() != 4 or y.dtype != torch.float32:
            raise ValueError(f"restore_batch takes an N×3×H×W float32 tensor, got {tuple(y.shape)} {y.dtype}")
        whole = partial(self._restore_whole, progress=progress)
        if tile:
            return restore_tiled(whole, y, tile, tile_overlap)
        if not self.oom_tile:
            attempted = (y.shape[2], y.shape[3])   # the largest piece one call was given
            try:
                if y.device.type != "cpu":
                    return whole(y)
                plan = self._memory_plan(y)
                if plan.tile is not None:
                    attempted = (plan.tile, plan.tile)
                return self._restore_within_memory(y, plan, tile_overlap, progress)
            except Exception as e:
                if not is_out_of_memory(e):
                    raise
                reason = str(e).split("\n")[0]
            # Outside the handler, so that the failed attempt's tensors (held by the traceback) are freed.
            # Smaller than what failed: half of a budget-chosen tile, at most FALLBACK_TILE.
            self.oom_tile = fallback_tile(*attempted, self.model_config.pad_multiple)
            log.warning("out of memory restoring a %s batch (%s); retrying once in %d×%d tiles "
                        "(choose with tile=/--tile, or lower max_batch)", "×".join(map(str, y.shape)), reason,
                        self.oom_tile, self.oom_tile)
            if y.is_cuda:
                torch.cuda.empty_cache()
        return restore_tiled(whole, y, self.oom_tile, min(tile_overlap, self.oom_tile // 4))

    def _memory_plan(self, y: torch.Tensor) -> PassPlan:
        """Frames per call and tile side that keep a CPU call within the memory budget."""
        if self._budget is _UNSET:   # once: memory taken by earlier calls (arenas) must not change later plans
            self._budget = memory_budget(self.config.memory_budget)
        return plan_pass(y.shape[2], y.shape[3], self.config.max_batch, self._budget, self.model_config.pad_multiple)

    def _restore_within_memory(self, y: torch.Tensor, plan: PassPlan, tile_overlap: int,
                               progress: Optional[Progress]) -> torch.Tensor:
        """On the CPU: as many frames per call as the memory budget allows, or tiles when one frame
        is too large for it (`irflow_engine.memory`), instead of being killed for memory."""
        budget = self._budget
        if plan.tile is None:
            return self._restore_whole(y, plan.per_call, progress)
        shape = (y.shape[2], y.shape[3])
        if shape not in self._memory_tiled:
            self._memory_tiled.add(shape)
            log.warning("a %d×%d frame needs ~%.1f GB on the CPU, more than the %.1f GB budget: restoring it "
                        "in %d×%d tiles (results differ slightly from whole frames; set the budget with "
                        "memory_budget= / --memory-limit, or choose tile= / --tile)", shape[1], shape[0],
                        shape[0] * shape[1] * CPU_BYTES_PER_PIXEL / 1e9, budget / 1e9, plan.tile, plan.tile)
        return restore_tiled(partial(self._restore_whole, per_call=plan.per_call, progress=progress), y, plan.tile,
                             min(tile_overlap, plan.tile // 4))

    def _restore_whole(self, y: torch.Tensor, per_call: Optional[int] = None,
                       progress: Optional[Progress] = None) -> torch.Tensor:
        step = per_call or self.config.max_batch
        chunks = [y] if y.shape[0] <= step else [y[i:i + step] for i in range(0, y.shape[0], step)]
        parts = []
        for done, chunk in enumerate(chunks, 1):
            parts.append(self.backend.restore(chunk))
            if progress is not None:
                progress(done, len(chunks))
        return parts[0] if len(parts) == 1 else torch.cat(parts)

    def restore_video(self, src, dst, **options):
        """Restore a video file into another; see `irflow_engine.video.restore_video` for options."""
        from .video import restore_video

        return restore_video(self, src, dst, **options)

    def stream(self, frames, **options):
        """Restore an iterable of frames lazily, in order; see `irflow_engine.video.streaming.stream`."""
        from .video import stream

        return stream(self, frames, **options)

    def __repr__(self) -> str:
        return (f"Engine(model={self.checkpoint.name!r}, backend={self.backend_name}, device={self.device}, "
                f"precision={self.config.precision}, solver={self.schedule.solver}, steps={self.schedule.steps})")
