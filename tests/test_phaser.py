"""The phaser model: the built-in phaser reproduced exactly, and fitted from dry/wet audio alone."""

from __future__ import annotations

import copy
import functools
import math

import numpy as np
import pytest
import torch

from fxclone.effects.registry import get_effect
from fxclone.models import create_model
from fxclone.models.phase import refit_phase
from fxclone.models.phaser import PhaserModel
from fxclone.models.phaser_fit import fit_phaser
from noise import bursts

SR = 16000


def _material(seconds: float, seed: int) -> np.ndarray:
    return bursts(seconds, seed, SR)


def _knobs(**changes: float) -> dict[str, float]:
    return {k.name: k.default for k in get_effect("phaser").knobs} | changes


def _render(dry: np.ndarray, knobs: dict[str, float]) -> np.ndarray:
    return get_effect("phaser").process(dry[None], SR, knobs)[0]


def _run(model: PhaserModel, dry: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model(torch.from_numpy(dry)[None, None])[0, 0].numpy()


def _esr(estimate: np.ndarray, target: np.ndarray) -> float:
    return float(np.sum((estimate - target) ** 2) / np.sum(target**2))


@pytest.mark.parametrize(
    "changes", [{}, {"stages": 6, "feedback": -50.0, "rate": 2.0, "phase": 90.0}]
)
def test_holds_the_builtin_phaser_exactly(changes: dict[str, float]) -> None:
    """With the effect's own settings the model is the effect, offline and in odd blocks."""
    knobs = _knobs(**changes)
    model = create_model("phaser", sample_rate=SR)
    assert isinstance(model, PhaserModel)
    half_span = 0.5 * math.log(knobs["high"] / knobs["low"])
    fb, mix = knobs["feedback"] / 100, knobs["mix"] / 100
    with torch.no_grad():
        model.log_rate.fill_(math.log(knobs["rate"]))
        model.phase.fill_(math.radians(knobs["phase"]))
        model.centre.fill_(0.5 * math.log(knobs["low"] * knobs["high"]))
        model.sweep.zero_()
        model.sweep[0, 1] = knobs["depth"] / 100 * half_span
        model.feedback.fill_(fb)
        model.dry_gain.fill_(1 - mix)
        model.wet_gain.fill_(mix * (1 - abs(fb)))
        model.stages.fill_(int(knobs["stages"]))
    dry = _material(2.0, 3)
    offline = _run(model, dry)
    assert _esr(offline, _render(dry, knobs)) < 1e-10
    state, pieces, at = model.init_state(1), [], 0
    with torch.no_grad():
        for size in [1, 37, 64, 100, 5, 2000, 64, 3]:
            block = torch.from_numpy(dry[at : at + size])[None, None]
            out, state = model.step(block, torch.zeros(1, 0), state)
            pieces.append(out[0, 0].numpy())
            at += size
    np.testing.assert_allclose(np.concatenate(pieces), offline[:at], atol=1e-6)


@functools.cache
def _fitted() -> PhaserModel:
    dry = _material(10.0, 1)
    model = create_model("phaser", sample_rate=SR, overrides={"fit_seconds": 6.0})
    assert isinstance(model, PhaserModel)
    fit_phaser(model, dry, _render(dry, _knobs()))
    return model.eval()


def test_fits_the_builtin_phaser() -> None:
    """Stage count, rate, depth and feedback read from 10 s of dry/wet noise."""
    model = _fitted()
    knobs = _knobs()
    test = _material(6.0, 2)
    assert _esr(_run(model, test), _render(test, knobs)) < 1e-4
    assert int(model.stages) == knobs["stages"]
    assert abs(model.rate_hz / knobs["rate"] - 1) < 0.01
    depth = float(torch.linalg.vector_norm(model.sweep[0]))  # log-frequency excursion
    assert abs(depth / (0.5 * math.log(knobs["high"] / knobs["low"])) - 1) < 0.1
    assert abs(float(model.feedback) - knobs["feedback"] / 100) < 0.05


def test_phase_refit_on_two_seconds() -> None:
    """A recording that starts a third of a cycle later: only the phase is re-fitted."""
    model = copy.deepcopy(_fitted())
    test = _material(6.0, 2)
    wet = _render(test, _knobs(phase=120.0))
    before = _esr(_run(model, test), wet)
    refit_phase(model, test, wet, seconds=2.0)
    after = _esr(_run(model, test)[2 * SR :], wet[2 * SR :])
    assert before > 0.1
    assert after < 1e-4
