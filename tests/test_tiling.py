"""Tiled restoration: the grid, exact blending weights, agreement with whole frames, OOM retry."""

import logging

import numpy as np
import pytest
import torch

from irflow_engine import Engine
from irflow_engine.tiling import check_tile_options, fallback_tile, plan_tiles, restore_tiled, tile_weights


@pytest.mark.parametrize("h,w,tile,overlap", [(100, 130, 48, 12), (37, 53, 16, 4), (64, 64, 64, 8), (30, 200, 64, 31)])
def test_grid_covers_the_frame_with_equal_tiles(h, w, tile, overlap):
    g = plan_tiles(h, w, tile, overlap)
    assert (g.tile_h, g.tile_w) == (min(tile, h), min(tile, w))
    for starts, size, full in ((g.ys, g.tile_h, h), (g.xs, g.tile_w, w)):
        assert starts[0] == 0 and starts[-1] + size == full
        gaps = np.diff(starts)
        assert (gaps > 0).all() and (gaps <= size - overlap).all()   # neighbours share >= overlap pixels


@pytest.mark.parametrize("h,w,tile,overlap", [(100, 130, 48, 12), (37, 53, 16, 4), (21, 90, 32, 8)])
def test_pointwise_function_is_reproduced_exactly(h, w, tile, overlap):
    """Weights are normalised: a per-pixel function gives the untiled result at every pixel."""
    y = torch.rand(2, 3, h, w, generator=torch.Generator().manual_seed(1))
    f = lambda t: t * t + 0.1 * torch.sin(7 * t)  # noqa: E731
    calls = []
    out = restore_tiled(lambda t: calls.append(t.shape) or f(t), y, tile, overlap)
    torch.testing.assert_close(out, f(y), rtol=0, atol=2e-6)
    assert len(calls) == 1 and calls[0][0] == 2 * len(plan_tiles(h, w, tile, overlap))


def test_neighbouring_weights_sum_to_one_across_an_overlap():
    g = plan_tiles(64, 112, 64, 16)          # xs = (0, 48): one overlap of exactly 16 pixels
    assert g.xs == (0, 48)
    left, right = tile_weights(g, 16, 0, 0)[0], tile_weights(g, 16, 0, 1)[0]
    total = left[48:] + right[:16]
    torch.testing.assert_close(total, torch.ones(16), rtol=0, atol=2e-4)
    assert left[:48].eq(1).all() and right[16:].eq(1).all()
    assert right[0] < 1e-3 and right[15] == 1            # the tile's own border barely counts


def test_bad_tile_options_are_refused():
    with pytest.raises(ValueError, match="tile_overlap .* got 16 for tile 32 .*a larger tile or a smaller overlap"):
        plan_tiles(100, 100, 32, 16)
    with pytest.raises(ValueError, match="tile must be a positive integer"):
        plan_tiles(100, 100, 0, 0)
    with pytest.raises(ValueError, match="tile must be a positive integer.*None"):
        plan_tiles(100, 100, None, 0)
    check_tile_options(None, 500)      # whole frames: any overlap >= 0
    check_tile_options(65, 32)         # the largest overlap a 65 px tile allows
    for tile, overlap, match in [(None, -1, "integer >= 0"), (64, True, "integer >= 0"), (True, 0, "tile must"),
                                 (64, 32, r"\[0, 32\), got 32"), (64.0, 8, "tile must")]:
        with pytest.raises(ValueError, match=match):
            check_tile_options(tile, overlap)


def test_local_filter_is_reproduced_across_tile_borders():
    """A 5×5 filter (receptive radius 2 < overlap): the feathered tiles give the whole-frame result.

    Each tile pads its own borders (replicate), so a tile's outermost 2 pixels are wrong, but
    there its feathering weight is < 1e-3 of its neighbour's: tolerance 5e-4 of values up to ~1
    (measured 7e-5). Tiles meeting edge to edge (overlap 0) are off by ~0.6: a seam.
    """
    g = torch.Generator().manual_seed(4)
    weight = torch.randn(3, 3, 5, 5, generator=g) / 15
    f = lambda t: torch.nn.functional.conv2d(torch.nn.functional.pad(t, (2, 2, 2, 2), mode="replicate"), weight)  # noqa: E731
    y = torch.rand(1, 3, 100, 130, generator=g)
    for overlap in (16, 8):
        assert float((restore_tiled(f, y, 48, overlap) - f(y)).abs().max()) < 5e-4
    assert float((restore_tiled(f, y, 48, 0) - f(y)).abs().max()) > 0.1


