"""Modulation effects measured from their output: LFO rate, depth, phase, continuity."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import signal

from fxclone.effects import get_effect
from fxclone.effects.modulation import _allpass_loop, _feedback_tap

FS = 16000
SECONDS = 12.0
NAMES = ("tremolo", "vibrato", "chorus", "flanger", "phaser")
TRIM = FS // 2  # Hilbert-transform edge effects and the delay line filling up


def _sine(freq_hz: float, seconds: float = SECONDS, channels: int = 1) -> np.ndarray:
    t = np.arange(int(seconds * FS)) / FS
    return np.repeat(np.sin(2 * np.pi * freq_hz * t)[None], channels, 0).astype(np.float32)


def _analytic(y: np.ndarray) -> np.ndarray:
    return signal.hilbert(y.astype(np.float64))


def _peak_hz(wave: np.ndarray, sample_rate: float) -> float:
    """Frequency of the strongest component of ``wave`` (Hz): Hann window, 16x zero padding,
    parabolic interpolation of the log-magnitude peak; DC and below 0.03 Hz ignored."""
    wave = (wave - wave.mean()) * np.hanning(wave.size)
    size = 16 * wave.size
    magnitude = np.log(np.abs(np.fft.rfft(wave, size)) + 1e-30)
    lowest = int(math.ceil(0.03 * size / sample_rate))
    k = lowest + int(np.argmax(magnitude[lowest:-1]))
    a, b, c = magnitude[k - 1 : k + 2]
    return (k + 0.5 * (a - c) / (a - 2 * b + c)) * sample_rate / size


def _envelope(y: np.ndarray) -> np.ndarray:
    return np.abs(_analytic(y))[TRIM:-TRIM]


def _instantaneous_hz(y: np.ndarray) -> np.ndarray:
    phase = np.unwrap(np.angle(_analytic(y)))
    return (np.diff(phase) * FS / (2 * np.pi))[TRIM:-TRIM]


def _phase_shift(y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Phase of ``y`` relative to the tone ``x`` (radians, unwrapped), per sample."""
    return np.unwrap(np.angle(_analytic(y) * np.conj(_analytic(x))))[TRIM:-TRIM]


def _sinusoid_amplitude(wave: np.ndarray, freq_hz: float) -> float:
    t = np.arange(wave.size) / FS
    basis = np.stack([np.sin(2 * np.pi * freq_hz * t), np.cos(2 * np.pi * freq_hz * t)], 1)
    coef, *_ = np.linalg.lstsq(basis, wave - wave.mean(), rcond=None)
    return float(np.hypot(*coef))


def _measured_rate(name: str, rate_hz: float) -> float:
    """LFO rate read from the output of ``name`` for a steady 1 kHz tone (see the docs)."""
    effect, x = get_effect(name), _sine(1000.0)
    if name == "tremolo":
        return _peak_hz(_envelope(effect.render(x, FS, {"rate": rate_hz})[0]), FS)
    if name in ("vibrato", "chorus"):
        knobs = (
            {"rate": rate_hz} if name == "vibrato" else {"rate": rate_hz, "voices": 1, "mix": 100}
        )
        return _peak_hz(_instantaneous_hz(effect.render(x, FS, knobs)[0]), FS)
    y = effect.render(x, FS, {"rate": rate_hz, "mix": 100})
    return _peak_hz(_phase_shift(y[0], x[0]), FS)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("rate_hz", [1.3, 4.7])
def test_lfo_rate_measured_from_the_output_matches_the_knob(name: str, rate_hz: float) -> None:
    assert _measured_rate(name, rate_hz) == pytest.approx(rate_hz, rel=0.02)


@pytest.mark.parametrize("depth", [30.0, 60.0, 90.0])
def test_tremolo_depth_sets_the_loudest_to_quietest_ratio(depth: float) -> None:
    y = get_effect("tremolo").render(_sine(1000.0), FS, {"rate": 3.0, "depth": depth})[0]
    envelope = _envelope(y)
    assert envelope.max() / envelope.min() == pytest.approx(1 / (1 - depth / 100), rel=0.05)
    assert envelope.max() == pytest.approx(1.0, abs=0.01)


def test_tremolo_triangle_shape_spends_equal_time_at_every_gain() -> None:
    gain = get_effect("tremolo").render(np.ones((1, 4 * FS)), FS, {"rate": 1.0, "shape": 100})
    # A triangle LFO sweeps the gain at a constant speed, so its histogram is flat; a sine
    # lingers at the extremes.
    counts, _ = np.histogram(gain[0], bins=10)
    assert counts.max() / counts.min() < 1.01


def test_tremolo_phase_knob_shifts_the_lfo_by_that_fraction_of_a_period() -> None:
    tremolo, dc = get_effect("tremolo"), np.ones((1, 3 * FS), np.float32)
    half = FS // 4  # half a period at 2 Hz
    at_0 = tremolo.render(dc, FS, {"rate": 2.0, "phase": 0})[0]
    at_180 = tremolo.render(dc, FS, {"rate": 2.0, "phase": 180})[0]
    np.testing.assert_allclose(at_180[:-half], at_0[half:], atol=1e-6)
    assert np.abs(at_180 - at_0).max() > 0.4


