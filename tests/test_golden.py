"""Our fp32 eager network and sampler against the reference implementation's golden vectors."""

import pytest
import torch

from irflow_engine import Engine, make_schedule, sample
from irflow_engine.checkpoint import LoadedCheckpoint, CheckpointMeta
from irflow_engine.config import EngineConfig

from conftest import rel_err

TOL = 1e-5  # relative to the largest reference value (DESIGN.md §3)


@pytest.mark.parametrize("t", [1000, 500, 37])
def test_forward_matches_reference(golden, golden_model, t):
    lq = torch.from_numpy(golden["lq"])
    with torch.no_grad():
        out = golden_model(lq, torch.tensor([t]))
    assert out.shape == lq.shape
    assert rel_err(out, golden[f"forward_t{t}"]) <= TOL


@pytest.mark.parametrize("t", [1000, 37])
def test_training_forward_matches_reference_too(golden, golden_model, t):
    """With autograd the attention projects q, k, v in one convolution (fewer operations), without
    it one third at a time (less memory): both must be the reference's network."""
    lq = torch.from_numpy(golden["lq"])
    assert torch.is_grad_enabled()   # what selects the one-convolution projection
    out = golden_model(lq, torch.tensor([t]))
    assert rel_err(out.detach(), golden[f"forward_t{t}"]) <= TOL
    with torch.no_grad():
        lean = golden_model(lq, torch.tensor([t]))
    torch.testing.assert_close(lean, out.detach(), rtol=0, atol=1e-6)


def test_forward_accepts_int_and_per_sample_time(golden, golden_model):
    lq = torch.from_numpy(golden["lq"])
    with torch.no_grad():
        a = golden_model(lq, 500)
        b = golden_model(lq, torch.full((lq.shape[0],), 500))
    assert rel_err(a, golden["forward_t500"]) <= TOL
    assert rel_err(b, golden["forward_t500"]) <= TOL


SCHEDULES = [("euler", k) for k in (1, 2, 3, 4, 5, 10)] + [("heun", k) for k in (2, 3, 4)]


@pytest.mark.parametrize("solver,steps", SCHEDULES)
def test_sampler_matches_reference(golden, golden_model, solver, steps):
    lq = torch.from_numpy(golden["lq"])
    with torch.no_grad():
        out = sample(lambda x, t: golden_model(x, t), lq, make_schedule(steps, solver))
    assert rel_err(out, golden[f"{solver}_{steps}"]) <= TOL


@pytest.mark.parametrize("solver,steps", [("euler", 3), ("heun", 2)])
def test_engine_eager_matches_reference(golden, golden_state, golden_config, solver, steps):
    ckpt = LoadedCheckpoint(config=golden_config, state_dict=golden_state, meta=CheckpointMeta(), source="test")
    engine = Engine(ckpt, EngineConfig(steps=steps, solver=solver, clamp=False))
    out = engine.restore(torch.from_numpy(golden["lq"]))
    assert rel_err(out, golden[f"{solver}_{steps}"]) <= TOL
