"""Shared fixtures: the reference golden vectors and a tiny checkpoint made from them.

The cache of exported graphs points at a temporary folder for the session.

Also the Triton set-up: on a machine without a GPU the Triton kernels are tested in Triton's CPU
interpreter. Triton decides interpreter-or-compiler when a kernel is decorated (the first import
of an op module in `irflow_engine.kernels`), so TRITON_INTERPRET is set here, before any test
module imports one; an explicit TRITON_INTERPRET in the environment is left alone. With a GPU the
compiled kernels are tested on it instead.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile

# Exported graphs and engines go to a throw-away cache, not the user's ~/.cache/irflow_engine
# (set before irflow_engine is imported: config.CACHE_ROOT reads it once).
_CACHE = tempfile.mkdtemp(prefix="irflow-test-cache-")
os.environ["IRFLOW_CACHE_DIR"] = _CACHE
atexit.register(shutil.rmtree, _CACHE, ignore_errors=True)

if "TRITON_INTERPRET" not in os.environ:
    import torch as _torch  # importing torch does not import Triton

    if not _torch.cuda.is_available():
        os.environ["TRITON_INTERPRET"] = "1"

import json
from pathlib import Path

import numpy as np
import pytest
import torch

# On a GPU, "fp32" references must be fp32: cuDNN convolutions default to TF32 (10-bit mantissa),
# which alone differs from the CPU by ~1e-3 and would fail fp32 tolerances (e.g. CUDA vs CPU
# engine outputs at 1e-4). Tests that want TF32 turn it on themselves.
torch.backends.cudnn.allow_tf32 = False
torch.backends.cuda.matmul.allow_tf32 = False

FIXTURES = Path(__file__).parent / "fixtures"
GOLDEN = FIXTURES / "official_conditional_unet_nf8_d3.npz"
SHAPES = FIXTURES / "official_conditional_unet_state_dict_shapes.json"


@pytest.fixture(scope="session")
def golden():
    with np.load(GOLDEN) as d:
        return {k: d[k] for k in d.files}


@pytest.fixture(scope="session")
def golden_config(golden):
    from irflow_engine import ModelConfig

    cfg = json.loads(str(golden["config"]))
    return ModelConfig(nf=cfg["nf"], depth=cfg["depth"], in_nc=cfg["in_nc"], out_nc=cfg["out_nc"])


@pytest.fixture(scope="session")
def golden_state(golden):
    """The reference weights as a state dict (reference parameter names)."""
    return {k[len("state."):]: torch.from_numpy(v.copy()) for k, v in golden.items() if k.startswith("state.")}


@pytest.fixture(scope="session")
def golden_model(golden_state, golden_config):
    from irflow_engine.models import ConditionalUNet

    model = ConditionalUNet.from_config(golden_config)
    model.load_state_dict(golden_state, strict=True)
    return model.eval().requires_grad_(False)


@pytest.fixture(scope="session")
def one_level_model():
    """A seeded nf 8, depth 1 network, weights moved off the default init so every term matters.

    One level keeps torch.compile's CPU code generation short; the graph is the same code path
    as the full-size presets'.
    """
    from irflow_engine.models import ConditionalUNet

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = ConditionalUNet(nf=8, depth=1)
        for p in model.parameters():
            p.data.add_(0.05 * torch.randn_like(p))
    return model.eval().requires_grad_(False)


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory, golden_state, golden_config):
    """The golden weights saved in our safetensors format (nf 8, depth 3)."""
    from irflow_engine import CheckpointMeta, save_checkpoint

    path = tmp_path_factory.mktemp("ckpt") / "tiny.safetensors"
    return save_checkpoint(path, golden_state, golden_config,
                           CheckpointMeta(task="test", default_steps=2, default_solver="euler"))


def rel_err(a, b) -> float:
    a, b = torch.as_tensor(a).double(), torch.as_tensor(b).double()
    return float((a - b).abs().max() / b.abs().max())
