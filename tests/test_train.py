"""Training: the loss goes down, checkpoints load, resume is exact, consistency has a gradient."""

import json
import warnings

import numpy as np
import pytest
import torch

from irflow_engine import Engine, load_checkpoint
from irflow_engine.images import write_image
from irflow_engine.datasets import IMAGE_SETS, load_image_set, smooth_patch
from irflow_engine.train import TrainConfig, Trainer, TrainingDiverged


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("clean")
    rng = np.random.default_rng(0)
    for i in range(3):
        base = rng.uniform(0.1, 0.9, size=(5, 5, 3))
        img = np.kron(base, np.ones((8, 8, 1)))  # 40×40 blocks
        write_image(folder / f"img{i}.png", (img * 255).round().astype(np.uint8))
    return folder


def _config(tmp_path, tiny_checkpoint, tiny_data, **kw):
    base = dict(out_dir=str(tmp_path / "run"), model=str(tiny_checkpoint), data=str(tiny_data),
                degradation="noise", level_min=10.0, level_max=30.0, patch=16, batch=2, steps=4, lr=1e-3,
                warmup=0, consistency_k_min=2, consistency_k_max=3, checkpoint_every=2, log_every=1,
                ema_every=1, seed=3, device="cpu")
    base.update(kw)
    return TrainConfig(**base)


def _fixed_loss(trainer, batch):
    """Velocity loss on one fixed batch at fixed times (independent of the training RNGs)."""
    lq, gt = batch
    t = torch.tensor([100, 400, 700, 1000])
    x_t = (t / 1000).view(-1, 1, 1, 1) * lq + (1 - (t / 1000).view(-1, 1, 1, 1)) * gt
    with torch.no_grad():
        return float((trainer.model(x_t, t) - (x_t - gt)).abs().mean())


def test_loss_goes_down(tmp_path, tiny_checkpoint, tiny_data):
    trainer = Trainer(_config(tmp_path, tiny_checkpoint, tiny_data, steps=30, consistency_weight=0.0))
    rng = np.random.default_rng(11)
    pairs = [trainer.stream.source.sample(16, rng) for _ in range(4)]
    batch = tuple(torch.from_numpy(np.stack(v)) for v in zip(*pairs))
    before = _fixed_loss(trainer, batch)
    for _ in range(30):
        trainer.train_step()
    after = _fixed_loss(trainer, batch)
    assert after < 0.8 * before, (before, after)


def test_run_writes_loadable_checkpoints_and_log(tmp_path, tiny_checkpoint, tiny_data):
    cfg = _config(tmp_path, tiny_checkpoint, tiny_data, bundle_to=str(tmp_path / "bundle.safetensors"))
    Trainer(cfg).run(progress=False)
    run = tmp_path / "run"
    for name in ("model.safetensors", "ema.safetensors"):
        loaded = load_checkpoint(run / name)
        assert loaded.meta.task == "denoise"
        assert loaded.meta.degradation == {"name": "noise", "level_range": [10.0, 30.0]}
        assert loaded.meta.extra["train_steps"] == 4
    bundled = load_checkpoint(tmp_path / "bundle.safetensors")
    assert bundled.state_dict["final_conv.weight"].dtype == torch.float32  # stored fp16, loaded fp32
    engine = Engine.from_checkpoint(run / "ema.safetensors")
    assert engine.restore(np.zeros((9, 7, 3), np.uint8) + 100).shape == (9, 7, 3)
    lines = [json.loads(l) for l in (run / "log.jsonl").read_text().splitlines()]
    assert [l["step"] for l in lines] == [1, 2, 3, 4]
    assert all(np.isfinite(l["loss"]) and l["consistency"] > 0 for l in lines)
    assert json.loads((run / "config.json").read_text())["steps"] == 4


