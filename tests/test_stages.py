"""Training protocols of several stages, and models with look-ahead, in the trainer."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from fxclone.models.base import Stage
from fxclone.models.resample import ResampledModel
from fxclone.models.rnn import RecurrentModel, RNNConfig
from fxclone.training import TrainConfig, fit, validation_esr


class _TwoStage(RecurrentModel):
    """An LSTM whose protocol pretrains its head as an autoencoder, then trains everything."""

    def training_stages(self) -> tuple[Stage, ...]:
        return (
            Stage(
                "pretrain",
                data="autoencoder",
                loss=lambda y, t: torch.mean(torch.abs(y - t)),
                parameters=lambda m: m.head.parameters(),
                budget=0.5,
            ),
            Stage("supervised", lr_scale=0.5, budget=0.5),
        )


def _items(seconds: float, seed: int, sr: int = 8000) -> list:
    rng = np.random.default_rng(seed)
    dry = (0.3 * rng.standard_normal((1, int(seconds * sr)))).astype(np.float32)
    wet = np.tanh(2 * dry).astype(np.float32)
    return [(dry, wet, np.zeros(0, np.float32))]


CONFIG = TrainConfig(
    batch_size=4, segment_samples=512, windows_per_epoch=8, max_epochs=4, learning_rate=1e-2
)


def test_stages_run_in_turn_and_resume_skips_finished_ones(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = _TwoStage(RNNConfig(hidden_size=4), sample_rate=8000)
    lstm_before = model.rnn.weight_ih_l0.detach().clone()
    run = tmp_path / "run"
    result = fit(model, _items(2, 0), _items(0.5, 1), CONFIG, run, progress=False)
    assert [s["stage"] for s in result.stages] == ["pretrain", "supervised"]
    assert [s["epochs"] for s in result.stages] == [2, 2]  # each stage its share of 4 epochs
    assert (run / "stage1-pretrain" / "finished.json").exists()
    assert (run / "stage2-supervised" / "checkpoints" / "best.ckpt").exists()
    assert not torch.equal(model.rnn.weight_ih_l0, lstm_before)  # trained in stage 2
    assert np.isclose(result.best_val_esr, result.stages[-1]["best_val_esr"])
    weights = {k: v.clone() for k, v in model.state_dict().items()}

    again = _TwoStage(RNNConfig(hidden_size=4), sample_rate=8000)
    second = fit(again, _items(2, 0), _items(0.5, 1), CONFIG, run, progress=False)
    assert second.resumed and second.best_val_esr == result.best_val_esr
    assert all(torch.equal(again.state_dict()[k], w) for k, w in weights.items())


def test_pretraining_trains_only_its_parameters(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = _TwoStage(RNNConfig(hidden_size=4), sample_rate=8000)
    lstm_before = model.rnn.weight_ih_l0.detach().clone()
    head_before = model.head.weight.detach().clone()
    one_stage = TrainConfig(**{**CONFIG.__dict__, "max_epochs": 2})
    stages = model.training_stages()[:1]
    model.training_stages = lambda: stages  # type: ignore[method-assign]
    fit(model, _items(2, 0), _items(0.5, 1), one_stage, tmp_path / "run", progress=False)
    assert torch.equal(model.rnn.weight_ih_l0, lstm_before)
    assert not torch.equal(model.head.weight, head_before)


def test_validation_compensates_look_ahead() -> None:
    """A resampled model with 72 samples of latency that passes audio through scores ESR ~0
    on identity data; scored without compensation it would be far off."""
    torch.manual_seed(0)
    inner = RecurrentModel(RNNConfig(hidden_size=4, skip=True), sample_rate=16000)
    torch.nn.init.zeros_(inner.head.weight)
    torch.nn.init.zeros_(inner.head.bias)
    model = ResampledModel(inner, 3, 48000)
    assert model.latency_samples == 72
    t = np.arange(48000) / 48000
    dry = (0.3 * np.sin(2 * np.pi * 440 * t) + 0.2 * np.sin(2 * np.pi * 3000 * t))[None]
    items = [(dry.astype(np.float32), dry.astype(np.float32), np.zeros(0, np.float32))]
    assert validation_esr(model, items) < 1e-3


def test_learning_rate_anneals_over_the_time_budget(tmp_path: Path, monkeypatch) -> None:
    from lightning.pytorch.callbacks import Timer

    import fxclone.stage_module as stage_module

    rates: list[float] = []
    shares: list[float] = []  # of the budget spent at each step, as the trainer's timer says
    real = stage_module.budget_factor

    def recording(trainer, config) -> float:
        timer = next(c for c in trainer.callbacks if isinstance(c, Timer))
        shares.append(timer.time_elapsed("train") / (config.max_minutes * 60))
        rates.append(real(trainer, config))
        return rates[-1]

    monkeypatch.setattr(stage_module, "budget_factor", recording)
    model = RecurrentModel(RNNConfig(hidden_size=4), sample_rate=8000)
    config = TrainConfig(batch_size=2, segment_samples=256, windows_per_epoch=4,
                         max_epochs=100_000, max_minutes=0.04)  # fmt: skip
    fit(model, _items(2, 0), _items(0.5, 1), config, tmp_path / "run", progress=False)
    assert len(rates) >= 5  # steps in the budget: fewer on a busy machine
    assert rates[0] > 0.99  # the full rate at the start
    # every step's rate is the cosine from 1 to 0.01 at the share of the budget spent (how
    # far the last step got depends on the machine's load, not on the schedule)
    for share, rate in zip(shares, rates, strict=True):
        expected = 0.01 + 0.99 * 0.5 * (1 + np.cos(np.pi * min(share, 1.0)))
        assert rate == pytest.approx(expected, abs=1e-3)  # (read a moment apart)
    assert all(b <= a + 1e-12 for a, b in zip(rates, rates[1:], strict=False))
    assert shares[-1] > 0.3  # the run went on into its budget


def test_warmup_covers_exactly_the_first_scored_outputs_past() -> None:
    """The first scored output of a look-ahead model sees the window's first sample, and
    nothing is wasted before it (warm-up = receptive field - 1 - latency)."""
    from fxclone.models import PRESETS, create_model
    from fxclone.windows import warmup_samples

    torch.manual_seed(0)
    model = create_model("mccool-mlp", sample_rate=8000, overrides=dict(PRESETS["mccool-mlp"].tiny))
    warm, lat = warmup_samples(model), model.latency_samples
    assert lat > 0 and warm == model.receptive_field - 1 - lat
    x = torch.randn(16, 1, warm + lat + 8, requires_grad=True)  # (ReLUs: many inputs)
    model(x, None)[:, 0, warm + lat].sum().backward()
    grad = x.grad[:, 0].abs().sum(0)
    assert float(grad[0]) > 0 and float(grad[warm + lat + 1 :].sum()) == 0


def test_loss_turns_per_window_after_its_share_of_the_budget(tmp_path: Path, monkeypatch) -> None:
    """With ``esr_per_window_after`` the training loss is pooled until that share of the time
    budget is spent and per-window from then on (the share read from the step count here,
    not the clock); validation keeps its best by the per-file ESR throughout."""
    import fxclone.stage_module as stage_module
    from fxclone.losses import ESRLoss

    seen: list[bool] = []
    real = ESRLoss.forward

    def spy(self, estimate, target):
        seen.append(self.per_window)
        return real(self, estimate, target)

    monkeypatch.setattr(ESRLoss, "forward", spy)
    monkeypatch.setattr(stage_module, "budget_share", lambda trainer, c: trainer.global_step / 8)
    model = RecurrentModel(RNNConfig(hidden_size=4), sample_rate=8000)
    config = TrainConfig(batch_size=2, segment_samples=256, windows_per_epoch=4, max_epochs=8,
                         max_minutes=5.0, esr_per_window_after=0.5)  # fmt: skip
    fit(model, _items(2, 0), _items(0.5, 1), config, tmp_path / "run", progress=False)
    assert seen[:4] == [False] * 4 and seen[-4:] == [True] * 4
    with pytest.raises(ValueError, match="esr_per_window_after"):
        TrainConfig(esr_per_window_after=1.5)
