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


def _tones(seconds: float, seed: int) -> np.ndarray:
    """Sine tones 100 ms long, of random pitch (100 Hz-2 kHz) and level: material on which one
    frame's response shows a delayed path only as a ripple at one partial."""
    rng = np.random.default_rng(seed)
    hold = SR // 10
    count = int(seconds * 10)
    f = np.repeat(np.exp(rng.uniform(np.log(100.0), np.log(2000.0), count)), hold)
    level = np.repeat(10 ** rng.uniform(-1.0, 0.0, count), hold)
    return (0.3 * level * np.sin(2 * np.pi * np.cumsum(f) / SR)).astype(np.float32)


def test_folded_frames_find_a_chorus_in_tones() -> None:
    """The frames' spectra summed per oscillator phase place both voices of the default chorus
    (12 ms +- 2 ms, in antiphase) on tones from 43-ms frames (whose peaks one by one place
    them at 2 ms), and a wrong rate finds no such sweep."""
    from fxclone.models.lfo_frames import find_voices, folded_response

    dry = _tones(40.0, 3).astype(np.float64)
    wet = _render("chorus", dry.astype(np.float32)).astype(np.float64)
    times, p = folded_response(dry, wet, SR, int(0.02 * SR), 0.8, 0.043)
    voices = find_voices(times, p, np.ones(times.size, bool), 0.8, 2, SR)
    assert len(voices) == 2
    for centre, depth, _, _ in voices:
        assert abs(centre - 0.012 * SR) < 1.5 and abs(depth - 0.002 * SR) < 1.5
    apart = abs((voices[0][2] - voices[1][2]) % (2 * np.pi) - np.pi)
    assert apart < 0.1
    # at a wrong rate the phases mix and no sweep of that size stands out
    times, p = folded_response(dry, wet, SR, int(0.02 * SR), 1.1, 0.043)
    wrong = find_voices(times, p, np.ones(times.size, bool), 1.1, 2, SR)
    assert all(abs(d - 0.002 * SR) > 3 for _, d, _, _ in wrong)


def _thru_zero(dry: np.ndarray) -> np.ndarray:
    """A thru-zero flanger: one voice swept along ``1 - 2 |saw|^2`` (3 ms +- 3 ms, through
    zero delay at its cusp) at 0.4 Hz, feedback -0.3, mixed 0.5 dry minus 0.5 wet."""
    model = create_model("lfo", sample_rate=SR, overrides={"voices": 1, "echoes": 4})
    assert isinstance(model, LFOModel)
    with torch.no_grad():
        model.sweep_power.fill_(2.0)
        model.log_rate.fill_(np.log(0.4))
        model.delay_ms.fill_(3.0)
        model.depth_ms.fill_(3.0)
        model.voice_gain.fill_(-0.5)
        model.feedback.fill_(-0.3)
        model.dry_gain.fill_(0.5)
        return model(torch.from_numpy(dry)[None, None])[0, 0].numpy()


def test_cusped_sweep_is_found_where_a_sine_is_not() -> None:
    """The frames' paths of a thru-zero sweep vote for the folded parabola (centre, depth
    within 2 samples, rate within 0.2 %); a chorus' sine sweep finds no cusped shape."""
    from fxclone.models.lfo_frames import cusp_sweep, frame_correlation

    dry = _material(30.0, 4)
    wet = _thru_zero(dry)
    times, _, p, valid = frame_correlation(dry.astype(np.float64), wet, SR, int(0.008 * SR))
    found = cusp_sweep(times, p, valid, 0.4)
    assert found is not None
    centre, depth, _, power, rate = found
    assert power == 2.0
    assert abs(centre - 0.003 * SR) < 2 and abs(depth - 0.003 * SR) < 2
    assert abs(rate / 0.4 - 1) < 0.002
    chorus = _render("chorus", dry).astype(np.float64)
    times, _, p, valid = frame_correlation(dry.astype(np.float64), chorus, SR, int(0.02 * SR))
    assert cusp_sweep(times, p, valid, 0.8) is None


def test_old_model_files_load_with_the_sine_sweep() -> None:
    model = create_model("lfo", sample_rate=SR, overrides={"voices": 1})
    state = {k: v for k, v in model.state_dict().items() if k != "sweep_power"}
    model.sweep_power.fill_(2.0)
    model.load_state_dict(state)
    assert float(model.sweep_power) == 0.0
