"""The oscillator model: fitted to built-in modulation effects from dry/wet audio alone."""

from __future__ import annotations

import copy
import functools

import numpy as np
import pytest
import torch

from fxclone.effects.registry import get_effect
from fxclone.models import create_model
from fxclone.models.lfo import LFOModel
from fxclone.models.lfo_fit import fit_lfo
from fxclone.models.phase import refit_phase
from noise import bursts

SR = 16000


def _material(seconds: float, seed: int) -> np.ndarray:
    return bursts(seconds, seed, SR)


def _render(effect: str, dry: np.ndarray, **knobs: float) -> np.ndarray:
    fx = get_effect(effect)
    values = {k.name: k.default for k in fx.knobs} | knobs
    return fx.process(dry[None].astype(np.float32), SR, values)[0]


def _esr(model: LFOModel, dry: np.ndarray, wet: np.ndarray) -> float:
    with torch.no_grad():
        y = model(torch.from_numpy(dry.astype(np.float32))[None, None])[0, 0].numpy()
    return float(np.sum((y - wet) ** 2) / np.sum(wet**2))


@functools.cache
def _fitted(effect: str, voices: int, seconds: float) -> LFOModel:
    """A model fitted on ``seconds`` of one effect at its default knobs (1 s of refinement)."""
    torch.manual_seed(0)
    dry = _material(seconds, 1)
    overrides = {"voices": voices, "echoes": 4, "fit_seconds": 1.0, "max_delay_ms": 20.0}
    model = create_model("lfo", sample_rate=SR, overrides=overrides)
    assert isinstance(model, LFOModel)
    fit_lfo(model, dry, _render(effect, dry))
    return model.eval()


def _check(effect: str, voices: int, seconds: float, bound: float) -> None:
    model = _fitted(effect, voices, seconds)
    rate = get_effect(effect).knob("rate").default
    test = _material(6.0, 2)
    assert _esr(model, test, _render(effect, test)) < bound
    assert abs(model.rate_hz / rate - 1) < 0.01


def test_fits_tremolo() -> None:
    """No voice: the rate from the gain's modulation, the gain by least squares."""
    _check("tremolo", 0, 12.0, 1e-4)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("effect", "voices", "bound"), [("chorus", 2, 0.02), ("flanger", 1, 0.02), ("vibrato", 1, 0.02)]
)
def test_fits_swept_delays(effect: str, voices: int, bound: float) -> None:
    """Swept voices found by their frames' correlation peaks, a flanger's feedback unrolled."""
    _check(effect, voices, 20.0, bound)


def test_phase_refit_on_two_seconds() -> None:
    """A recording that starts elsewhere in the cycle: only the phase is re-fitted."""
    model = copy.deepcopy(_fitted("tremolo", 0, 12.0))
    test = _material(6.0, 2)
    wet = _render("tremolo", test, phase=120.0)
    assert _esr(model, test, wet) > 0.01
    refit_phase(model, test, wet, seconds=2.0)
    with torch.no_grad():
        y = model(torch.from_numpy(test)[None, None])[0, 0].numpy()
    rest = slice(2 * SR, None)
    assert float(np.sum((y[rest] - wet[rest]) ** 2) / np.sum(wet[rest] ** 2)) < 1e-4


def test_trains_through_fit_on_a_continuous_split(tmp_path) -> None:
    """``fit`` runs the closed form alone and validates the split as one stream."""
    from fxclone.training import TrainConfig, fit

    dry = _material(12.0, 1)
    wet = _render("tremolo", dry)
    cut = [0, 5 * SR, 9 * SR, 12 * SR]  # items of one continuous render
    items = [(dry[None, a:b], wet[None, a:b], np.zeros(0, np.float32))
             for a, b in zip(cut, cut[1:], strict=False)]  # fmt: skip
    model = create_model("lfo", sample_rate=SR, overrides={"voices": 0, "fit_seconds": 0.5})
    result = fit(model, items[:2], items[2:], TrainConfig(max_epochs=1), tmp_path, progress=False)
    assert result.epochs == 0
    assert result.best_val_esr < 1e-4
