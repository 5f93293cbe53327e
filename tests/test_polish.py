"""The Levenberg-Marquardt polish: it finishes what gradient training leaves of an exactly
matchable effect, keeps only weights that validate better, and keeps to its time budget."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from tests.test_hammerstein import MDA_KNOBS, SR, _material, mda_overdrive

from fxclone.errors import FxcloneNotice
from fxclone.losses import TrainingLoss, pre_emphasis
from fxclone.models import create_model
from fxclone.polish import excerpts, polish
from fxclone.training import TrainConfig, fit, train_config, validation_esr

SMALL = {"curves": ("ssqrt",), "post_sections": 1, "dc_hz": 0.0, "pre_taps": 2,
         "post_taps": 2, "lowpass_taper": "step", "context_samples": 512}  # fmt: skip


def _items(settings, seconds: float, seed: int, render=mda_overdrive) -> list:
    out = []
    for i, (d, m) in enumerate(settings):
        x = _material(seconds, seed + i)
        y = render(x, d, m)
        out.append((x[None].astype(np.float32), y[None].astype(np.float32), np.float32([d, m])))
    return out


def _model():
    torch.manual_seed(0)
    return create_model("hammerstein", sample_rate=SR, knobs=MDA_KNOBS, overrides=SMALL)


TRAIN = [(d, m) for d in (0.0, 0.5, 1.0) for m in (0.0, 0.5, 1.0)]
UNSEEN = [(0.25, 0.75), (0.75, 0.25), (0.9, 0.9)]


def test_polish_fits_mda_overdrive_from_the_start() -> None:
    """From the untrained start (a linear filter), the polish alone finds the conditioned
    model of mda Overdrive in seconds: ESR at unseen settings on new audio at the level of
    float32 rounding."""
    model = _model()
    train, val = _items(TRAIN, 0.3, 0), _items(UNSEEN, 0.5, 50)
    config = TrainConfig(model="hammerstein", esr_per_window=True)
    done = polish(model, train, val, config, seconds=None)
    assert done.kept and done.val_esr < done.start_val_esr
    assert done.val_esr == pytest.approx(validation_esr(model, val, per_item=True))
    test = _items(UNSEEN, 0.5, 80)
    assert validation_esr(model, test) < 1e-12  # measured 1.6e-14


def test_polish_keeps_only_better_weights() -> None:
    """Polished on one effect and validated on another, the polish makes validation worse:
    the model keeps the weights it came with, bit for bit."""
    model = _model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    flipped = lambda x, d, m: -mda_overdrive(x, d, m)  # noqa: E731
    train, val = _items(TRAIN, 0.2, 0, render=flipped), _items(UNSEEN, 0.3, 50)
    done = polish(model, train, val, TrainConfig(model="hammerstein"), seconds=None)
    assert not done.kept and done.loss < done.start_loss
    assert done.val_esr == done.start_val_esr
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key])


def test_polish_keeps_to_its_time() -> None:
    """Given half a second, the polish stops on the clock, well before it would converge."""
    train, val = _items(TRAIN, 0.3, 0), _items(UNSEEN, 0.3, 50)
    config = TrainConfig(model="hammerstein", esr_per_window=True)
    calls: list[tuple[int, int]] = []
    free = polish(_model(), train, val, config, seconds=None, progress=lambda *a: calls.append(a))
    timed = polish(_model(), train, val, config, seconds=0.5)
    assert timed.seconds < 0.5 + 1.5  # the validation on either side included
    assert timed.iterations < free.iterations and timed.loss > 100 * free.loss
    done = [d for d, _ in calls]  # a report per Jacobian block, rising to the end
    assert len(calls) >= free.iterations and calls[-1] == (1000, 1000) and done == sorted(done)


def test_residuals_sum_to_the_training_loss() -> None:
    """The polish minimises the training loss itself: its weighted residuals, squared and
    summed, equal TrainingLoss on both the pooled and the per-window ESR."""
    rng = np.random.default_rng(0)
    levels = torch.tensor([1.0, 0.1, 2.0, 0.01], dtype=torch.float64)[:, None, None]
    target = torch.from_numpy(rng.standard_normal((4, 1, 500))) * levels
    estimate = target + 0.1 * torch.from_numpy(rng.standard_normal((4, 1, 500)))
    for per_window in (False, True):
        loss = TrainingLoss(1.0, 0.5, 0.95, per_window=per_window)
        total = sum(
            float(torch.sum(w[:, None, None] * pre_emphasis(estimate - target, c) ** 2))
            for c, w in loss.terms(target)
        )
        assert total == pytest.approx(float(loss(estimate, target)), rel=1e-9)
        assert len(TrainingLoss(0.0, 1.0, per_window=per_window).terms(target)) == 1


def test_excerpts_are_the_loudest_with_their_warmup() -> None:
    model = _model()
    quiet = np.zeros((1, 20000), np.float32)
    loud = quiet.copy()
    loud[0, 15000:15100] = 1.0
    x, y, k, warm = excerpts(model, [(loud, loud, np.float32([0, 0]))] * 2, seed=0, total=8192)
    assert warm == 511 and x.dtype == torch.float64
    assert x.shape == (2, 1, warm + 4096) and k.shape == (2, 2)
    assert float(y[..., warm:].abs().sum()) > 0  # the excerpt holds the burst


def test_fit_spends_its_share_of_the_budget_polishing(tmp_path: Path) -> None:
    """``polish`` in the training config: gradient training, then the polish; the result
    records both, and the model is the better of the two."""
    model = _model()
    train, val = _items(TRAIN, 0.3, 0), _items(UNSEEN, 0.3, 50)
    config = TrainConfig(model="hammerstein", segment_samples=2048, windows_per_epoch=64,
                         max_epochs=1, polish=0.5, esr_per_window=True)  # fmt: skip
    result = fit(model, train, val, config, tmp_path / "run", progress=False)
    assert result.polish is not None and result.polish["kept"]
    assert result.best_val_esr == result.polish["val_esr"] < result.polish["start_val_esr"]
    assert result.summary()["polish"] == result.polish
    assert math.isclose(result.best_val_esr, validation_esr(model, val, per_item=True))
    with pytest.raises(ValueError, match="polish"):
        TrainConfig(polish=1.0)


@pytest.mark.parametrize("name", ["lstm", "cafx"])
def test_polish_declines_large_or_staged_models(name: str) -> None:
    """A model too large for a Jacobian column per parameter (the LSTM), or one trained in
    stages on its own losses (CAFx), is left as it is, with a one-line note."""
    model = create_model(name, sample_rate=16000)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    items = [(np.zeros((1, 8000), np.float32), np.zeros((1, 8000), np.float32), np.zeros(0))]
    with pytest.warns(FxcloneNotice, match="no polish: .*(parameters|stages)"):
        done = polish(model, items, items, TrainConfig(model=name), seconds=None)
    assert not done.kept and done.iterations == 0
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key])


def test_only_the_identifiable_preset_polishes_by_default() -> None:
    """``hammerstein-sqrt`` (one curve) polishes the last quarter of its budget; the tanh
    dictionary of ``hammerstein``, which the polish overfits, and the networks do not."""
    assert train_config({"model": "hammerstein-sqrt"}).polish == 0.25
    for name in ("hammerstein", "wavenet-standard", "lstm"):
        assert train_config({"model": name}).polish == 0.0
