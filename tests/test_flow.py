"""Schedules as data, and the sampler's behaviour with an exact (oracle) network."""

from fractions import Fraction

import pytest
import torch

from irflow_engine.flow import EulerStep, HeunStep, PairStep, interpolate, make_schedule, sample


def test_fixed_euler_tables():
    assert make_schedule(1).plan == (EulerStep(1000, 1.0),)
    assert make_schedule(2).plan == (EulerStep(1000, 0.8), EulerStep(200, 1.0))
    assert make_schedule(3).plan == (EulerStep(1000, 0.8), EulerStep(200, 0.5), EulerStep(100, 1.0))
    assert make_schedule(4).plan == (EulerStep(1000, 0.5), EulerStep(500, 0.5), EulerStep(250, 0.8),
                                     EulerStep(50, 1.0))


@pytest.mark.parametrize("k", [5, 6, 7, 9, 11, 13, 30, 333, 1000])
def test_uniform_euler_times_and_weights(k):
    plan = make_schedule(k).plan
    assert len(plan) == k
    for step, i in zip(plan, range(k, 0, -1)):
        # The reference builds torch.tensor(i * h) (fp32) and truncates it with .long().
        assert step.t == int(torch.tensor(i * (1000 / k)).long())
        assert step.w == 1 / i
    assert plan[0].t == 1000


def test_heun_plans():
    assert make_schedule(2, "heun").plan == (EulerStep(1000, 0.5), PairStep(550, 450, 0.5))
    assert make_schedule(3, "heun").plan == (HeunStep(1000, 666, 1 / 3), HeunStep(666, 333, 0.5),
                                             HeunStep(333, 0, 1.0))
    assert make_schedule(1, "heun").plan == make_schedule(1, "euler").plan
    assert make_schedule(4, "heun").evaluations == 8
    assert make_schedule(2, "heun").evaluations == 3


@pytest.mark.parametrize("bad", [0, -1, 1001, 2.5, True, "3"])
def test_bad_steps(bad):
    with pytest.raises(ValueError, match="steps"):
        make_schedule(bad)


def test_bad_solver():
    with pytest.raises(ValueError, match="solver"):
        make_schedule(3, "rk4")


def _oracle_problem(seed=0):
    g = torch.Generator().manual_seed(seed)
    x0 = torch.rand(2, 3, 5, 7, generator=g, dtype=torch.float64)
    y = torch.rand(2, 3, 5, 7, generator=g, dtype=torch.float64)
    calls = []

    def oracle(x, t):
        calls.append(t)
        return x - x0  # the exact cumulative velocity

    return x0, y, oracle, calls


@pytest.mark.parametrize("k", list(range(1, 13)) + [50])
def test_euler_with_oracle_lands_on_x0(k):
    x0, y, oracle, calls = _oracle_problem(k)
    sch = make_schedule(k, "euler")
    out = sample(oracle, y, sch)
    assert torch.allclose(out, x0, atol=1e-12, rtol=0)
    assert tuple(calls) == sch.times and len(calls) == sch.evaluations


def test_heun2_with_oracle_lands_on_x0():
    x0, y, oracle, calls = _oracle_problem()
    out = sample(oracle, y, make_schedule(2, "heun"))
    assert torch.allclose(out, x0, atol=1e-12, rtol=0)
    assert calls == [1000, 550, 450]


@pytest.mark.parametrize("k", [3, 4, 5, 8])
def test_reference_heun_misses_x0_by_closed_form(k):
    """The reference's Heun (K > 2) keeps a fixed fraction P of the degradation (see flow.py)."""
    p = Fraction(1)
    for i in range(1, k + 1):
        p *= 1 - Fraction(1, i) + Fraction(1, 2 * i * i)
    x0, y, oracle, _ = _oracle_problem(k)
    out = sample(oracle, y, make_schedule(k, "heun"))
    expected = x0 + float(p) * (y - x0)
    assert torch.allclose(out, expected, atol=1e-12, rtol=0)
    assert float(p) > 0.05  # far from x0: not a converging solver
    if k == 3:
        assert p == Fraction(65, 288)


def test_interpolate_endpoints_and_cumulative_velocity():
    x0, y, _, _ = _oracle_problem()
    assert torch.equal(interpolate(x0, y, 0), x0)
    assert torch.allclose(interpolate(x0, y, 1000), y)
    t = torch.tensor([250, 800])
    xt = interpolate(x0, y, t)
    expected = x0 + (t.double() / 1000).view(-1, 1, 1, 1) * (y - x0)
    assert torch.allclose(xt, expected, atol=1e-12)