def test_bundled_denoiser_in_tiles_keeps_its_quality():
    """The bundled denoiser on a noisy 256×320 frame, in 128 px tiles (overlap 32) vs whole.

    Its linear attention sees the whole tile and normalises by the tile's pixel count, so tiles
    cannot equal the whole frame (mean |difference| measured 0.004; 64 px tiles cost this model
    2–3 dB, see docs/MODELS.md); what must hold is quality: PSNR within 0.1 dB of the whole frame
    (measured −0.02 dB), and feathering must beat tiles meeting edge to edge (measured by 0.16 dB).
    """
    from irflow_engine.degrade import gaussian_noise
    from irflow_engine.video.synth import pan_frames

    engine = Engine.from_checkpoint("irflow-denoise-s", steps=1)
    clean = pan_frames((320, 256), 1)[0]
    noisy = gaussian_noise(clean, 25.0, np.random.default_rng(0))
    y = torch.from_numpy(noisy).permute(2, 0, 1)[None].contiguous()
    truth = torch.from_numpy(clean).permute(2, 0, 1)[None]

    def psnr(x):
        return float(10 * torch.log10(1 / ((x.clamp(0, 1) - truth) ** 2).mean()))

    whole = engine.restore_batch(y)
    tiled = engine.restore_batch(y, tile=128, tile_overlap=32)
    assert len(plan_tiles(256, 320, 128, 32)) == 9
    assert float((tiled - whole).abs().mean()) < 0.006
    assert psnr(tiled) > psnr(whole) - 0.1
    edge_to_edge = restore_tiled(engine.restore_batch, y, 128, 0)
    assert psnr(tiled) > psnr(edge_to_edge) + 0.08


def test_cuda_oom_is_retried_once_in_tiles(tiny_checkpoint, caplog):
    """A backend that runs out of memory above 48×48 pixels: the engine retries in tiles and says so."""
    engine = Engine.from_checkpoint(tiny_checkpoint, steps=1)
    real = engine.backend.restore
    seen = []

    def restore(y):
        seen.append(tuple(y.shape))
        if y.shape[-2] * y.shape[-1] > 48 * 48:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB (fake)")
        return real(y)

    engine.backend.restore = restore
    y = torch.rand(1, 3, 72, 96, generator=torch.Generator().manual_seed(2))
    with caplog.at_level(logging.WARNING):
        out = engine.restore_batch(y)
    tile = fallback_tile(72, 96, engine.model_config.pad_multiple)
    assert engine.oom_tile == tile == 48
    assert "out of memory" in caplog.text and "48×48 tiles" in caplog.text
    engine.backend.restore = real
    torch.testing.assert_close(out, restore_tiled(engine.restore_batch, y, 48, 12), rtol=0, atol=0)
    # Later calls tile straight away: no whole-frame attempt.
    engine.backend.restore = restore
    seen.clear()
    engine.restore_batch(y)
    assert seen and all(s[-2:] == (48, 48) for s in seen)


def test_oom_in_tiles_too_is_raised(tiny_checkpoint):
    engine = Engine.from_checkpoint(tiny_checkpoint, steps=1)

    def restore(y):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory (fake)")

    engine.backend.restore = restore
    with pytest.raises(torch.cuda.OutOfMemoryError):
        engine.restore_batch(torch.rand(1, 3, 40, 40))


def test_restore_with_tile_keeps_the_frame_kind(tiny_checkpoint):
    engine = Engine.from_checkpoint(tiny_checkpoint, steps=1)
    img = np.random.default_rng(3).integers(0, 256, (50, 70, 3), dtype=np.uint8)
    out = engine.restore(img, tile=32, tile_overlap=8)
    assert out.shape == img.shape and out.dtype == np.uint8