def test_fine_tune_header_counts_the_base_steps(tmp_path, tiny_checkpoint, tiny_data):
    """Fine-tuning a trained checkpoint for 2 steps: the header keeps the base's architecture preset,
    counts 4 + 2 training steps and names the base (before: no preset, 2 steps)."""
    Trainer(_config(tmp_path, tiny_checkpoint, tiny_data)).run(progress=False)
    base = tmp_path / "run" / "ema.safetensors"
    Trainer(_config(tmp_path, base, tiny_data, out_dir=str(tmp_path / "ft"), steps=2)).run(progress=False)
    meta = load_checkpoint(tmp_path / "ft" / "ema.safetensors").meta
    assert meta.preset == load_checkpoint(base).meta.preset
    assert meta.extra == {"train_steps": 6, "fine_tuned_from": "ema.safetensors", "fine_tune_steps": 2}


def test_resume_is_exact(tmp_path, tiny_checkpoint, tiny_data):
    straight = Trainer(_config(tmp_path / "a", tiny_checkpoint, tiny_data))
    expected = [straight.train_step()["loss"] for _ in range(4)]

    first = Trainer(_config(tmp_path / "b", tiny_checkpoint, tiny_data))
    losses = [first.train_step()["loss"] for _ in range(2)]
    first.save()          # the last checkpoint before a "crash"
    first.train_step()    # work lost in the crash
    resumed = Trainer(_config(tmp_path / "b", tiny_checkpoint, tiny_data))
    resumed.resume()
    assert resumed.step == 2
    losses += [resumed.train_step()["loss"] for _ in range(2)]
    assert losses == expected


def test_resume_warns_about_changed_options(tmp_path, tiny_checkpoint, tiny_data):
    first = Trainer(_config(tmp_path, tiny_checkpoint, tiny_data))
    first.train_step()
    first.save()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Trainer(_config(tmp_path, tiny_checkpoint, tiny_data)).resume()   # same options: silent
    resumed = Trainer(_config(tmp_path, tiny_checkpoint, tiny_data, lr=5e-4, steps=6))
    with pytest.warns(UserWarning, match="differ from the saved run") as record:
        resumed.resume()
    message = str(record[0].message)
    assert "lr 0.001 -> 0.0005 (ignored" in message and "steps 4 -> 6;" in message
    assert resumed.opt.param_groups[0]["initial_lr"] == 1e-3   # the saved schedule won


def test_resume_truncates_log(tmp_path, tiny_checkpoint, tiny_data):
    cfg = _config(tmp_path, tiny_checkpoint, tiny_data, checkpoint_every=2)
    Trainer(cfg).run(progress=False)
    log = tmp_path / "run" / "log.jsonl"
    with open(log, "a") as f:
        f.write(json.dumps({"step": 5, "loss": 1.0}) + "\n")  # written after the last checkpoint
    t = Trainer(_config(tmp_path, tiny_checkpoint, tiny_data, steps=6))
    with pytest.warns(UserWarning, match="steps 4 -> 6"):
        t.resume()
    assert [json.loads(l)["step"] for l in log.read_text().splitlines()] == [1, 2, 3, 4]


@pytest.mark.parametrize("grad_steps", [1, 0])
def test_consistency_term_has_gradient(tmp_path, tiny_checkpoint, tiny_data, grad_steps):
    trainer = Trainer(_config(tmp_path, tiny_checkpoint, tiny_data, consistency_grad_steps=grad_steps))
    lq, gt = (v for v in next(iter(trainer.loader)))
    _, _, consistency = trainer.losses(lq, gt)
    assert consistency.requires_grad
    consistency.backward()
    grads = [p.grad for p in trainer.model.parameters() if p.grad is not None]
    assert grads and sum(float(g.abs().sum()) for g in grads) > 0
    assert trainer.model.init_conv.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("schedule, times", [("uniform", [1000, 666, 333]), ("euler", [1000, 200, 100])])
