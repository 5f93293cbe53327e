"""The drive effects (overdrive, fuzz, ampcab): harmonics, gating, cabinet curve, contract."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from fxclone.effects import get_effect
from fxclone.effects.drive import _Cascade, cabinet_ir, cabinet_response
from fxclone.effects.dsp import oversampled
from fxclone.report.measure import harmonic_amplitudes, thd

FS = 48000
NAMES = ("overdrive", "fuzz", "ampcab")


def _tone(freq_hz: float, amplitude: float = 1.0, seconds: float = 1.0) -> np.ndarray:
    t = np.arange(int(seconds * FS)) / FS
    return (amplitude * np.sin(2 * np.pi * freq_hz * t))[None].astype(np.float32)


def _db(ratio: float) -> float:
    return 20.0 * math.log10(max(ratio, 1e-12))


def _rms(y: np.ndarray) -> float:
    return float(np.sqrt(np.mean(y[FS // 4 :].astype(np.float64) ** 2)))


# --------------------------------------------------------------------------------------------
# harmonics


@pytest.mark.parametrize(
    ("name", "knob", "settings", "amplitude", "fixed"),
    [
        ("overdrive", "drive", (0, 10, 20, 30, 40), 0.5, {}),
        # Unbiased: with a dead band, a quiet tone at low gain is all crossover distortion.
        ("fuzz", "fuzz", (20, 30, 40, 50), 0.02, {"bias": 0}),
        ("ampcab", "gain", (0, 15, 30, 45), 0.1, {}),
    ],
)
def test_thd_rises_with_drive(
    name: str,
    knob: str,
    settings: tuple[float, ...],
    amplitude: float,
    fixed: dict[str, float],
) -> None:
    effect, dry = get_effect(name), _tone(500.0, amplitude)
    curve = [thd(effect.render(dry, FS, {**fixed, knob: v})[0], 500.0, FS) for v in settings]
    assert all(a < b for a, b in itertools.pairwise(curve)), curve
    assert curve[-1] > 5 * curve[0] and curve[-1] > 0.1


def test_fuzz_bias_adds_even_harmonics() -> None:
    fuzz, dry = get_effect("fuzz"), _tone(500.0, 0.5)

    def second_harmonic_db(bias: float) -> float:
        h = harmonic_amplitudes(fuzz.render(dry, FS, {"bias": bias})[0], 500.0, FS)
        return _db(h[1] / h[0])

    low, high = second_harmonic_db(10), second_harmonic_db(90)
    assert high > low + 10.0
    assert high > -45.0


def test_fuzz_gate_cuts_quiet_signals_at_high_bias() -> None:
    fuzz = get_effect("fuzz")
    quiet, loud = 10 ** (-50 / 20), 0.5

    def gain_db(amplitude: float, bias: float) -> float:
        dry = _tone(500.0, amplitude)
        return _db(_rms(fuzz.render(dry, FS, {"bias": bias})[0]) / _rms(dry[0]))

    # Unbiased, the stage only compresses: a quiet note gets more gain than a loud one.
    assert gain_db(quiet, 0) > gain_db(loud, 0) + 20.0
    # Starved, the dead band swallows the quiet note.
    assert gain_db(quiet, 100) < gain_db(loud, 100) - 10.0


# --------------------------------------------------------------------------------------------
# ampcab


@pytest.mark.parametrize("sample_rate", [44100, 48000, 96000])
def test_cabinet_ir_follows_the_documented_curve(sample_rate: int) -> None:
    ir = cabinet_ir(sample_rate)
    n_fft = 1 << 17
    measured_db = 20 * np.log10(np.abs(np.fft.rfft(ir, n_fft)))
    points = np.geomspace(100.0, 5000.0, 50)
    measured = np.interp(points, np.fft.rfftfreq(n_fft, 1 / sample_rate), measured_db)
    freqs, documented = cabinet_response(sample_rate, points)
    np.testing.assert_array_equal(freqs, points)
    assert np.abs(measured - documented).max() < 0.5


def test_cabinet_curve_has_the_shape_of_a_guitar_cab() -> None:
    _, db = cabinet_response(FS, np.array([50.0, 120.0, 500.0, 2500.0, 10000.0]))
    assert db[0] < -10.0  # below the speaker's resonance
    assert db[1] > 1.0  # resonance bump
    assert db[3] > db[2] + 5.0  # presence peak over the low mids
    assert db[4] < -25.0  # a 12" cone has little above 5 kHz


def test_cabinet_ir_is_deterministic_and_front_loaded() -> None:
    ir = cabinet_ir(FS)
    np.testing.assert_array_equal(ir, cabinet_ir(FS))
    energy = np.cumsum(ir**2) / np.sum(ir**2)
    assert energy[int(0.005 * FS)] > 0.9  # minimum phase: most energy in the first 5 ms


@pytest.mark.parametrize(("knob", "freq_hz"), [("bass", 100.0), ("mid", 700.0), ("treble", 3000.0)])
def test_tone_stack_boosts_its_band(knob: str, freq_hz: float) -> None:
    amp, dry = get_effect("ampcab"), _tone(freq_hz, 0.01)

    def level(value: float) -> float:
        wet = amp.render(dry, FS, {"gain": 0, knob: value})[0]
        return harmonic_amplitudes(wet, freq_hz, FS)[0]

    assert _db(level(12) / level(0)) > 6.0
    assert _db(level(-12) / level(0)) < -6.0


# --------------------------------------------------------------------------------------------
# contract


@pytest.mark.parametrize("name", NAMES)
def test_output_before_an_impulse_is_zero(name: str) -> None:
    dry = np.zeros((1, 4000), dtype=np.float32)
    dry[0, 2000] = 0.9
    wet = get_effect(name).render(dry, FS)
    assert np.abs(wet[0, :2000]).max() < 1e-9
    assert np.abs(wet[0, 2000:]).max() > 1e-3


@pytest.mark.parametrize("name", NAMES)
def test_deterministic_shape_kept_and_channels_independent(name: str) -> None:
    effect = get_effect(name)
    rng = np.random.default_rng(7)
    stereo = (rng.uniform(-0.5, 0.5, (2, 9000)) * [[1.0], [0.1]]).astype(np.float32)
    wet = effect.render(stereo, FS)
    assert wet.shape == stereo.shape and wet.dtype == np.float32
    np.testing.assert_array_equal(wet, effect.render(stereo, FS))
    for ch in range(2):
        np.testing.assert_allclose(wet[ch], effect.render(stereo[ch : ch + 1], FS)[0], atol=1e-7)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("freq_hz", [100.0, 1000.0])
def test_full_scale_sine_peaks_below_one_at_defaults(name: str, freq_hz: float) -> None:
    wet = get_effect(name).render(_tone(freq_hz), FS)
    assert np.isfinite(wet).all()
    assert 0.1 < np.abs(wet).max() < 1.0


@pytest.mark.parametrize("name", NAMES)
def test_full_scale_square_peaks_below_one_at_defaults(name: str) -> None:
    square = np.sign(_tone(50.0)).astype(np.float32)
    assert np.abs(get_effect(name).render(square, FS)).max() < 1.0


def test_oversampled_stage_does_not_depend_on_block_size() -> None:
    x = np.random.default_rng(3).standard_normal((2, 1500)) * 3
    sos = np.array([[0.5, 0.5, 0.0, 1.0, -0.2, 0.0]])

    def run(block: int) -> np.ndarray:
        filt = _Cascade(sos, channels=2)
        return oversampled(x, lambda u: np.tanh(filt(u)), block_samples=block)

    reference = run(16384)
    for block in (1, 333, 1024):
        np.testing.assert_allclose(run(block), reference, atol=1e-12)
