"""Numbers for the filter-family effects: highpass, eq, pitch, octave, bitcrusher."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fxclone.effects import get_effect
from fxclone.effects.filters import quantise
from fxclone.effects.pitch import pitch_latency_samples

FS = 48000
NAMES = ("highpass", "eq", "pitch", "octave", "bitcrusher")


def _tone(freq_hz: float, seconds: float = 0.5, amplitude: float = 1.0) -> np.ndarray:
    t = np.arange(int(seconds * FS)) / FS
    return (amplitude * np.sin(2 * np.pi * freq_hz * t))[None].astype(np.float32)


def _amplitude_at(y: np.ndarray, freq_hz: float) -> float:
    """Amplitude of the ``freq_hz`` component of ``y`` (least squares on sin and cos)."""
    t = np.arange(y.size) / FS
    w = 2 * np.pi * freq_hz * t
    basis = np.stack([np.sin(w), np.cos(w)], axis=1)
    coef, *_ = np.linalg.lstsq(basis, y.astype(np.float64), rcond=None)
    return float(np.hypot(*coef))


def _gain_db(name: str, knobs: dict[str, float], freq_hz: float) -> float:
    """Steady-state gain at ``freq_hz``, from the second half of a 0.2 s sine."""
    dry = _tone(freq_hz, seconds=0.2)
    wet = get_effect(name).render(dry, FS, knobs)[0]
    half = wet.size // 2
    return 20 * math.log10(
        _amplitude_at(wet[half:], freq_hz) / _amplitude_at(dry[0, half:], freq_hz)
    )


def _f0_hz(y: np.ndarray) -> float:
    """Frequency of the strongest partial: zero-padded Hann FFT, parabolic peak on log |X|."""
    n_fft = 1 << 21
    spectrum = np.abs(np.fft.rfft(y.astype(np.float64) * np.hanning(y.size), n_fft))
    k = int(np.argmax(spectrum))
    a, b, c = np.log(spectrum[k - 1 : k + 2])
    return (k + 0.5 * (a - c) / (a - 2 * b + c)) * FS / n_fft


# --------------------------------------------------------------------------------------------
# every effect of this family


@pytest.mark.parametrize("name", NAMES)
def test_deterministic_shape_kept_and_stereo_per_channel(name: str) -> None:
    rng = np.random.default_rng(3)
    stereo = (0.3 * rng.standard_normal((2, FS // 4))).astype(np.float32)
    effect = get_effect(name)
    wet = effect.render(stereo, FS)
    assert wet.shape == stereo.shape and wet.dtype == np.float32
    np.testing.assert_array_equal(wet, effect.render(stereo.copy(), FS))
    for ch in range(2):
        np.testing.assert_allclose(wet[ch], effect.render(stereo[ch : ch + 1], FS)[0], atol=1e-6)


@pytest.mark.parametrize("name", ("eq", "octave", "bitcrusher"))
def test_full_scale_tone_stays_below_full_scale_at_defaults(name: str) -> None:
    for freq_hz in (82.0, 220.0, 997.0, 3000.0):
        assert np.abs(get_effect(name).render(_tone(freq_hz), FS)).max() < 1.0


# --------------------------------------------------------------------------------------------
# highpass


@pytest.mark.parametrize(("cutoff_hz", "order"), [(100.0, 1), (440.0, 2), (2000.0, 4), (8000.0, 8)])
def test_highpass_minus_3db_point_is_the_cutoff(cutoff_hz: float, order: int) -> None:
    knobs = {"cutoff": cutoff_hz, "order": order}
    lo, hi = math.log(cutoff_hz / 1.5), math.log(cutoff_hz * 1.5)
    for _ in range(12):  # bisection on log frequency for the -3.01 dB crossing
        mid = 0.5 * (lo + hi)
        if _gain_db("highpass", knobs, math.exp(mid)) < -10 * math.log10(2):
            lo = mid
        else:
            hi = mid
    assert math.exp(0.5 * (lo + hi)) == pytest.approx(cutoff_hz, rel=0.05)


@pytest.mark.parametrize("order", [1, 2, 4, 8])
def test_highpass_slope_is_6db_per_octave_per_order(order: int) -> None:
    knobs = {"cutoff": 4000.0, "order": order}
    slope = _gain_db("highpass", knobs, 500.0) - _gain_db("highpass", knobs, 250.0)
    assert slope == pytest.approx(6.02 * order, abs=1.5)
    assert abs(_gain_db("highpass", knobs, 16000.0)) < 0.3  # 2 octaves up: passband


# --------------------------------------------------------------------------------------------
# eq

_FLAT = {"low_gain": 0.0, "mid_gain": 0.0, "high_gain": 0.0}


@pytest.mark.parametrize("gain_db", [9.0, -6.0])
@pytest.mark.parametrize(("freq_hz", "q"), [(1000.0, 1.0), (250.0, 4.0)])
def test_eq_peak_centre_gain_is_the_knob(gain_db: float, freq_hz: float, q: float) -> None:
    knobs = {**_FLAT, "mid_freq": freq_hz, "mid_gain": gain_db, "mid_q": q}
    assert _gain_db("eq", knobs, freq_hz) == pytest.approx(gain_db, abs=0.5)
    assert abs(_gain_db("eq", knobs, freq_hz * 8)) < abs(gain_db) / 4  # and it is a peak


@pytest.mark.parametrize("gain_db", [6.0, -12.0])
def test_eq_shelves_reach_their_gain(gain_db: float) -> None:
    low = {**_FLAT, "low_freq": 300.0, "low_gain": gain_db}
    assert _gain_db("eq", low, 30.0) == pytest.approx(gain_db, abs=0.5)
    assert abs(_gain_db("eq", low, 5000.0)) < 0.5
    high = {**_FLAT, "high_freq": 3000.0, "high_gain": gain_db}
    assert _gain_db("eq", high, 20000.0) == pytest.approx(gain_db, abs=0.5)
    assert abs(_gain_db("eq", high, 200.0)) < 0.5


def test_eq_is_flat_with_all_gains_zero() -> None:
    for freq_hz in (30.0, 100.0, 1000.0, 8000.0, 18000.0):
        assert abs(_gain_db("eq", _FLAT, freq_hz)) < 0.1


# --------------------------------------------------------------------------------------------
# pitch


@pytest.mark.parametrize("semitones", [-12.0, -5.0, 7.0, 12.0])
def test_pitch_hits_the_interval_within_5_cents(semitones: float) -> None:
    dry = _tone(440.0, seconds=1.2, amplitude=0.5)
    wet = get_effect("pitch").render(dry, FS, {"semitones": semitones, "mix": 100})[0]
    assert wet.shape == dry.shape[1:]
    steady = wet[pitch_latency_samples(FS) + FS // 8 :][: FS // 2]
    cents = 1200 * math.log2(_f0_hz(steady) / (440.0 * 2 ** (semitones / 12)))
    assert abs(cents) < 5
    assert np.abs(steady).max() == pytest.approx(0.5, rel=0.02)  # level kept


def test_pitch_latency_is_fixed_and_output_lines_up_with_dry() -> None:
    delay = pitch_latency_samples(FS)
    assert delay == 3616
    click = np.zeros((1, FS // 2), dtype=np.float32)
    click[0, 1000] = 1.0
    for semitones in (-12.0, 0.0, 12.0):
        wet = get_effect("pitch").render(click, FS, {"semitones": semitones, "mix": 0})
        assert int(np.argmax(np.abs(wet))) == 1000 + delay
        assert np.abs(wet[0, : 1000 + delay]).max() == 0.0


# --------------------------------------------------------------------------------------------
# octave


def test_octave_up_puts_the_energy_an_octave_up() -> None:
    wet = get_effect("octave").render(_tone(220.0), FS, {"down": 0, "up": 100, "dry": 0})[0]
    steady = wet[FS // 4 :]
    assert _amplitude_at(steady, 440.0) > 100 * _amplitude_at(steady, 220.0)  # 40 dB
    assert _amplitude_at(steady, 440.0) == pytest.approx(4 / (3 * math.pi), rel=0.05)


def test_octave_down_makes_a_sub_octave() -> None:
    wet = get_effect("octave").render(_tone(220.0), FS, {"down": 100, "up": 0, "dry": 0})[0]
    steady = wet[FS // 4 :]
    sub, fundamental = _amplitude_at(steady, 110.0), _amplitude_at(steady, 220.0)
    assert sub > 0.5  # above the input fundamental's level (1.0) minus 6 dB
    assert fundamental < 0.05 * sub


# --------------------------------------------------------------------------------------------
# bitcrusher


@pytest.mark.parametrize("bits", [1, 3, 8, 12])
def test_bitcrusher_has_at_most_2_to_the_bits_levels(bits: int) -> None:
    ramp = np.linspace(-1.0, 1.0, 2 * FS, dtype=np.float32)[None]
    knobs = {"bits": bits, "downsample": 1, "mix": 100}
    wet = get_effect("bitcrusher").render(ramp, FS, knobs)
    assert len(np.unique(wet)) == 2**bits
    np.testing.assert_allclose(wet[0], ramp[0], atol=1.0 / 2**bits + 1e-7)  # round to nearest


@pytest.mark.parametrize("hold", [2, 5, 32])
def test_bitcrusher_holds_each_sample_for_downsample_samples(hold: int) -> None:
    rng = np.random.default_rng(0)
    dry = rng.uniform(-0.9, 0.9, (1, 64 * hold)).astype(np.float32)
    wet = get_effect("bitcrusher").render(dry, FS, {"bits": 16, "downsample": hold, "mix": 100})
    runs = wet[0].reshape(-1, hold)
    assert (runs == runs[:, :1]).all()
    np.testing.assert_allclose(runs[:, 0], dry[0, ::hold], atol=2.0**-16)


def test_quantiser_keeps_silence_silent_and_clips_below_full_scale() -> None:
    np.testing.assert_array_equal(quantise(np.zeros(4), 4), np.zeros(4))
    assert quantise(np.array([5.0, -5.0]), 4).tolist() == [1 - 2**-4, -(1 - 2**-4)]