def test_consistency_schedule_sets_the_sampler_times(tmp_path, tiny_checkpoint, tiny_data, schedule, times):
    trainer = Trainer(_config(tmp_path, tiny_checkpoint, tiny_data, consistency_k_min=3, consistency_k_max=3,
                              consistency_schedule=schedule))
    seen = []
    trainer.model.register_forward_pre_hook(lambda _m, args: seen.append(args[1]))
    lq, gt = next(iter(trainer.loader))
    trainer.losses(lq, gt)
    assert len(seen) == 4 and torch.is_tensor(seen[0])   # the velocity term: one random t per sample
    assert [int(t) for t in seen[1:]] == times


def test_bad_config(tmp_path, tiny_checkpoint, tiny_data):
    with pytest.raises(ValueError, match="degradation"):
        _config(tmp_path, tiny_checkpoint, tiny_data, degradation="fog")
    with pytest.raises(ValueError, match="consistency_k_min"):
        _config(tmp_path, tiny_checkpoint, tiny_data, consistency_k_min=5, consistency_k_max=2)
    with pytest.raises(ValueError, match="consistency_schedule"):
        _config(tmp_path, tiny_checkpoint, tiny_data, consistency_schedule="heun")
    with pytest.raises(ValueError, match="divergence_factor"):
        _config(tmp_path, tiny_checkpoint, tiny_data, divergence_factor=1.0)
    with pytest.raises(ValueError, match="grad_clip"):
        _config(tmp_path, tiny_checkpoint, tiny_data, grad_clip=0.0)
    with pytest.raises(ValueError, match="smooth_fraction"):
        _config(tmp_path, tiny_checkpoint, tiny_data, smooth_fraction=1.0)
    with pytest.raises(ValueError, match="smooth_fraction"):
        _config(tmp_path, tiny_checkpoint, tiny_data, smooth_fraction=0.5, lq_dir=str(tiny_data))
    for power in (0, -1.0, 11, "2"):
        with pytest.raises(ValueError, match="level_power must be in"):
            _config(tmp_path, tiny_checkpoint, tiny_data, level_power=power)
    with pytest.raises(ValueError, match="level_power needs synthetic mode"):
        _config(tmp_path, tiny_checkpoint, tiny_data, level_power=2.0, lq_dir=str(tiny_data))
    (tmp_path / "bad.json").write_text(json.dumps({"stepz": 3}))
    with pytest.raises(ValueError, match="stepz"):
        TrainConfig.from_json(tmp_path / "bad.json")
    (tmp_path / "image.json").write_bytes(b"\x89PNG\r\n\x1a\n\x95 not text")
    with pytest.raises(ValueError, match="image.json: not a JSON training config"):
        TrainConfig.from_json(tmp_path / "image.json")
    (tmp_path / "list.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match="a JSON object of options, got list"):
        TrainConfig.from_json(tmp_path / "list.json")
    with pytest.raises(ValueError, match="training config .*nope.json does not exist"):
        TrainConfig.from_json(tmp_path / "nope.json")


@pytest.mark.parametrize("warmup", [True, False])
def test_ema_update(tmp_path, tiny_checkpoint, tiny_data, warmup):
    trainer = Trainer(_config(tmp_path, tiny_checkpoint, tiny_data, ema_every=2, ema_warmup=warmup))
    init = {k: v.clone() for k, v in trainer.ema.state_dict().items()}
    trainer.train_step()
    assert all(torch.equal(v, init[k]) for k, v in trainer.ema.state_dict().items())  # not yet
    trainer.train_step()
    decay = 0.1 if warmup else 0.995  # first update: min(β, 1/10) with warm-up, β without
    assert trainer.ema_decay(0) == decay
    for k, v in trainer.ema.state_dict().items():
        expected = decay * init[k] + (1 - decay) * trainer.model.state_dict()[k]
        torch.testing.assert_close(v, expected, rtol=1e-5, atol=1e-6)
    assert trainer.ema_decay(10_000) == 0.995


def test_time_budget_fits_steps(tmp_path, tiny_checkpoint, tiny_data):
    from irflow_engine.train import TIME_PROBE_STEPS

    trainer = Trainer(_config(tmp_path, tiny_checkpoint, tiny_data, steps=10_000, time_budget_s=30.0))
    trainer.step = 40
    assert trainer.fit_steps_to_budget(seconds_per_step=0.5, elapsed=10.0) == 40 + 40  # 20 s left
    assert trainer.cfg.steps == 80
    # A later fit (the end of the warm-up) may move it either way, never past the steps asked for.
    assert trainer.fit_steps_to_budget(seconds_per_step=0.25, elapsed=10.0) == 40 + 80
    assert trainer.fit_steps_to_budget(seconds_per_step=1e-6, elapsed=0.0) == 10_000
    assert trainer.fit_steps_to_budget(seconds_per_step=1.0, elapsed=99.0) == 41      # over budget: stop next
    # Fitted after the probe, and again at the end of a longer learning-rate warm-up.
    assert trainer.fit_points(0) == (TIME_PROBE_STEPS // 2, [TIME_PROBE_STEPS])
    trainer.cfg.warmup = 100
    assert trainer.fit_points(0) == (TIME_PROBE_STEPS // 2, [TIME_PROBE_STEPS, 100])
    assert trainer.fit_points(500) == (500 + TIME_PROBE_STEPS // 2, [500 + TIME_PROBE_STEPS])  # resumed
    # A real run: the total is fitted after the probe steps and recorded in config.json.
    cfg = _config(tmp_path / "b", tiny_checkpoint, tiny_data, steps=10_000, time_budget_s=1e-3,
                  checkpoint_every=1000)
    Trainer(cfg).run(progress=False)
    saved = json.loads((tmp_path / "b" / "run" / "config.json").read_text())
    assert saved["steps"] == TIME_PROBE_STEPS + 1
    assert load_checkpoint(tmp_path / "b" / "run" / "model.safetensors").meta.extra["train_steps"] == saved["steps"]


def test_time_budget_is_refitted_at_the_end_of_the_warmup(tmp_path, tiny_checkpoint, tiny_data, monkeypatch,
                                                         capsys):
    """Steps that get slower after the probe (here 2 s, then 6 s from step 61: on the CPU, larger
    consistency K drawn later) are caught by the second fit at the end of the warm-up (step 100)."""
    import irflow_engine.train as train_mod

    clock = [0.0]
    monkeypatch.setattr(train_mod.time, "perf_counter", lambda: clock[0])

    def fake_step(self):
        self.step += 1
        clock[0] += 2.0 if self.step <= 60 else 6.0
        return {"step": self.step, "loss": 1.0, "velocity": 1.0, "consistency": 0.0}

    monkeypatch.setattr(Trainer, "train_step", fake_step)
    cfg = _config(tmp_path, tiny_checkpoint, tiny_data, steps=10_000, warmup=100, time_budget_s=1000.0,
                  checkpoint_every=10_000, log_every=50)
    trainer = Trainer(cfg)
    trainer.run(progress=False)
    err = capsys.readouterr().err
    # Step 40: 2 s/step timed over steps 21-40, 920 s left -> 460 more. Step 100: (360 - 40) s over
    # 80 steps = 4 s/step, 640 s left -> 160 more.
    assert "2000.0 ms/step over 20 steps: 500 steps fit" in err
    assert "4000.0 ms/step over 80 steps: 260 steps fit" in err
    assert trainer.step == 260 and clock[0] == 120 + 200 * 6
    assert json.loads((tmp_path / "run" / "config.json").read_text())["steps"] == 260


def test_time_budget_must_be_positive(tmp_path, tiny_checkpoint, tiny_data):
    with pytest.raises(ValueError, match="time_budget_s"):
        _config(tmp_path, tiny_checkpoint, tiny_data, time_budget_s=0.0)


def test_smooth_patch_is_smooth_and_seeded():
    a = smooth_patch(48, np.random.default_rng(5))
    b = smooth_patch(48, np.random.default_rng(5))
    assert a.shape == (48, 48, 3) and a.dtype == np.uint8
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, smooth_patch(48, np.random.default_rng(6)))
    # slowly varying: neighbouring pixels differ by at most a few levels (ramp + bumps + rounding)
    v = a.astype(int)
    assert np.abs(np.diff(v, axis=0)).max() <= 3 and np.abs(np.diff(v, axis=1)).max() <= 3
    # but not a constant: the ramps/bumps vary across patches
    spans = [np.ptp(smooth_patch(48, np.random.default_rng(s)).astype(int)) for s in range(20)]
    assert max(spans) > 10


@pytest.mark.parametrize("fraction", [0.0, 0.5])
def test_smooth_fraction_mixes_patches(tmp_path, tiny_checkpoint, tiny_data, fraction):
    trainer = Trainer(_config(tmp_path, tiny_checkpoint, tiny_data, smooth_fraction=fraction, level_min=0.0,
                              level_max=0.0))
    rng = np.random.default_rng(2)
    gts = [trainer.stream.source.sample(16, rng)[1] for _ in range(200)]
    # tiny_data patches are 8×8 constant blocks: a 16 px crop has a sharp edge unless it is smooth
    smooth = sum(np.abs(np.diff(g, axis=1)).max() * 255 <= 3 and np.abs(np.diff(g, axis=2)).max() * 255 <= 3
                 for g in gts)
    if fraction == 0.0:
        assert smooth < 200 * 0.15
    else:
        assert 200 * 0.35 < smooth < 200 * 0.8


def test_level_power_reaches_the_patch_source(tmp_path, tiny_checkpoint, tiny_data):
    """The trainer's patches are degraded at levels drawn with the config's power."""
    trainer = Trainer(_config(tmp_path, tiny_checkpoint, tiny_data, level_min=0.0, level_max=50.0, level_power=3.0))
    assert trainer.stream.source.level_power == 3.0
    rng = np.random.default_rng(4)
    # noise level of each pair, measured: std of (lq - gt) in 0-255 units (clipping lowers it a little)
    sigmas = np.array([np.std(lq - gt) * 255 for lq, gt in (trainer.stream.source.sample(16, rng) for _ in range(300))])
    # power 3: P(level < 50/8) = 0.5; uniform draws would give 0.125
    assert 0.4 < np.mean(sigmas < 50 / 8) < 0.6


@pytest.mark.parametrize("clip", [None, 1e-3])
def test_grad_clip_bounds_the_applied_gradient(tmp_path, tiny_checkpoint, tiny_data, clip):
    trainer = Trainer(_config(tmp_path, tiny_checkpoint, tiny_data, grad_clip=clip))
    record = trainer.train_step()
    applied = torch.linalg.vector_norm(
        torch.stack([torch.linalg.vector_norm(p.grad) for p in trainer.model.parameters() if p.grad is not None]))
    assert record["grad_norm"] > 1e-2            # the norm before clipping, as logged
    if clip is None:
        assert float(applied) == pytest.approx(record["grad_norm"], rel=1e-5)
    else:
        assert float(applied) == pytest.approx(clip, rel=1e-3)


def test_divergence_check_threshold(tmp_path, tiny_checkpoint, tiny_data):
    trainer = Trainer(_config(tmp_path, tiny_checkpoint, tiny_data, divergence_factor=20.0))
    rng = np.random.default_rng(0)
    for v in rng.uniform(0.5, 1.5, 30):          # warm-up and ordinary variation: no error
        trainer.check_divergence(float(v))
    trainer.check_divergence(15.0)                # below 20 x the running mean (~1)
    with pytest.raises(TrainingDiverged, match="loss 40"):
        trainer.check_divergence(40.0)
    with pytest.raises(TrainingDiverged, match="loss nan"):
        trainer.check_divergence(float("nan"))
    off = Trainer(_config(tmp_path, tiny_checkpoint, tiny_data, divergence_factor=None))
    for v in (1.0,) * 30 + (1e6,):
        off.check_divergence(v)                   # disabled: only non-finite losses stop a run
    with pytest.raises(TrainingDiverged):
        off.check_divergence(float("inf"))


def test_divergence_stops_before_update_and_save(tmp_path, tiny_checkpoint, tiny_data):
    trainer = Trainer(_config(tmp_path, tiny_checkpoint, tiny_data, steps=8, checkpoint_every=2))
    real = trainer.losses

    def blow_up_at_step_5(lq, gt):
        loss, v, c = real(lq, gt)
        return (loss * float("nan"), v, c) if trainer.step == 4 else (loss, v, c)

    trainer.losses = blow_up_at_step_5
    with pytest.raises(TrainingDiverged, match="step 5"):
        trainer.run(progress=False)
    assert trainer.step == 4
    assert all(torch.isfinite(p).all() for p in trainer.model.parameters())
    state = torch.load(tmp_path / "run" / "train_state.pt", weights_only=True)
    assert state["step"] == 4


def test_image_sets_are_uint8_rgb_and_hold_out_the_eval_images():
    pytest.importorskip("skimage")
    sets = {spec: load_image_set(spec) for spec in IMAGE_SETS}
    for spec, images in sets.items():
        assert [n for n, _ in images] == list(IMAGE_SETS[spec])
        for name, img in images:
            assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3, (spec, name)
            assert min(img.shape[:2]) >= 48 and np.ptp(img) > 100, (spec, name)  # a real photograph
    wide = dict(sets["skimage:train-wide"])
    assert set(dict(sets["skimage:train"])) < set(wide)
    assert not set(wide) & set(dict(sets["skimage:heldout"]))
    # the float phantom is scaled to 0-255, not truncated to 0/1
    assert wide["shepp_logan_phantom"].max() == 255 and len(np.unique(wide["shepp_logan_phantom"])) > 4
    with pytest.raises(ValueError, match="skimage:train-wide"):
        load_image_set("skimage:nope")


def test_cli_options_override_the_json_and_none_unsets(tmp_path):
    import argparse
    from irflow_engine.train import add_train_arguments, config_from_args
    cfg_file = tmp_path / "c.json"
    cfg_file.write_text(json.dumps({"steps": 7, "grad_clip": 1.0, "bundle_to": "w.safetensors", "lr": 3e-4}))
    p = argparse.ArgumentParser()
    add_train_arguments(p)
    cfg = config_from_args(p.parse_args(["--config", str(cfg_file), "--steps", "9", "--grad-clip", "none",
                                         "--bundle-to", "None", "--divergence-factor", "5"]))
    assert (cfg.steps, cfg.grad_clip, cfg.bundle_to, cfg.divergence_factor, cfg.lr) == (9, None, None, 5.0, 3e-4)
    with pytest.raises(SystemExit):
        p.parse_args(["--steps", "none"])      # not an Optional option


def _blow_up(trainer, at_steps):
    """Make the loss NaN whenever the step about to run is in `at_steps` (a mutable set)."""
    real = trainer.losses

    def losses(lq, gt):
        loss, v, c = real(lq, gt)
        if trainer.step + 1 in at_steps:
            at_steps.discard(trainer.step + 1)
            return loss * float("nan"), v, c
        return loss, v, c

    trainer.losses = losses


def test_divergence_rollback_goes_back_and_halves_the_lr(tmp_path, tiny_checkpoint, tiny_data):
    cfg = dict(steps=8, checkpoint_every=2, divergence_rollbacks=1)
    trainer = Trainer(_config(tmp_path, tiny_checkpoint, tiny_data, **cfg))
    seen = []
    real_losses = trainer.losses

    def record(lq, gt):
        seen.append((trainer.step, lq.clone()))
        return real_losses(lq, gt)

    trainer.losses = record
    _blow_up(trainer, {6})
    last = trainer.run(progress=False)
    assert trainer.step == 8 and trainer.rollbacks == 1 and trainer.lr_scale == 0.5
    # step 6 diverged: back to the checkpoint at step 4, then steps 5, 6 again on new batches
    assert [s for s, _ in seen] == [0, 1, 2, 3, 4, 5, 4, 5, 6, 7]
    assert not torch.equal(seen[5][1], seen[7][1])
    steps = [json.loads(l)["step"] for l in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert steps == list(range(1, 9))
    plain = Trainer(_config(tmp_path / "plain", tiny_checkpoint, tiny_data, steps=8))
    assert last["lr"] == pytest.approx(0.5 * plain._lr_factor(8) * 1e-3)
    state = torch.load(tmp_path / "run" / "train_state.pt", weights_only=True)
    assert (state["lr_scale"], state["rollbacks"]) == (0.5, 1)
    resumed = Trainer(_config(tmp_path, tiny_checkpoint, tiny_data, **cfg))
    resumed.resume()
    assert (resumed.lr_scale, resumed.rollbacks) == (0.5, 1)


def test_divergence_rollbacks_run_out(tmp_path, tiny_checkpoint, tiny_data):
    trainer = Trainer(_config(tmp_path, tiny_checkpoint, tiny_data, steps=8, checkpoint_every=2,
                              divergence_rollbacks=1))
    _blow_up(trainer, {6, 7})     # diverges at 6, rolls back to 4, diverges again at 7
    with pytest.raises(TrainingDiverged, match="step 7.*--divergence-rollbacks"):
        trainer.run(progress=False)
    assert trainer.rollbacks == 1 and trainer.step == 6
    early = Trainer(_config(tmp_path / "early", tiny_checkpoint, tiny_data, steps=8, checkpoint_every=4,
                            divergence_rollbacks=1))
    (tmp_path / "early" / "run").mkdir(parents=True)
    (tmp_path / "run" / "train_state.pt").rename(tmp_path / "early" / "run" / "train_state.pt")
    _blow_up(early, {2})          # nothing saved yet by this run (the state there is another's): stop
    with pytest.raises(TrainingDiverged, match="step 2"):
        early.run(progress=False)


def test_divergence_check_stays_armed_after_resume(tmp_path, tiny_checkpoint, tiny_data):
    cfg = dict(steps=24, checkpoint_every=22)
    first = Trainer(_config(tmp_path, tiny_checkpoint, tiny_data, **cfg))
    for _ in range(22):
        first.train_step()
    first.save()
    state = torch.load(tmp_path / "run" / "train_state.pt", weights_only=True)
    assert state["loss_seen"] == 22 and state["loss_mean"] == pytest.approx(first.loss_mean)
    resumed = Trainer(_config(tmp_path, tiny_checkpoint, tiny_data, **cfg))
    resumed.resume()
    assert resumed.loss_mean == pytest.approx(first.loss_mean)
    resumed.losses = _scaled_at(resumed, {23: 1000.0})     # finite, but 1000x the usual loss
    with pytest.raises(TrainingDiverged, match="step 23"):
        resumed.train_step()


def _scaled_at(trainer, factors):
    real = trainer.losses

    def losses(lq, gt):
        loss, v, c = real(lq, gt)
        return loss * factors.get(trainer.step + 1, 1.0), v, c

    return losses


def test_shipped_training_configs_load():
    """Every recipe in configs/ (make train-defaults, the GPU and fine-tune recipes of docs/MODELS.md)
    is a valid TrainConfig whose starting model resolves (a preset or a bundled model)."""
    from pathlib import Path

    from irflow_engine.checkpoint import resolve

    paths = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.json"))
    assert len(paths) >= 4
    for path in paths:
        cfg = TrainConfig.from_json(path)
        assert resolve(cfg.model).config.nf == 16, path.name
