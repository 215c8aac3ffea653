"""The rectified flow: schedules as data, and the reference sampler.

Flow: x_t = (t/T)·y + (1 − t/T)·x0 with integer t ∈ {0, …, T}, T = 1000. The network predicts
the cumulative velocity D(x_t, t) = x_t − x0, so sampling starts at x = y and subtracts weighted
predictions. A `Schedule` is a tuple of steps, each one of three kinds:

- `EulerStep(t, w)`:         x ← x − w·D(x, t)
- `HeunStep(t, t_hat, w)`:   d = D(x, t); x̂ = x − w·d; x ← x − (w/2)·(d + D(x̂, t_hat))
- `PairStep(t_a, t_b, w)`:   x ← x − w·(D(x, t_a) + D(x, t_b))

Every weight and time is a constant of (K, solver), fixed when the schedule is built, so a fast
backend can fold them (and the time embeddings) at build time.

`heun` reproduces the reference's "Heun-2" exactly. For K > 2 its corrector is weighted so that
even a perfect network does not land on x0: with D(x, t) = x − x0, step i scales the remaining
error x − x0 by (1 − 1/i + 1/(2i²)), so the last step (i = 1) removes only half of it and the
sampler lands at x0 + P·(y − x0), P = ∏ᵢ (1 − 1/i + 1/(2i²)) (P = 65/288 for K = 3). We keep it
because the reference evaluated its checkpoints with it; Euler schedules and Heun with K ≤ 2
land exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Tuple, Union

import numpy as np
import torch

from .config import FLOW_T, SOLVERS


@dataclass(frozen=True)
class EulerStep:
    """x ← x − w·D(x, t)."""

    t: int
    w: float

    @property
    def times(self) -> Tuple[int, ...]:
        return (self.t,)


@dataclass(frozen=True)
class HeunStep:
    """d = D(x, t); x̂ = x − w·d; x ← x − (w/2)·(d + D(x̂, t_hat))."""

    t: int
    t_hat: int
    w: float

    @property
    def times(self) -> Tuple[int, ...]:
        return (self.t, self.t_hat)


@dataclass(frozen=True)
class PairStep:
    """x ← x − w·(D(x, t_a) + D(x, t_b)) (the second half of the reference's 2-step Heun)."""

    t_a: int
    t_b: int
    w: float

    @property
    def times(self) -> Tuple[int, ...]:
        return (self.t_a, self.t_b)


Step = Union[EulerStep, HeunStep, PairStep]

# The reference's hand-tuned Euler tables: (w, t) per step.
EULER_TABLES = {
    1: ((1.0, 1000),),
    2: ((0.8, 1000), (1.0, 200)),
    3: ((0.8, 1000), (0.5, 200), (1.0, 100)),
    4: ((0.5, 1000), (0.5, 500), (0.8, 250), (1.0, 50)),
}


@dataclass(frozen=True)
class Schedule:
    """A sampler plan: `solver` with `steps` = K, expanded into `plan`."""

    solver: str
    steps: int
    plan: Tuple[Step, ...]

    @property
    def evaluations(self) -> int:
        """Network evaluations per restored frame."""
        return sum(len(s.times) for s in self.plan)

    @property
    def times(self) -> Tuple[int, ...]:
        """Every time at which the network is evaluated, in order."""
        return tuple(t for s in self.plan for t in s.times)


def _as_reference_time(value: float) -> int:
    """float -> int as the reference's `torch.tensor(value).long()`: round to fp32, truncate."""
    return int(np.float32(value))


def uniform_euler_schedule(steps: int) -> Schedule:
    """Uniform Euler for any K: t_i = int(i·T/K), w_i = 1/i, i = K … 1 (the training sampler)."""
    h = FLOW_T / steps
    plan = tuple(EulerStep(t=_as_reference_time(i * h), w=1 / i) for i in range(steps, 0, -1))
    return Schedule("euler", steps, plan)


def euler_schedule(steps: int) -> Schedule:
    """The reference's Euler: its hand-tuned tables for K ≤ 4, uniform beyond."""
    if steps in EULER_TABLES:
        return Schedule("euler", steps, tuple(EulerStep(t=t, w=w) for w, t in EULER_TABLES[steps]))
    return uniform_euler_schedule(steps)


def heun_schedule(steps: int) -> Schedule:
    if steps == 1:
        # The reference takes its one-step Euler path for K = 1 whatever the solver.
        return Schedule("heun", 1, euler_schedule(1).plan)
    if steps == 2:
        delta = 50
        plan = (EulerStep(t=FLOW_T, w=0.5),
                PairStep(t_a=_as_reference_time(0.5 * FLOW_T + delta),
                         t_b=_as_reference_time(0.5 * FLOW_T - delta), w=0.5))
        return Schedule("heun", 2, plan)
    h = FLOW_T / steps
    plan = tuple(HeunStep(t=_as_reference_time(i * h), t_hat=_as_reference_time((i - 1) * h), w=1 / i)
                 for i in range(steps, 0, -1))
    return Schedule("heun", steps, plan)


def make_schedule(steps: int = 3, solver: str = "euler") -> Schedule:
    """The schedule for K = `steps` network steps with `solver` ("euler" or "heun")."""
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or not 1 <= steps <= FLOW_T:
        raise ValueError(f"steps must be an integer in [1, {FLOW_T}], got {steps!r}")
    steps = int(steps)
    if solver == "euler":
        return euler_schedule(steps)
    if solver == "heun":
        return heun_schedule(steps)
    raise ValueError(f"unknown solver {solver!r}; choose one of {SOLVERS}")


VelocityFn = Callable[[torch.Tensor, int], torch.Tensor]


def sample(model: VelocityFn, y: torch.Tensor, schedule: Schedule) -> torch.Tensor:
    """The reference sampler: run `schedule` from the degraded image `y`; returns x̂0.

    `model(x, t)` returns D(x, t) for an integer time t.
    """
    x = y
    for step in schedule.plan:
        if isinstance(step, EulerStep):
            x = x - step.w * model(x, step.t)
        elif isinstance(step, HeunStep):
            d = model(x, step.t)
            x_hat = x - step.w * d
            x = x - (step.w / 2) * (d + model(x_hat, step.t_hat))
        elif isinstance(step, PairStep):
            x = x - step.w * (model(x, step.t_a) + model(x, step.t_b))
        else:
            raise TypeError(f"unknown schedule step {step!r}")
    return x


def interpolate(x0: torch.Tensor, y: torch.Tensor, t) -> torch.Tensor:
    """The flow's state x_t = (t/T)·y + (1 − t/T)·x0 (t an int or a per-sample tensor)."""
    if isinstance(t, torch.Tensor):
        s = (t.to(x0.dtype) / FLOW_T).reshape(-1, *([1] * (x0.dim() - 1)))
    else:
        s = t / FLOW_T
    return s * y + (1 - s) * x0