@pytest.mark.parametrize("depth_ms", [0.5, 2.0])
def test_vibrato_frequency_swing_matches_the_delay_depth(depth_ms: float) -> None:
    rate_hz, f0 = 3.0, 1000.0
    y = get_effect("vibrato").render(_sine(f0), FS, {"rate": rate_hz, "depth": depth_ms})[0]
    swing = _sinusoid_amplitude(_instantaneous_hz(y), rate_hz)
    assert swing == pytest.approx(2 * np.pi * rate_hz * depth_ms * 1e-3 * f0, rel=0.10)


@pytest.mark.parametrize("name", NAMES)
def test_lfo_runs_on_across_the_call_and_rendering_is_deterministic(name: str) -> None:
    effect = get_effect(name)
    x = np.random.default_rng(0).uniform(-0.5, 0.5, (1, 3 * FS + 123)).astype(np.float32)
    whole = effect.render(x, FS)
    np.testing.assert_array_equal(whole, effect.render(x.copy(), FS))
    cut = x.shape[1] // 2
    restarted = effect.render(x[:, cut:], FS)
    # Restarting the LFO at the cut would give a different second half.
    assert np.abs(whole[:, cut + FS // 10 :] - restarted[:, FS // 10 :]).max() > 0.01


@pytest.mark.parametrize("name", NAMES)
def test_stereo_channels_share_the_lfo_and_are_processed_alone(name: str) -> None:
    effect = get_effect(name)
    noise = np.random.default_rng(1).uniform(-0.5, 0.5, (2, FS)).astype(np.float32)
    wet = effect.render(noise, FS)
    assert wet.shape == noise.shape and wet.dtype == np.float32
    for ch in range(2):
        np.testing.assert_allclose(wet[ch], effect.render(noise[ch : ch + 1], FS)[0], atol=1e-6)
    twin = effect.render(np.repeat(noise[:1], 2, 0), FS)
    np.testing.assert_array_equal(twin[0], twin[1])


@pytest.mark.parametrize("name", NAMES)
def test_full_scale_tones_stay_at_or_below_full_scale_at_defaults(name: str) -> None:
    tones = np.concatenate([_sine(f, seconds=2.0) for f in (60.0, 250.0, 1000.0, 4000.0)])
    peak = float(np.abs(get_effect(name).render(tones, FS)).max())
    # A moving all-pass is not exactly lossless: the phaser overshoots by up to 0.2 %.
    assert peak <= (1.003 if name == "phaser" else 1.0 + 1e-6)


def test_flanger_feedback_blocks_equal_the_per_sample_recursion() -> None:
    rng = np.random.default_rng(2)
    x, feedback = rng.standard_normal((2, 1500)), -0.8
    delay = 1.0 + 30 * np.abs(np.sin(np.arange(1500) / 80))  # down to exactly 1 sample
    line, expected = np.zeros_like(x), np.zeros_like(x)
    for n in range(x.shape[1]):
        i = math.floor(n - delay[n])
        f = n - delay[n] - i
        older = line[:, i] if i >= 0 else 0.0
        newer = line[:, i + 1] if i + 1 >= 0 else 0.0
        expected[:, n] = older * (1 - f) + newer * f
        line[:, n] = x[:, n] + feedback * expected[:, n]
    np.testing.assert_allclose(_feedback_tap(x, delay, feedback), expected, atol=1e-12)


def test_phaser_block_solver_equals_the_per_sample_recursion() -> None:
    rng = np.random.default_rng(3)
    x, stages, feedback = rng.standard_normal((2, 1000)), 6, 0.7
    coefficient = rng.uniform(-0.99, 0.99, -(-1000 // 32))
    expected = np.zeros_like(x)
    for ch in range(2):
        z, fed = [0.0] * stages, 0.0
        for n in range(x.shape[1]):
            a, u = coefficient[n // 32], x[ch, n] + feedback * fed
            for i in range(stages):
                out = a * u + z[i]
                z[i], u = u - a * out, out
            fed = expected[ch, n] = u
    np.testing.assert_allclose(
        _allpass_loop(x, coefficient, 32, stages, feedback), expected, atol=1e-10
    )


def test_phaser_notch_follows_the_sweep_limits() -> None:
    # At depth 0 the break frequency f_b sits at sqrt(low * high). Each stage shifts a tone
    # by -2 atan(tan(pi f / fs) / tan(pi f_b / fs)): four stages reach -180 deg (a notch at
    # mix 50 %) at the frequency below, and -360 deg (full level) at f_b itself.
    low, high = 250.0, 1000.0
    f_b = math.sqrt(low * high)
    notch = FS / math.pi * math.atan(math.tan(math.pi * f_b / FS) * math.tan(math.pi / 8))
    knobs = {"depth": 0, "low": low, "high": high, "feedback": 0, "stages": 4}
    phaser = get_effect("phaser")
    at_notch = phaser.render(_sine(notch, seconds=1.0), FS, knobs)[0, FS // 2 :]
    at_break = phaser.render(_sine(f_b, seconds=1.0), FS, knobs)[0, FS // 2 :]
    assert np.abs(at_notch).max() < 0.01
    assert np.abs(at_break).max() == pytest.approx(1.0, abs=0.01)
