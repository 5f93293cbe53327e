"""The divergence guard: spikes skipped, an explosion rolled back, training carried on."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from fxclone.errors import FxcloneNotice
from fxclone.guard import DivergenceGuard
from fxclone.models.registry import create_model
from fxclone.training import TrainConfig, fit


def _fed(guard: DivergenceGuard, losses: list[float]) -> list[str]:
    actions = []
    for step, loss in enumerate(losses):
        guard.maybe_snapshot(step, lambda step=step: {"step": step})
        actions.append(guard.check(loss))
    return actions


def test_a_lone_spike_is_skipped_not_rolled_back() -> None:
    guard = DivergenceGuard()
    actions = _fed(guard, [1.0 - 0.01 * i for i in range(30)] + [500.0, float("nan"), 0.7])
    assert actions[:30] == ["ok"] * 30
    assert actions[30:] == ["skip", "skip", "ok"]
    assert guard.skipped == 2 and not guard.rollbacks and guard.lr_scale == 1.0


def test_a_run_of_spikes_restores_an_older_snapshot_and_halves_the_rate() -> None:
    guard = DivergenceGuard(snapshot_every=20)
    actions = _fed(guard, [0.5] * 50 + [1e4] * 3)
    assert actions[-3:] == ["skip", "skip", "rollback"]
    state = guard.restore(step=52)
    # snapshots at steps 0, 20, 40 (two kept): the older one is restored
    assert state == {"step": 20}
    assert guard.lr_scale == 0.5
    assert [(r.step, r.restored_step) for r in guard.rollbacks] == [(52, 20)]
    assert "exploded 1 time(s)" in (guard.summary() or "")


def test_state_survives_a_checkpoint() -> None:
    guard = DivergenceGuard()
    _fed(guard, [0.5] * 30 + [1e4] * 3)
    guard.restore(step=33)
    again = DivergenceGuard()
    again.load_state_dict(guard.state_dict())
    assert again.state_dict() == guard.state_dict()
    assert again.check(1e4) == "skip"  # the healthy history came back with it


def _items(seconds: int, seed: int) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    items = []
    for _ in range(seconds):
        x = (0.3 * rng.standard_normal((1, 8000))).astype(np.float32)
        y = np.tanh(2.0 * x + 0.5 * np.roll(x, 3, axis=1)).astype(np.float32)
        items.append((x, y, np.zeros(0, np.float32)))
    return items


def _train(tmp_path: Path, guarded: bool, epochs: int) -> float:
    """Train a small WaveNet whose weights are thrown off a cliff at its 16th training step."""
    torch.manual_seed(0)
    model = create_model("wavenet-nano", sample_rate=8000)
    calls = [0]
    step = model.step

    def poisoned(x: torch.Tensor, knobs: torch.Tensor, state: tuple) -> tuple:
        if model.training:
            calls[0] += 1
            if calls[0] == 16:
                with torch.no_grad():
                    for p in model.parameters():
                        p.mul_(300.0)
        return step(x, knobs, state)

    model.step = poisoned  # type: ignore[method-assign]
    config = TrainConfig(
        model="wavenet-nano",
        batch_size=4,
        segment_samples=1024,
        windows_per_epoch=40,
        max_epochs=epochs,
        patience=1000,
        learning_rate=0.005,
        divergence_guard=guarded,
        seed=1,
    )
    result = fit(model, _items(6, 0), _items(1, 1), config, tmp_path / "run", progress=False)
    return result.best_val_esr


def test_the_trainer_recovers_from_an_explosion(tmp_path: Path, monkeypatch) -> None:
    import functools

    import fxclone.stage_module

    # snapshots every 5 steps (20 by default), so a short run shows the whole cycle
    quick = functools.partial(DivergenceGuard, snapshot_every=5, min_history=5)
    monkeypatch.setattr(fxclone.stage_module, "DivergenceGuard", quick)
    with pytest.warns(FxcloneNotice, match=r"exploded 1 time\(s\), at step 1\d"):
        guarded = _train(tmp_path / "guarded", guarded=True, epochs=9)
    # 10 steps an epoch: the explosion comes in the second epoch, and without the guard nothing
    # after it can beat what came before
    unguarded = _train(tmp_path / "unguarded", guarded=False, epochs=3)
    assert math.isfinite(guarded)
    # Without the guard the best checkpoint is the last one before the explosion; with it,
    # training goes on improving after the restore.
    assert guarded < 0.7 * unguarded, (guarded, unguarded)


def test_the_clipper_holds_a_sudden_gradient_to_a_multiple_of_the_median() -> None:
    from fxclone.guard import GradientClipper

    weight = torch.nn.Parameter(torch.zeros(4))
    clipper = GradientClipper(factor=3.0, min_history=5)
    for scale in [1.0, 1.2, 0.8, 1.1, 0.9, 1.0]:
        weight.grad = torch.full((4,), scale / 2)  # norm = scale
        assert clipper.clip([weight]) == pytest.approx(scale)
        assert float(weight.grad.norm()) == pytest.approx(scale)
    weight.grad = torch.full((4,), 50.0)  # norm 100, after a median of 1.0
    assert clipper.clip([weight]) == pytest.approx(100.0)
    assert float(weight.grad.norm()) == pytest.approx(3.0, rel=1e-4)
    assert clipper.clipped == 1
    again = GradientClipper(factor=3.0, min_history=5)
    again.load_state_dict(clipper.state_dict())
    assert again.state_dict() == clipper.state_dict()
