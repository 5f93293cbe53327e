"""Time-based built-ins: delay times, repeat decay, RT60, pre-delay, dispersion, saturation."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import signal

from fxclone.effects import get_effect
from fxclone.effects.reverbs import schroeder_rt60

FS = 16000
NAMES = ["delay", "tape_echo", "reverb", "spring"]


def _impulse(seconds: float, amplitude: float = 1.0, at: int = 0) -> np.ndarray:
    x = np.zeros((1, int(seconds * FS)), dtype=np.float32)
    x[0, at] = amplitude
    return x


def _lag_of_peak(dry: np.ndarray, wet: np.ndarray) -> int:
    """Lag in samples (>= 0) where the cross-correlation of ``wet`` with ``dry`` peaks."""
    corr = signal.correlate(wet, dry, mode="full", method="fft")[dry.size - 1 :]
    return int(np.argmax(corr))


def _noise(seconds: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (0.3 * rng.standard_normal((1, int(seconds * FS)))).astype(np.float32)


# --------------------------------------------------------------------------------------------
# delay


@pytest.mark.parametrize("time_ms", [5.0, 125.0, 350.0, 1000.0])
def test_delay_echo_lands_at_the_set_time(time_ms: float) -> None:
    dry = _noise(1.5)
    wet = get_effect("delay").render(dry, FS, {"time": time_ms, "feedback": 0, "mix": 100})
    assert abs(_lag_of_peak(dry[0], wet[0]) - time_ms * FS / 1000) <= 1


@pytest.mark.parametrize("feedback", [20.0, 50.0, 80.0])
def test_delay_repeats_decay_by_the_feedback_per_repeat(feedback: float) -> None:
    delay_samples = 1600  # 100 ms
    knobs = {"time": 100, "feedback": feedback, "tone": 2000, "mix": 100}
    # An impulse: the tone filter has unity DC gain, so each repeat's sum is exactly g times
    # the last one's.
    wet = get_effect("delay").render(_impulse(0.6), FS, knobs)[0].astype(np.float64)
    repeats = wet[: 5 * delay_samples].reshape(5, delay_samples)[1:]
    np.testing.assert_allclose(
        repeats.sum(axis=1)[1:] / repeats.sum(axis=1)[:-1], feedback / 100, rtol=0.05
    )
    # A 10 ms pulse sits far below the tone corner (whose step response does not overshoot
    # there): each repeat plateaus at g times the last.
    pulse = np.zeros((1, int(0.6 * FS)), dtype=np.float32)
    pulse[0, :160] = 0.5
    wet = get_effect("delay").render(pulse, FS, knobs)[0]
    peaks = np.abs(wet[: 5 * delay_samples].reshape(5, delay_samples)[1:]).max(axis=1)
    np.testing.assert_allclose(peaks[1:] / peaks[:-1], feedback / 100, rtol=0.05)


# --------------------------------------------------------------------------------------------
# tape echo


@pytest.mark.parametrize("time_ms", [20.0, 250.0])
def test_tape_echo_without_wow_is_exactly_on_time(time_ms: float) -> None:
    knobs = {"time": time_ms, "feedback": 0, "wow_flutter": 0, "mix": 100}
    wet = get_effect("tape_echo").render(_impulse(0.5, amplitude=0.01), FS, knobs)[0]
    # The echo starts on the exact sample (the loop filters add their own smear after it).
    assert np.argmax(wet != 0.0) == round(time_ms * FS / 1000)


@pytest.mark.parametrize("time_ms", [80.0, 300.0])
def test_tape_echo_with_wow_is_on_time_on_average(time_ms: float) -> None:
    dry = _noise(2.0)
    knobs = {"time": time_ms, "feedback": 0, "wow_flutter": 100, "mix": 100}
    wet = get_effect("tape_echo").render(dry, FS, knobs)
    lag_ms = _lag_of_peak(dry[0], wet[0]) * 1000 / FS
    assert abs(lag_ms - time_ms) <= 2.0


def test_tape_echo_saturates_loud_repeats() -> None:
    """Loud repeats lose more per pass than quiet ones: the loop is not linear."""
    t = np.arange(int(0.02 * FS)) / FS
    burst = np.sin(2 * np.pi * 400 * t)  # 20 ms, inside the tape's pass band

    def second_over_first(amplitude: float) -> float:
        dry = np.zeros((1, int(0.7 * FS)), dtype=np.float32)
        dry[0, : burst.size] = amplitude * burst
        knobs = {"time": 200, "feedback": 80, "wow_flutter": 0, "drive": 18, "mix": 100}
        wet = get_effect("tape_echo").render(dry, FS, knobs)[0]
        n = 3200  # 200 ms per repeat
        return float(np.abs(wet[2 * n : 3 * n]).max() / np.abs(wet[n : 2 * n]).max())

    quiet, loud = second_over_first(0.001), second_over_first(1.0)
    assert quiet == pytest.approx(0.8, rel=0.1)  # the small-signal law: feedback per pass
    assert loud < 0.9 * quiet


# --------------------------------------------------------------------------------------------
# reverb


@pytest.mark.parametrize("type_index", [0, 1, 2])
@pytest.mark.parametrize("decay_s", [0.5, 1.5, 4.0])
def test_reverb_rt60_matches_the_decay_knob(type_index: int, decay_s: float) -> None:
    knobs = {"decay": decay_s, "type": type_index, "predelay": 0, "mix": 100}
    ir = get_effect("reverb").render(_impulse(1.5 * decay_s + 0.3), FS, knobs)[0]
    assert schroeder_rt60(ir, FS, band_hz=500.0) == pytest.approx(decay_s, rel=0.15)


@pytest.mark.parametrize("predelay_ms", [0.0, 25.0, 120.0])
def test_reverb_onset_is_the_predelay(predelay_ms: float) -> None:
    knobs = {"decay": 1.0, "predelay": predelay_ms, "mix": 100}
    ir = get_effect("reverb").render(_impulse(0.5, at=100), FS, knobs)[0]
    onset_ms = (np.argmax(np.abs(ir) > 1e-6) - 100) * 1000 / FS
    assert abs(onset_ms - predelay_ms) <= 1.0


# --------------------------------------------------------------------------------------------
# spring


@pytest.mark.parametrize("decay_s", [0.6, 2.0, 4.0])
def test_spring_rt60_matches_the_decay_knob_at_low_drive(decay_s: float) -> None:
    knobs = {"decay": decay_s, "drive": 0, "mix": 100}
    ir = get_effect("spring").render(_impulse(1.5 * decay_s + 0.3, amplitude=0.01), FS, knobs)[0]
    assert schroeder_rt60(ir, FS, band_hz=1000.0) == pytest.approx(decay_s, rel=0.15)


def _arrival_ms(ir: np.ndarray, centre_hz: float) -> float:
    """When the envelope of ``ir`` in a narrow band around ``centre_hz`` first reaches half
    its maximum: the first spring's arrival (the second spring's comes 6.7 ms later)."""
    sos = signal.butter(2, [centre_hz / 1.15, centre_hz * 1.15], "bandpass", fs=FS, output="sos")
    envelope = np.abs(signal.hilbert(signal.sosfiltfilt(sos, ir)))
    return float(np.argmax(envelope >= 0.5 * envelope.max()) * 1000 / FS)


def test_spring_echo_is_dispersive() -> None:
    knobs = {"decay": 1.0, "drive": 0, "mix": 100}
    ir = get_effect("spring").render(_impulse(0.07, amplitude=0.01), FS, knobs)[0]
    # Only the first trips (37-60 ms): lows arrive later than highs.
    low, high = _arrival_ms(ir, 500.0), _arrival_ms(ir, 3000.0)
    assert 35.0 <= high < low <= 60.0
    assert low - high > 5.0


def test_spring_is_nonlinear_at_high_drive() -> None:
    dry = _noise(0.5)
    spring = get_effect("spring")
    for drive, linear in ((0.0, True), (30.0, False)):
        knobs = {"drive": drive, "mix": 100}
        quiet, loud = spring.render(0.01 * dry, FS, knobs), spring.render(0.1 * dry, FS, knobs)
        error = np.linalg.norm(loud - 10 * quiet) / np.linalg.norm(loud)
        assert (error < 0.01) if linear else (error > 0.3)


# --------------------------------------------------------------------------------------------
# all time-based effects


@pytest.mark.parametrize("name", NAMES)
def test_deterministic_causal_shape_and_float32(name: str) -> None:
    effect = get_effect(name)
    dry = _impulse(0.3, at=2000)
    first, second = effect.render(dry, FS), effect.render(dry.copy(), FS)
    assert first.dtype == np.float32 and first.shape == dry.shape
    np.testing.assert_array_equal(first, second)
    assert np.all(first[:, :2000] == 0.0)  # nothing before the impulse
    assert np.abs(first[:, 2000:]).max() > 0.1


@pytest.mark.parametrize("name", NAMES)
def test_stereo_channels_are_processed_alone(name: str) -> None:
    stereo = np.vstack([_noise(0.3, seed=1), _noise(0.3, seed=2)])
    effect = get_effect(name)
    wet = effect.render(stereo, FS)
    for ch in range(2):
        np.testing.assert_array_equal(wet[ch], effect.render(stereo[ch : ch + 1], FS)[0])


@pytest.mark.parametrize("name", ["tape_echo", "reverb", "spring"])
def test_full_scale_noise_stays_below_one_at_defaults(name: str) -> None:
    dry = np.random.default_rng(0).uniform(-1, 1, (1, FS)).astype(np.float32)
    assert np.abs(get_effect(name).render(dry, FS)).max() < 1.0


def test_delay_peak_stays_within_its_documented_bound() -> None:
    """Unity dry plus echoes can pass 1; the bound is (1 - m) + m / (1 - g) at DC."""
    dry = np.random.default_rng(0).uniform(-1, 1, (1, FS)).astype(np.float32)
    peak = np.abs(get_effect("delay").render(dry, FS)).max()
    assert peak < 0.7 + 0.3 / (1 - 0.35)
