"""Training IR-Flow models (DESIGN.md §2): `irflow train`.

The objective has the paper's three parts:
1. multilevel data: each patch gets a degradation level drawn from a range, and each sample a
   time t uniform in {0, …, T};
2. cumulative velocity: loss ‖D(x_t, t) − (x_t − x0)‖ (L1 or L2) at x_t = (t/T)·y + (1 − t/T)·x0;
3. multi-step consistency: K uniform in [k_min, k_max], the uniform K-step Euler sampler run from
   y (or, with `consistency_schedule="euler"`, the engine's own K-step Euler: the reference's
   tables for K ≤ 4), plus λ·‖x̂0 − x0‖. Unlike the reference (which computes it under no_grad), this term
   backpropagates, through the last `consistency_grad_steps` steps (0 = all) to bound memory.
EMA of the weights (β every `ema_every` steps, with an optional warm-up), Adam, cosine learning-rate decay with warm-up,
optional global gradient-norm clipping, autocast on CUDA. A step whose loss is non-finite or jumps
above `divergence_factor` × its running mean raises TrainingDiverged before the update (and so
before any checkpoint of the diverged weights); with `divergence_rollbacks`, the run instead goes
back to its last checkpoint and continues on new batches at half the learning rate.

A run directory holds `model.safetensors` and `ema.safetensors` (our checkpoint format),
`train_state.pt` (optimizer, scheduler, step, every RNG: `--resume` continues exactly) and
`log.jsonl` (one line per logged step, flushed and fsynced, so it survives a crash).
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import math
import os
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Tuple

import torch

from .atomic import atomic_path
from .checkpoint import CheckpointMeta, resolve, save_checkpoint
from .config import FLOW_T, ModelConfig
from .datasets import PatchSource, PatchStream, load_image_set, paired_folders
from .degrade import DEGRADATIONS, LEVEL_RANGES
from .flow import euler_schedule, interpolate, uniform_euler_schedule
from .models import ConditionalUNet

STATE_FILE = "train_state.pt"
# With time_budget_s: steps run before the total is first fitted (the second half is timed); with a
# longer learning-rate warm-up it is fitted again at the warm-up's end, from all steps timed so far.
TIME_PROBE_STEPS = 40
LOG_FILE = "log.jsonl"
DIVERGENCE_WARMUP = 20  # steps whose loss only feeds the running mean of the divergence check


# The K-step sampler the consistency term runs: the paper's uniform Euler, or the engine's Euler
# (the reference's hand-tuned tables for K <= 4), which trains the path that inference takes.
CONSISTENCY_SCHEDULES = {"uniform": uniform_euler_schedule, "euler": euler_schedule}


@dataclass
class TrainConfig:
    """Everything a run depends on; saved as `config.json` in the run directory."""

    out_dir: str = "runs/train"
    model: str = "irflow-unet16-d3"          # preset (random init) or checkpoint to fine-tune
    task: str = "denoise"
    data: str = "skimage:train"              # clean-image folder / a datasets.IMAGE_SETS name, or GT folder
    lq_dir: Optional[str] = None             # paired mode: the degraded images (names match data)
    degradation: str = "noise"               # synthetic mode: a name from degrade.DEGRADATIONS
    level_min: Optional[float] = None        # default: degrade.LEVEL_RANGES
    level_max: Optional[float] = None
    smooth_fraction: float = 0.0             # synthetic mode: share of flat/smooth synthetic patches
    level_power: float = 1.0                 # synthetic mode: level = min + (max - min)·u**power (> 1: more low levels)
    patch: int = 64
    batch: int = 8
    steps: int = 10000
    lr: float = 1e-4
    lr_min: float = 1e-6
    warmup: int = 0
    loss: str = "l1"                         # l1 | l2
    consistency_weight: float = 0.3
    consistency_k_min: int = 2
    consistency_k_max: int = 10
    consistency_grad_steps: int = 1          # steps at the end of the sampler that carry gradient
    consistency_schedule: str = "uniform"    # uniform (the paper's) | euler (the engine's: tables for K <= 4)
    grad_clip: Optional[float] = None        # clip the gradients' global L2 norm to this (None: off)
    divergence_factor: Optional[float] = 20.0  # stop when a step's loss exceeds this × its running mean
    divergence_rollbacks: int = 0            # instead of stopping: back to the last checkpoint, lr × 0.5
    ema_beta: float = 0.995
    ema_every: int = 10
    ema_warmup: bool = True                  # decay min(β, (1+n)/(10+n)) at the n-th update
    bundle_weights: str = "ema"              # what bundle_to receives: "ema" or "model"
    amp: str = "auto"                        # auto (bf16 on CUDA, off on CPU) | bf16 | fp16 | off
    checkpoint_every: int = 500
    log_every: int = 10
    seed: int = 0
    num_workers: int = 0
    device: str = "auto"
    default_steps: int = 3                   # recorded in the checkpoint header
    bundle_to: Optional[str] = None          # at the end, also write the EMA weights (fp16) here
    time_budget_s: Optional[float] = None    # fit the run into this many seconds: see Trainer.run

    def __post_init__(self):
        if self.loss not in ("l1", "l2"):
            raise ValueError(f"loss must be l1 or l2, got {self.loss!r}")
        if self.lq_dir is None and self.degradation not in DEGRADATIONS:
            raise ValueError(f"unknown degradation {self.degradation!r}; choose from {sorted(DEGRADATIONS)}")
        if self.divergence_factor is not None and not self.divergence_factor > 1:
            raise ValueError(f"divergence_factor must be > 1 (or null for none), got {self.divergence_factor}")
        if self.grad_clip is not None and not self.grad_clip > 0:
            raise ValueError(f"grad_clip must be > 0 (or null for none), got {self.grad_clip}")
        if not 0.0 <= self.smooth_fraction < 1.0:
            raise ValueError(f"smooth_fraction must be in [0, 1), got {self.smooth_fraction}")
        if self.smooth_fraction and self.lq_dir is not None:
            raise ValueError("smooth_fraction needs synthetic mode (clean images + degradation), not lq_dir")
        if not (isinstance(self.level_power, (int, float)) and 0 < self.level_power <= 10):
            raise ValueError(f"level_power must be in (0, 10] (1: uniform levels), got {self.level_power!r}")
        if self.level_power != 1 and self.lq_dir is not None:
            raise ValueError("level_power needs synthetic mode (clean images + degradation), not lq_dir")
        if not 1 <= self.consistency_k_min <= self.consistency_k_max:
            raise ValueError("need 1 <= consistency_k_min <= consistency_k_max")
        if self.consistency_schedule not in CONSISTENCY_SCHEDULES:
            raise ValueError(f"consistency_schedule must be one of {sorted(CONSISTENCY_SCHEDULES)}, "
                             f"got {self.consistency_schedule!r}")
        if self.bundle_weights not in ("ema", "model"):
            raise ValueError(f"bundle_weights must be ema or model, got {self.bundle_weights!r}")
        if self.amp not in ("auto", "bf16", "fp16", "off"):
            raise ValueError(f"amp must be auto, bf16, fp16 or off, got {self.amp!r}")
        for name in ("patch", "batch", "steps", "ema_every", "checkpoint_every", "log_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1")
        if self.divergence_rollbacks < 0:
            raise ValueError("divergence_rollbacks must be >= 0")
        if self.time_budget_s is not None and self.time_budget_s <= 0:
            raise ValueError("time_budget_s must be > 0")

    @property
    def level_range(self) -> Tuple[float, float]:
        lo, hi = LEVEL_RANGES.get(self.degradation, (0.0, 0.0))
        return (lo if self.level_min is None else self.level_min, hi if self.level_max is None else self.level_max)

    @classmethod
    def from_json(cls, path) -> "TrainConfig":
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ValueError(f"training config {path} does not exist") from None
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ValueError(f"{path}: not a JSON training config ({e})") from None
        if not isinstance(data, dict):
            raise ValueError(f"{path}: a training config is a JSON object of options, got {type(data).__name__}")
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - fields)
        if unknown:
            raise ValueError(f"{path}: unknown training options {unknown}")
        return cls(**data)


class TrainingDiverged(ValueError):
    """The loss went non-finite or jumped far above its running mean; nothing was saved for it."""


class Trainer:
    def __init__(self, cfg: TrainConfig):
        from .engine import resolve_device

        self.cfg = cfg
        self.steps_asked = cfg.steps             # with time_budget_s, cfg.steps is fitted at or below it
        self.out = Path(cfg.out_dir)
        self.device = resolve_device(cfg.device)
        torch.manual_seed(cfg.seed)
        init = resolve(cfg.model, seed=cfg.seed)
        self.model_config: ModelConfig = init.config
        # A fine-tune's header names the base's architecture preset and counts the base's steps too.
        self.base = None if init.random_weights else init.meta
        self.model = ConditionalUNet.from_config(self.model_config)
        self.model.load_state_dict(init.state_dict)
        self.model.to(self.device).train()
        self.ema = copy.deepcopy(self.model).eval().requires_grad_(False)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=cfg.lr)
        self.lr_scale = 1.0                      # halved by each rollback (saved, so --resume keeps it)
        self.rollbacks = 0
        self.saved_state = False                 # train_state.pt is this run's (saved or resumed)
        self.sched = torch.optim.lr_scheduler.LambdaLR(self.opt, self._lr_factor)
        self.amp_dtype = self._amp_dtype()
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp_dtype == torch.float16)
        self.gen = torch.Generator().manual_seed(cfg.seed + 1)   # times t and consistency K
        self.stream = PatchStream(self._source(), cfg.patch, cfg.seed + 2)
        # Pinned batches on CUDA, so the non-blocking copy in train_step overlaps the GPU's work.
        self.loader = torch.utils.data.DataLoader(self.stream, batch_size=cfg.batch, num_workers=cfg.num_workers,
                                                  pin_memory=self.device.type == "cuda")
        self.batches = None
        self.step = 0
        self.loss_mean: Optional[float] = None   # divergence check (saved, so --resume keeps it)
        self.loss_seen = 0

    # -- set-up -----------------------------------------------------------------------------

    def _amp_dtype(self) -> Optional[torch.dtype]:
        amp = self.cfg.amp
        if amp == "auto":
            amp = "bf16" if self.device.type == "cuda" else "off"
        return {"bf16": torch.bfloat16, "fp16": torch.float16, "off": None}[amp]

    def _lr_factor(self, step: int) -> float:
        cfg = self.cfg
        if step < cfg.warmup:
            factor = (step + 1) / cfg.warmup
        else:
            progress = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
            cosine = 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
            factor = (cfg.lr_min + (cfg.lr - cfg.lr_min) * cosine) / cfg.lr
        return self.lr_scale * factor

    def _source(self) -> PatchSource:
        cfg = self.cfg
        if cfg.lq_dir is not None:
            pairs = paired_folders(cfg.lq_dir, cfg.data)
            return PatchSource(pairs=[(lq, gt) for _, lq, gt in pairs])
        return PatchSource(clean=[img for _, img in load_image_set(cfg.data)], degradation=cfg.degradation,
                           level_range=cfg.level_range, smooth_fraction=cfg.smooth_fraction,
                           level_power=float(cfg.level_power))

    def meta(self) -> CheckpointMeta:
        cfg = self.cfg
        degradation = None if cfg.lq_dir else {"name": cfg.degradation, "level_range": list(cfg.level_range)}
        preset, extra = (cfg.model if not os.path.exists(cfg.model) else None), {"train_steps": self.step}
        if self.base is not None:
            base_steps = self.base.extra.get("train_steps", 0)
            base_steps = base_steps if isinstance(base_steps, int) else 0
            preset = self.base.preset
            extra = {"train_steps": base_steps + self.step, "fine_tuned_from": os.path.basename(cfg.model),
                     "fine_tune_steps": self.step}
        return CheckpointMeta(preset=preset, task=cfg.task, degradation=degradation, training_data=cfg.data,
                              default_steps=cfg.default_steps, default_solver="euler", extra=extra)

    # -- one step ---------------------------------------------------------------------------

    def _distance(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return (a - b).abs().mean() if self.cfg.loss == "l1" else ((a - b) ** 2).mean()

    def _autocast(self):
        if self.amp_dtype is None:
            return torch.autocast(self.device.type, enabled=False)
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def losses(self, lq: torch.Tensor, gt: torch.Tensor):
        """(total, velocity term, consistency term) for one batch."""
        cfg = self.cfg
        t = torch.randint(0, FLOW_T + 1, (lq.shape[0],), generator=self.gen).to(self.device)
        x_t = interpolate(gt, lq, t)
        with self._autocast():
            velocity = self._distance(self.model(x_t, t).float(), x_t - gt)
        consistency = torch.zeros((), device=self.device)
        if cfg.consistency_weight > 0:
            k = int(torch.randint(cfg.consistency_k_min, cfg.consistency_k_max + 1, (1,), generator=self.gen))
            plan = CONSISTENCY_SCHEDULES[cfg.consistency_schedule](k).plan
            with_grad = k if cfg.consistency_grad_steps <= 0 else min(k, cfg.consistency_grad_steps)
            x = lq
            for i, step in enumerate(plan):
                grad = i >= k - with_grad
                with torch.set_grad_enabled(grad), self._autocast():
                    x = x - step.w * self.model(x, step.t).float()
            consistency = self._distance(x, gt)
        return velocity + cfg.consistency_weight * consistency, velocity, consistency

    def train_step(self) -> dict:
        if self.batches is None:
            self.batches = iter(self.loader)
        lq, gt = (v.to(self.device, non_blocking=True) for v in next(self.batches))
        loss, velocity, consistency = self.losses(lq, gt)
        self.check_divergence(loss.detach().item())
        self.opt.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.unscale_(self.opt)
        grad_norm = torch.nn.utils.clip_grad_norm_(
            self.model.parameters(), self.cfg.grad_clip if self.cfg.grad_clip is not None else float("inf"))
        self.scaler.step(self.opt)
        self.scaler.update()
        self.sched.step()
        self.step += 1
        if self.step % self.cfg.ema_every == 0:
            decay = self.ema_decay(self.step // self.cfg.ema_every - 1)
            with torch.no_grad():
                for e, p in zip(self.ema.parameters(), self.model.parameters()):
                    e.lerp_(p, 1.0 - decay)
        return {"step": self.step, "loss": loss.item(), "velocity": velocity.item(),
                "consistency": consistency.item(), "grad_norm": grad_norm.item(),
                "lr": self.sched.get_last_lr()[0]}

    def check_divergence(self, loss: float) -> None:
        """Raise TrainingDiverged, before the update, on a non-finite loss or one above
        `divergence_factor` × the running mean of the previous steps' losses (an average over ~50
        steps, from step DIVERGENCE_WARMUP on). The checkpoints on disk predate the jump."""
        factor = self.cfg.divergence_factor
        mean = self.loss_mean
        if not math.isfinite(loss) or (factor is not None and mean is not None
                                       and self.loss_seen >= DIVERGENCE_WARMUP and loss > factor * mean):
            where = f"{mean:.4g}" if mean is not None else "none yet"
            raise TrainingDiverged(
                f"training diverged at step {self.step + 1}: loss {loss:.4g} (running mean {where}); the "
                f"checkpoints in {self.out} are from before it. Resume (--resume) with --grad-clip or "
                f"--divergence-rollbacks, raise --divergence-factor if the loss really varies this much, or "
                f"start a new run with a lower --lr (a resumed run keeps its saved learning-rate schedule)")
        self.loss_mean = loss if mean is None else 0.98 * mean + 0.02 * loss
        self.loss_seen += 1

    def ema_decay(self, n: int) -> float:
        """The decay of the n-th EMA update (n = 0, 1, …).

        Without warm-up it is β throughout, as in the reference; with it, min(β, (1+n)/(10+n)),
        so that a short run's average is not dominated by the initial weights (at β = 0.995
        every 10 steps, 0.995^160 = 45 % of them would remain after 1,600 steps).
        """
        if not self.cfg.ema_warmup:
            return self.cfg.ema_beta
        return min(self.cfg.ema_beta, (1 + n) / (10 + n))

    # -- persistence ------------------------------------------------------------------------

    def save(self) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        meta = self.meta()
        save_checkpoint(self.out / "model.safetensors", self.model, self.model_config, meta)
        save_checkpoint(self.out / "ema.safetensors", self.ema, self.model_config, meta)
        state = {
            "step": self.step,
            "optimizer": self.opt.state_dict(),
            "scheduler": self.sched.state_dict(),
            "scaler": self.scaler.state_dict(),
            "model": self.model.state_dict(),
            "ema": self.ema.state_dict(),
            "torch_rng": torch.get_rng_state(),
            "gen": self.gen.get_state(),
            "stream_rng": json.dumps(self.stream.rng.bit_generator.state),
            "config": json.dumps(dataclasses.asdict(self.cfg)),
            "lr_scale": self.lr_scale,
            "rollbacks": self.rollbacks,
            "loss_mean": self.loss_mean if self.loss_mean is not None else float("nan"),
            "loss_seen": self.loss_seen,
        }
        with atomic_path(self.out / STATE_FILE) as tmp:
            torch.save(state, tmp)
        self.saved_state = True

    def resume(self) -> None:
        path = self.out / STATE_FILE
        if not path.exists():
            raise FileNotFoundError(f"--resume: no {STATE_FILE} in {self.out}")
        state = torch.load(path, map_location="cpu", weights_only=True)
        self._warn_changed_options(json.loads(state["config"]))
        self._load_weights_and_schedule(state)
        torch.set_rng_state(state["torch_rng"])
        self.gen.set_state(state["gen"])
        self.stream.rng.bit_generator.state = json.loads(state["stream_rng"])
        self.rollbacks = int(state.get("rollbacks", 0))
        # the divergence check's running mean, so that it also guards the first steps after a
        # resume (a state saved before it was kept restarts the check's warm-up)
        mean = float(state.get("loss_mean", float("nan")))
        self.loss_mean = None if math.isnan(mean) else mean
        self.loss_seen = int(state.get("loss_seen", 0))
        self.batches = None
        self.saved_state = True

    def _load_weights_and_schedule(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.ema.load_state_dict(state["ema"])
        self.opt.load_state_dict(state["optimizer"])
        self.sched.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        self.lr_scale = float(state.get("lr_scale", 1.0))
        self.step = int(state["step"])
        _truncate_log(self.out / LOG_FILE, self.step)

    def rollback(self) -> int:
        """Go back to the last checkpoint after a divergence: its weights, optimizer and step, with
        the learning rate halved for the rest of the run. The data and time RNGs are not restored,
        so the steps that follow see new batches. Returns the step it went back to."""
        if not self.saved_state:   # a train_state.pt there may be an older run's
            raise FileNotFoundError(f"this run has saved no {STATE_FILE} in {self.out} to roll back to")
        state = torch.load(self.out / STATE_FILE, map_location="cpu", weights_only=True)
        scale = self.lr_scale * 0.5
        self._load_weights_and_schedule(state)
        self.lr_scale = scale
        for group, base in zip(self.opt.param_groups, self.sched.base_lrs):
            group["lr"] = base * self._lr_factor(self.sched.last_epoch)
        self.rollbacks += 1
        return self.step

    # Options a resumed run cannot change: the optimizer and scheduler states restore the saved
    # learning rate, and the restored RNG states replace the seed's.
    RESUME_IGNORES = ("lr", "seed")

    def _warn_changed_options(self, saved: dict) -> None:
        now = dataclasses.asdict(self.cfg)
        changed = [k for k in now if k in saved and saved[k] != now[k] and k != "out_dir"]
        if not changed:
            return
        parts = [f"{k} {saved[k]!r} -> {now[k]!r}" + (" (ignored: the saved run's value stays)"
                                                      if k in self.RESUME_IGNORES else "")
                 for k in changed]
        warnings.warn("--resume with options that differ from the saved run: " + "; ".join(parts)
                      + ". Start a new run (another --out-dir) to change what is ignored.", stacklevel=3)

    # -- the loop ---------------------------------------------------------------------------

    def fit_steps_to_budget(self, seconds_per_step: float, elapsed: float) -> int:
        """With `time_budget_s`, set `steps` (never above the steps asked for) so that the run ends
        within the budget.

        Called after `TIME_PROBE_STEPS` steps and again at the end of a longer warm-up (`fit_points`);
        the cosine schedule then decays over the new total (it reads `cfg.steps` at every step, and
        the warm-up does not depend on it). Returns the new total, which `config.json` records:
        rerunning with `--steps` that number repeats the run exactly.
        """
        cfg = self.cfg
        left = max(0.0, cfg.time_budget_s - elapsed)
        fitted = self.step + int(left / max(seconds_per_step, 1e-9))
        cfg.steps = max(self.step + 1, min(self.steps_asked, fitted))
        return cfg.steps

    def fit_points(self, start: int):
        """(first timed step, steps at which the total is fitted) for a run (re)started at `start`.

        The first fit comes after `TIME_PROBE_STEPS` steps, past compilation and warm-up of the
        caches. A step's cost varies (the consistency term's K is drawn per step), so while the
        learning-rate warm-up lasts (where the schedule does not depend on the total) the rate is
        measured longer and the total fitted once more at its end.
        """
        first = start + TIME_PROBE_STEPS
        return start + TIME_PROBE_STEPS // 2, sorted({first, max(first, self.cfg.warmup)})

    def run(self, progress: bool = True) -> dict:
        from tqdm import tqdm

        cfg = self.cfg
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / "config.json").write_text(json.dumps(dataclasses.asdict(cfg), indent=2))
        last = {}
        t0 = time.perf_counter()
        timed_from, fits = self.fit_points(self.step) if cfg.time_budget_s is not None else (None, [])
        timer = None
        bar = tqdm(total=cfg.steps, initial=self.step, desc="train", unit="step", disable=not progress,
                   file=sys.stderr, dynamic_ncols=True)
        with open(self.out / LOG_FILE, "a") as log:
            while self.step < cfg.steps:
                try:
                    last = self.train_step()
                except TrainingDiverged as error:
                    if self.rollbacks >= cfg.divergence_rollbacks or not self.saved_state:
                        raise
                    diverged_at = self.step + 1
                    log.flush()
                    bar.n = self.rollback()
                    bar.refresh()
                    print(f"irflow: {error.args[0].split(';')[0]}; rollback {self.rollbacks} of "
                          f"{cfg.divergence_rollbacks}: back to step {self.step} (from {diverged_at}), "
                          f"learning rate x{self.lr_scale:g}", file=sys.stderr)
                    continue
                bar.update(1)
                if self.step == timed_from:
                    timer = time.perf_counter()
                elif timer is not None and self.step in fits:
                    rate = (time.perf_counter() - timer) / (self.step - timed_from)
                    bar.total = self.fit_steps_to_budget(rate, time.perf_counter() - t0)
                    (self.out / "config.json").write_text(json.dumps(dataclasses.asdict(cfg), indent=2))
                    print(f"irflow: {rate * 1e3:.1f} ms/step over {self.step - timed_from} steps: "
                          f"{cfg.steps} steps fit the {cfg.time_budget_s:g} s budget", file=sys.stderr)
                if self.step % cfg.log_every == 0 or self.step == cfg.steps:
                    last["seconds"] = round(time.perf_counter() - t0, 3)
                    log.write(json.dumps(last) + "\n")
                    log.flush()
                    os.fsync(log.fileno())
                    bar.set_postfix(loss=f"{last['loss']:.4f}", v=f"{last['velocity']:.4f}",
                                    c=f"{last['consistency']:.4f}")
                if self.step % cfg.checkpoint_every == 0 or self.step == cfg.steps:
                    self.save()
        bar.close()
        if cfg.bundle_to:
            weights = self.ema if cfg.bundle_weights == "ema" else self.model
            save_checkpoint(cfg.bundle_to, weights, self.model_config, self.meta(), dtype=torch.float16)
        return last


def _truncate_log(path: Path, step: int) -> None:
    """Drop log lines past `step` (written after the checkpoint a resumed run restarts from)."""
    if not path.exists():
        return
    kept = [line for line in path.read_text().splitlines() if line.strip() and json.loads(line)["step"] <= step]
    path.write_text("".join(line + "\n" for line in kept))


_NONE = object()   # "--option none" on the command line: set an Optional option to None


def _optional(kind):
    def parse(text: str):
        return _NONE if text.lower() in ("none", "null") else kind(text)
    parse.__name__ = kind.__name__
    return parse


def add_train_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="JSON file of training options (flags below override it)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out-dir exactly where it stopped")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    for f in dataclasses.fields(TrainConfig):
        optional = str(f.type).startswith("Optional")
        kind = type(f.default) if f.default is not None else str
        if f.name in ("level_min", "level_max", "time_budget_s", "grad_clip", "divergence_factor"):
            kind = float
        p.add_argument("--" + f.name.replace("_", "-"), dest=f.name, type=_optional(kind) if optional else kind,
                       default=None, help=f"(default: {f.default}" + ("; 'none' unsets it)" if optional else ")"))


def config_from_args(args) -> TrainConfig:
    base = dataclasses.asdict(TrainConfig.from_json(args.config)) if args.config else {}
    overrides = {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig)
                 if getattr(args, f.name) is not None}
    overrides = {k: None if v is _NONE else v for k, v in overrides.items()}
    return TrainConfig(**{**base, **overrides})


def cmd_train(args) -> int:
    cfg = config_from_args(args)
    trainer = Trainer(cfg)
    if args.resume:
        trainer.resume()
        print(f"irflow: resumed {cfg.out_dir} at step {trainer.step}", file=sys.stderr)
    print(f"irflow: training {cfg.model} ({trainer.model_config}) on {cfg.data} "
          f"[{cfg.lq_dir and 'paired' or cfg.degradation}] for {cfg.steps} steps on {trainer.device}",
          file=sys.stderr)
    last = trainer.run(progress=not args.quiet)
    print(f"irflow: done at step {trainer.step}: loss {last.get('loss', float('nan')):.4f}; "
          f"weights in {cfg.out_dir}/model.safetensors and ema.safetensors", file=sys.stderr)
    if cfg.bundle_to:
        print(f"irflow: bundled {cfg.bundle_weights} weights (fp16) written to {cfg.bundle_to}", file=sys.stderr)
    return 0
