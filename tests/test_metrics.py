"""Known-answer tests for the numpy evaluation metrics."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fxclone.errors import FxcloneError
from fxclone.metrics import compute_metrics, esr, esr_pre_emph, mae, mrstft

SR = 48000


@pytest.fixture
def noise() -> np.ndarray:
    return np.random.default_rng(0).standard_normal((2, SR)).astype(np.float32) * 0.3


def test_identical_signals_score_zero(noise: np.ndarray) -> None:
    scores = compute_metrics(noise, noise.copy(), SR)
    assert set(scores) == {"esr", "esr_pre_emph", "mae", "mrstft"}
    assert all(type(v) is float for v in scores.values())
    assert scores["esr"] == 0.0
    assert scores["esr_pre_emph"] == 0.0
    assert scores["mae"] == 0.0
    assert scores["mrstft"] < 1e-4


def test_half_gain_has_esr_one_quarter(noise: np.ndarray) -> None:
    assert esr(noise, 0.5 * noise) == pytest.approx(0.25, rel=1e-12)


def test_silent_estimate_has_esr_one(noise: np.ndarray) -> None:
    assert esr(noise, np.zeros_like(noise)) == pytest.approx(1.0, rel=1e-12)


def test_silent_target_does_not_divide_by_zero() -> None:
    silent = np.zeros(100)
    assert esr(silent, silent) == 0.0
    assert math.isfinite(esr(silent, np.full(100, 1e-3)))


def test_mae_of_noise_against_silence_is_mean_absolute_normal() -> None:
    sigma = 0.2
    x = np.random.default_rng(1).normal(0.0, sigma, 200_000)
    assert mae(x, np.zeros_like(x)) == pytest.approx(sigma * math.sqrt(2 / math.pi), rel=0.02)


def test_pre_emphasis_esr_of_a_gain_equals_plain_esr(noise: np.ndarray) -> None:
    # A gain commutes with the filter, so it leaves the ratio unchanged.
    assert esr_pre_emph(noise, 0.7 * noise) == pytest.approx(esr(noise, 0.7 * noise), rel=1e-9)
    assert esr_pre_emph(noise, 0.7 * noise) == pytest.approx(0.09, rel=1e-6)


def test_one_sample_delay_of_a_sine() -> None:
    n = np.arange(SR)
    w = 2 * np.pi * 100 / SR
    target = np.sin(w * n)
    delayed = np.sin(w * (n - 1))
    assert esr(target, delayed) == pytest.approx(2 * (1 - math.cos(w)), rel=0.01)


def test_pre_emphasis_weights_treble_errors_more() -> None:
    # The same 1 % error weighs ~100x more against a bass-heavy target once pre-emphasised.
    n = np.arange(SR)
    bass = np.sin(2 * np.pi * 100 * n / SR)
    treble_error = 0.01 * np.sin(2 * np.pi * 8000 * n / SR)
    assert esr_pre_emph(bass, bass + treble_error) > 50 * esr(bass, bass + treble_error)


def test_mrstft_grows_with_error_and_chunking_matches(noise: np.ndarray) -> None:
    small = mrstft(noise, 0.9 * noise, SR)
    large = mrstft(noise, 0.5 * noise, SR)
    assert 0 < small < large
    # A constant gain changes every frame alike, so chunks of any length give the same mean.
    assert mrstft(noise, 0.5 * noise, SR, max_chunk_seconds=0.25) == pytest.approx(large, rel=1e-3)


def test_mrstft_accepts_audio_shorter_than_the_largest_fft() -> None:
    x = np.random.default_rng(2).standard_normal(500)
    assert mrstft(x, x, SR) == 0.0
    assert mrstft(x, 0.5 * x, SR) > 0.1


def test_mismatched_shapes_are_refused(noise: np.ndarray) -> None:
    with pytest.raises(FxcloneError, match="same"):
        esr(noise, noise[:, :-1])
    with pytest.raises(FxcloneError, match="shape"):
        mae(np.zeros((1, 1, 4)), np.zeros((1, 1, 4)))
