"""Each bundled model loads by name and restores a held-out photograph (a quality floor).

The floors are far below the measured gains (docs/MODELS.md) so that they only catch a broken
model, loader or schedule, not normal variation.
"""

import numpy as np
import pytest

from irflow_engine import Engine
from irflow_engine.checkpoint import BUNDLED_DIR
from irflow_engine.datasets import SKIMAGE_HELD_OUT, skimage_image
from irflow_engine.evaluate import image_metrics, synthetic_pairs

CASES = [("irflow-denoise-s", "noise", 25.0, 4.0), ("irflow-derain-s", "rain", 0.6, 2.0)]


@pytest.mark.parametrize("name,degradation,level,floor_db", CASES)
def test_bundled_model_improves_psnr(name, degradation, level, floor_db):
    if not (BUNDLED_DIR / f"{name}.safetensors").is_file():
        pytest.skip(f"{name} is not bundled in {BUNDLED_DIR}")
    clean = skimage_image(SKIMAGE_HELD_OUT[0])[60:220, 120:280]  # 160×160, never seen in training
    (_, degraded, _), = synthetic_pairs([("crop", clean)], degradation, level, seed=0)
    engine = Engine.from_checkpoint(name)
    assert not engine.checkpoint.random_weights and engine.schedule.steps == 3
    restored = engine.restore(degraded)
    before = image_metrics(degraded, clean)["psnr_rgb"]
    after = image_metrics(restored, clean)["psnr_rgb"]
    assert after >= before + floor_db, (before, after)
    assert np.abs(restored.astype(int) - clean.astype(int)).mean() < np.abs(degraded.astype(int) - clean.astype(int)).mean()
