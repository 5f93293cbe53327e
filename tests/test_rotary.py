"""The rotary-speaker model: two rotors on a crossover's bands, spin-up, tremolo, Doppler."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from fxclone.errors import FxcloneError
from fxclone.models import create_model
from fxclone.models.phase import refit_phase
from fxclone.models.rotary import RotaryModel
from fxclone.models.rotary_fit import fit_rotary

SR = 16000


def _speaker() -> RotaryModel:
    """A known rotary speaker: a slow drum with tremolo, a faster horn with tremolo and a
    Doppler tap swinging 0.5 +- 0.35 ms along a cubed cosine, both spinning up from rest."""
    model = create_model("rotary", sample_rate=SR, overrides={"fit_seconds": 4.0})
    assert isinstance(model, RotaryModel)
    with torch.no_grad():
        model.rate.copy_(torch.tensor([1.7, 2.9]))
        model.spin.copy_(torch.tensor([0.8, 0.5]))
        model.phase.copy_(torch.tensor([0.3, -1.2]))
        model.delay[1] = 8.0
        model.sweep[1, 1], model.sweep[1, 5] = 0.75 * 5.6, 0.25 * 5.6  # 5.6 cos^3
        model.gains.zero_()
        model.gains[0, 0, :3] = torch.tensor([0.5, -0.15, 0.1])  # drum: level and throb
        model.gains[1, 0, :5] = torch.tensor([0.4, 0.1, -0.12, 0.0, 0.05])  # horn: direct
        model.gains[1, 1, :3] = torch.tensor([0.35, 0.1, 0.0])  # horn: Doppler tap
    return model


def _material(seconds: float, seed: int) -> np.ndarray:
    """White noise in segments of random level."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    levels = np.repeat(rng.uniform(0.02, 0.5, n // 4000 + 1), 4000)[:n]
    return (levels * rng.standard_normal(n)).astype(np.float32)


def _run(model: RotaryModel, dry: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model(torch.from_numpy(dry)[None, None])[0, 0].numpy()


def test_streaming_a_spin_up_equals_offline() -> None:
    model = _speaker()
    x = torch.from_numpy(_material(2.0, 3))[None, None]
    with torch.no_grad():
        offline = model(x)
        state, parts = model.init_state(1), []
        for chunk in torch.split(x, 3001, dim=2):
            y, state = model.step(chunk, x.new_zeros(1, 0), state)
            parts.append(y)
    assert float((torch.cat(parts, dim=2) - offline).abs().max()) < 1e-6


@pytest.fixture(scope="module")
def fitted() -> tuple[RotaryModel, RotaryModel]:
    truth = _speaker()
    dry = _material(40.0, 0)
    model = create_model("rotary", sample_rate=SR, overrides={"fit_seconds": 4.0})
    assert isinstance(model, RotaryModel)
    fit_rotary(model, dry, _run(truth, dry))
    return truth, model


def test_fit_recovers_both_rotors(fitted) -> None:
    truth, model = fitted
    for r in range(2):
        assert model.rates_hz[r] == pytest.approx(truth.rates_hz[r], rel=2e-3)
        assert float(model.spin[r]) == pytest.approx(float(truth.spin[r]), rel=0.1)
    assert model.depth_ms(1) == pytest.approx(truth.depth_ms(1), rel=0.1)


def test_fitted_speaker_matches_on_new_material_and_refits_its_phases(fitted) -> None:
    truth, model = fitted
    dry = _material(6.0, 1)
    wet = _run(truth, dry)
    out = _run(model, dry)
    assert float(np.sum((out - wet) ** 2) / np.sum(wet**2)) < 0.02
    spun = slice(SR, None)  # past the rotors' spin-up
    assert float(np.sum((out - wet)[spun] ** 2) / np.sum(wet[spun] ** 2)) < 0.015
    saved = model.phase.clone()
    with torch.no_grad():
        model.phase.add_(torch.tensor([1.0, -2.0], dtype=torch.float64))
    refit_phase(model, dry, wet, seconds=2.0)
    moved = torch.remainder(model.phase - saved + math.pi, 2 * math.pi) - math.pi
    assert float(moved.abs().max()) < 0.1
    model.phase.copy_(saved)


def test_silent_high_band_is_refused() -> None:
    model = create_model("rotary", sample_rate=SR, overrides={"fit_seconds": 2.0})
    t = np.arange(8 * SR) / SR
    dry = (0.3 * np.sin(2 * math.pi * 110 * t)).astype(np.float32)
    with pytest.raises(FxcloneError, match="crossover"):
        fit_rotary(model, dry, dry)
