"""Known-answer tests for the numpy evaluation metrics."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
from scipy import signal

from fxclone.errors import FxcloneError
from fxclone.metrics import (
    NULL_RESIDUAL_FLOOR_DB,
    compute_metrics,
    esr,
    esr_pre_emph,
    mae,
    mae_energy_norm,
    mrstft,
    null_residual_db,
)
from fxclone.perceptual import (
    loudness_difference_lufs,
    mel_distance,
    mfcc_cosine_distance,
    modulation_spectrum_distance,
)

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


EXTENDED = {
    "mae_energy_norm",
    "mel_distance",
    "mfcc_cosine_distance",
    "modulation_distance",
    "loudness_diff_lufs",
    "null_residual_db",
}


def test_extended_identical_signals_score_zero(noise: np.ndarray) -> None:
    scores = compute_metrics(noise, noise.copy(), SR, extended=True)
    assert set(scores) == {"esr", "esr_pre_emph", "mae", "mrstft"} | EXTENDED
    assert all(type(v) is float for v in scores.values())
    for key in EXTENDED - {"null_residual_db"}:
        assert scores[key] == 0.0, key
    assert scores["null_residual_db"] == NULL_RESIDUAL_FLOOR_DB == -200.0


def test_extended_metrics_match_their_functions(noise: np.ndarray) -> None:
    estimate = 0.8 * noise + 0.01
    scores = compute_metrics(noise, estimate, SR, extended=True)
    assert scores["mae_energy_norm"] == mae_energy_norm(noise, estimate)
    assert scores["mel_distance"] == pytest.approx(mel_distance(noise, estimate, SR), rel=1e-12)
    assert scores["mfcc_cosine_distance"] == pytest.approx(
        mfcc_cosine_distance(noise, estimate, SR), rel=1e-12
    )
    assert scores["modulation_distance"] == modulation_spectrum_distance(noise, estimate, SR)
    assert scores["loudness_diff_lufs"] == loudness_difference_lufs(noise, estimate, SR)
    assert scores["null_residual_db"] == null_residual_db(noise, estimate)


@pytest.mark.parametrize("gain", [0.5, 0.9, 1.25])
def test_gain_gives_closed_form_residual_and_loudness(noise: np.ndarray, gain: float) -> None:
    noise = noise.astype(np.float64)  # so gain * noise is not rounded to float32
    assert null_residual_db(noise, gain * noise) == pytest.approx(
        20 * math.log10(abs(1 - gain)), abs=1e-9
    )
    assert loudness_difference_lufs(noise, gain * noise, SR) == pytest.approx(
        20 * math.log10(gain), abs=0.1
    )
    # Energy normalisation removes a pure gain entirely.
    assert mae_energy_norm(noise, gain * noise) == pytest.approx(0.0, abs=1e-6)
    # Above the -100 dB floor every mel bin moves by the gain in dB.
    assert mel_distance(noise, gain * noise, SR) == pytest.approx(
        abs(20 * math.log10(gain)), rel=1e-4
    )


def test_noise_against_silence_has_null_residual_zero_db() -> None:
    x = np.random.default_rng(1).normal(0.0, 0.2, 20_000)
    assert null_residual_db(x, np.zeros_like(x)) == pytest.approx(0.0, abs=1e-12)


def test_energy_normalised_mae_of_a_sign_flip_is_twice_mean_abs_normal() -> None:
    # x / rms(x) is close to standard normal, so |z - (-z)| = 2|z| averages 2 sqrt(2/pi).
    x = np.random.default_rng(3).normal(0.0, 0.05, 200_000)
    assert mae_energy_norm(x, -x) == pytest.approx(2 * math.sqrt(2 / math.pi), rel=0.01)


def test_timbre_distances_see_a_lowpass_more_than_a_small_gain(noise: np.ndarray) -> None:
    sos = signal.butter(4, 2000.0, "lowpass", fs=SR, output="sos")
    lowpassed = signal.sosfilt(sos, noise, axis=-1)
    quieter = 0.99 * noise
    assert mel_distance(noise, lowpassed, SR) > 100 * mel_distance(noise, quieter, SR)
    assert mfcc_cosine_distance(noise, lowpassed, SR) > 1000 * mfcc_cosine_distance(
        noise, quieter, SR
    )
    assert mfcc_cosine_distance(noise, lowpassed, SR) > 0.05


def test_modulation_distance_sees_tremolo_not_a_steady_gain() -> None:
    t = np.arange(4 * SR) / SR
    tone = 0.3 * np.sin(2 * np.pi * 440 * t)
    tremolo = tone * (1 - 0.5 * (0.5 + 0.5 * np.sin(2 * np.pi * 4 * t)))
    steady = modulation_spectrum_distance(tone, 0.7 * tone, SR)
    wobbly = modulation_spectrum_distance(tone, tremolo, SR)
    assert steady < 0.01
    assert wobbly > 3.0


def test_extended_metrics_are_fast_on_30_seconds() -> None:
    x = np.random.default_rng(4).standard_normal((2, 30 * SR)).astype(np.float32) * 0.1
    y = (0.9 * x).astype(np.float32)
    mel_distance(x[:, :SR], y[:, :SR], SR)  # librosa's first call loads its filters
    start = time.perf_counter()
    scores = compute_metrics(x, y, SR, extended=True)
    seconds = time.perf_counter() - start
    assert scores["loudness_diff_lufs"] == pytest.approx(20 * math.log10(0.9), abs=0.1)
    assert seconds < 15.0  # mrstft alone takes most of this; the extended ones about 1 s


def test_short_and_silent_audio_stay_finite() -> None:
    short = np.random.default_rng(5).standard_normal(1000) * 0.1
    silent = np.zeros(1000)
    assert loudness_difference_lufs(short, 0.5 * short, SR) == pytest.approx(
        20 * math.log10(0.5), abs=0.1
    )
    assert loudness_difference_lufs(silent, silent, SR) == 0.0
    for name, value in compute_metrics(silent, silent, SR, extended=True).items():
        assert math.isfinite(value), name
    with pytest.raises(FxcloneError, match="sample rate"):
        mel_distance(short, short, 0)


def test_modulation_distance_is_blind_to_the_oscillator_phase() -> None:
    from fxclone.effects.registry import get_effect
    from fxclone.metrics import modulation_distance

    sr = 16000
    rng = np.random.default_rng(0)
    dry = (0.3 * rng.standard_normal((1, 10 * sr))).astype(np.float32)
    tremolo = get_effect("tremolo")
    knobs = {k.name: k.default for k in tremolo.knobs}
    wet = tremolo.process(dry, sr, knobs)
    shifted = tremolo.process(dry, sr, knobs | {"phase": 90.0})
    faster = tremolo.process(dry, sr, knobs | {"rate": 6.0})
    assert modulation_distance(wet, wet, sr) == 0.0
    assert modulation_distance(wet, shifted, sr) < 0.05  # same modulation, a quarter cycle on
    assert modulation_distance(wet, dry, sr) > 0.2  # no modulation
    assert modulation_distance(wet, faster, sr) > 0.2  # another rate
    with pytest.raises(FxcloneError):
        modulation_distance(wet[:, :100], wet[:, :100], sr)
