"""The splice model: a delay-line pitch shifter (detuner) with two crossfaded taps."""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest
import torch

from fxclone.errors import FxcloneError
from fxclone.metrics import esr
from fxclone.models import create_model
from fxclone.models.splice import SpliceModel
from fxclone.models.splice_fit import fit_splice
from fxclone.signals import TEST_MIX, synth_track
from noise import bursts, streamed

SR = 16000


def _shifter(slope: float, window: float, phase: float) -> SpliceModel:
    model = create_model("splice", sample_rate=SR, overrides={"fit_seconds": 4.0})
    assert isinstance(model, SpliceModel)
    with torch.no_grad():
        model.slope.fill_(slope)
        model.window.fill_(window)
        model.phase.fill_(phase)
        model.dry_gain.fill_(0.3)
        model.wet_gain.fill_(0.9)
    return model


def _run(model: SpliceModel, dry: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model(torch.from_numpy(dry)[None, None])[0, 0].numpy()


def test_taps_crossfade_and_stream_as_offline() -> None:
    """A shifter 10 cents down: the taps' weights sum to one and vanish where a tap wraps;
    any block split gives the offline output."""
    slope = 1.0 - 2.0 ** (-10.0 / 1200.0)
    model = _shifter(slope, 400.0, 1.0)
    a, b, weight = model.taps(np.arange(0.0, 200000.0, 7.0))
    assert np.all((a >= 0) & (a < 400) & (b >= 0) & (b < 400))
    np.testing.assert_allclose(np.mod(b - a, 400.0), 200.0, atol=1e-6)
    assert float(weight[a < 2.0].max(initial=0.0)) < 1e-3
    assert model.rate_hz == pytest.approx(slope * SR / 400.0)
    dry = bursts(6.0, 2, SR)
    offline = _run(model, dry)
    pieces = streamed(model, dry, [1, 37, 64, 5, 2000, 3, 700, 16000, 64, 77130])
    np.testing.assert_allclose(pieces, offline[: pieces.size], atol=1e-6)


@functools.cache
def _fitted(slope: float) -> SpliceModel:
    source = _shifter(slope, 400.0, 1.0)
    dry = bursts(16.0, 1, SR)
    model = create_model("splice", sample_rate=SR, overrides={"fit_seconds": 2.0})
    assert isinstance(model, SpliceModel)
    fit_splice(model, dry, _run(source, dry))
    return model


@pytest.mark.parametrize("cents", [-8.0, 12.0])
def test_fit_finds_the_window_and_slope(cents: float) -> None:
    """From 16 s of noise bursts, a shifter 8 cents down or 12 up: window within a sample,
    slope within 0.1 %, and on music-like material an ESR under 1e-3 (the dry signal alone:
    above 0.5)."""
    slope = 1.0 - 2.0 ** (cents / 1200.0)
    model = _fitted(slope)
    assert abs(float(model.window) - 400.0) < 1.0
    assert abs(float(model.slope) / slope - 1.0) < 1e-3
    test = synth_track(3, SR, 8.0, TEST_MIX)
    wet = _run(_shifter(slope, 400.0, 1.0), test)
    assert esr(wet[None], _run(model, test)[None]) < 1e-3
    assert esr(wet[None], 0.3 * test[None]) > 0.5


def test_fit_refuses_a_wet_signal_with_no_delayed_copy() -> None:
    dry = bursts(3.0, 1, SR)
    model = create_model("splice", sample_rate=SR)
    assert isinstance(model, SpliceModel)
    with pytest.raises(FxcloneError, match="no delayed copy"):
        fit_splice(model, dry, np.random.default_rng(0).standard_normal(dry.size))
    assert math.isfinite(float(model.slope))
