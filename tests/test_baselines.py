"""The linear and static baselines recover what they can model and fail on what they cannot."""

from __future__ import annotations

import time

import numpy as np
import pytest
import scipy.signal

from fxclone.baselines import StaticCurve, apply_fir, baseline_scores, fit_linear_fir, fit_static
from fxclone.errors import FxcloneError
from fxclone.metrics import esr


def _noise(n: int, seed: int, scale: float = 0.3) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal((1, n)) * scale).astype(np.float32)


def _fir(taps: int = 64) -> np.ndarray:
    return np.random.default_rng(7).standard_normal(taps) * np.exp(-np.arange(taps) / 12)


def test_known_fir_is_recovered() -> None:
    h = _fir()
    dry = _noise(48_000, 1)
    wet = scipy.signal.lfilter(h, 1.0, dry, axis=-1).astype(np.float32)
    fitted = fit_linear_fir([dry], [wet], taps=1024)
    assert fitted.shape == (1024,)
    assert esr(wet, apply_fir(fitted, dry)) < 1e-6
    assert np.max(np.abs(fitted[:64] - h)) < 1e-4
    assert np.max(np.abs(fitted[64:])) < 1e-4


def test_fir_fit_pools_several_pairs_and_channels() -> None:
    h = _fir(32)
    dry = [_noise(3000, 2), np.concatenate([_noise(2000, 3), _noise(2000, 4)])]
    wet = [scipy.signal.lfilter(h, 1.0, d, axis=-1) for d in dry]
    fitted = fit_linear_fir(dry, wet, taps=48)
    assert np.max(np.abs(fitted[:32] - h)) < 1e-5


def test_apply_fir_is_causal_and_keeps_shape() -> None:
    dry = np.zeros((2, 100), dtype=np.float32)
    dry[:, 10] = 1.0
    out = apply_fir(np.array([0.0, 0.5, 0.25]), dry)
    assert out.shape == dry.shape and out.dtype == np.float32
    # FFT convolution leaves rounding noise, nothing more, before the impulse.
    assert np.max(np.abs(out[:, :11])) < 1e-12
    np.testing.assert_allclose(out[:, 11:13], [[0.5, 0.25]] * 2)


def test_fir_fit_is_fast_on_two_million_samples() -> None:
    dry = _noise(2_000_000, 5)
    wet = apply_fir(_fir(), dry)
    start = time.perf_counter()
    fit_linear_fir([dry], [wet], taps=1024)
    assert time.perf_counter() - start < 5.0


def test_known_static_curve_is_recovered() -> None:
    dry = _noise(48_000, 6)
    wet = np.tanh(3 * dry)
    curve = fit_static([dry], [wet])
    assert esr(wet, curve(dry)) < 1e-4
    x = np.linspace(-0.5, 0.5, 101)
    np.testing.assert_allclose(curve(x), np.tanh(3 * x), atol=2e-3)


def test_static_curve_extrapolates_linearly() -> None:
    curve = StaticCurve(knots=np.array([-1.0, 0.0, 1.0]), values=np.array([-2.0, 0.0, 1.0]))
    np.testing.assert_allclose(curve(np.array([-2.0, -0.5, 0.5, 3.0])), [-4.0, -1.0, 0.5, 3.0])


def test_static_fit_cannot_model_a_delay() -> None:
    dry = _noise(48_000, 8)
    wet = np.roll(dry, 1, axis=-1)
    curve = fit_static([dry], [wet])
    assert esr(wet, curve(dry)) > 0.9


def test_baseline_scores_tell_linear_from_static_effects() -> None:
    train, test = _noise(48_000, 9), _noise(24_000, 10)
    h = _fir()
    linear = baseline_scores([(train, apply_fir(h, train))], [(test, apply_fir(h, test))])
    assert set(linear) == {"esr_linear", "esr_static"}
    assert linear["esr_linear"] < 1e-6 < 0.5 < linear["esr_static"]
    static = baseline_scores([(train, np.tanh(3 * train))], [(test, np.tanh(3 * test))])
    assert static["esr_static"] < 1e-3 < static["esr_linear"]


def test_bad_pairs_are_refused() -> None:
    dry = _noise(1000, 11)
    with pytest.raises(FxcloneError, match="shape"):
        fit_linear_fir([dry], [dry[:, :-1]])
    with pytest.raises(FxcloneError, match="wet"):
        fit_static([dry, dry], [dry])
    with pytest.raises(FxcloneError, match="constant"):
        fit_static([np.zeros((1, 100))], [np.zeros((1, 100))])
