"""Effect renderers: the registry contract for every effect, then each built-in's numbers."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from fxclone.effects import Effect, Knob, get_effect, list_effects, parse_knob_args
from fxclone.effects.builtin import (
    _branching_smoother,
    _clip_oversampled,
    time_constant_coefficient,
)
from fxclone.errors import FxcloneError
from fxclone.report.measure import harmonic_amplitudes, thd

FS = 48000
EFFECTS = list_effects()


def _tone(freq_hz: float, seconds: float = 1.0, amplitude: float = 1.0) -> np.ndarray:
    t = np.arange(int(seconds * FS)) / FS
    return (amplitude * np.sin(2 * np.pi * freq_hz * t))[None].astype(np.float32)


def _amplitude_at(y: np.ndarray, freq_hz: float) -> float:
    """Amplitude of the ``freq_hz`` component of ``y`` (least squares on sin and cos)."""
    t = np.arange(y.size) / FS
    basis = np.stack([np.sin(2 * np.pi * freq_hz * t), np.cos(2 * np.pi * freq_hz * t)], axis=1)
    coef, *_ = np.linalg.lstsq(basis, y.astype(np.float64), rcond=None)
    return float(np.hypot(*coef))


# --------------------------------------------------------------------------------------------
# registry


def test_builtins_are_registered_and_found_case_insensitively() -> None:
    names = [e.name for e in EFFECTS]
    assert {"distortion", "compressor", "lowpass"} <= set(names)
    assert names == sorted(names)
    assert get_effect(" Distortion ") is get_effect("distortion")


def test_unknown_effect_lists_the_available_ones() -> None:
    with pytest.raises(FxcloneError) as err:
        get_effect("reverbb")
    message = str(err.value)
    assert "'reverbb'" in message and "fxclone effects" in message
    for name in ("compressor", "distortion", "lowpass"):
        assert name in message


def test_unknown_knob_lists_the_valid_names() -> None:
    with pytest.raises(FxcloneError) as err:
        get_effect("distortion").resolve_knobs({"driv": 10})
    message = str(err.value)
    assert "'driv'" in message
    for name in ("drive", "tone", "level"):
        assert name in message


@pytest.mark.parametrize(
    ("knobs", "expected"),
    [
        ({"drive": 50}, ["'drive'", "50 dB", "0..40 dB"]),
        ({"tone": 100}, ["'tone'", "100 Hz", "500..8000 Hz"]),
        ({"drive": float("nan")}, ["'drive'", "nan"]),
        ({"drive": "loud"}, ["'drive'", "'loud'", "0..40 dB"]),
    ],
)
def test_bad_knob_values_are_refused_with_name_value_and_range(
    knobs: dict[str, object], expected: list[str]
) -> None:
    with pytest.raises(FxcloneError) as err:
        get_effect("distortion").render(_tone(500, 0.01), FS, knobs)  # type: ignore[arg-type]
    for part in expected:
        assert part in str(err.value)


def test_integer_knob_refuses_fractions() -> None:
    with pytest.raises(FxcloneError, match="'order' = 2.5 must be a whole number"):
        get_effect("lowpass").resolve_knobs({"order": 2.5})
    assert get_effect("lowpass").resolve_knobs({"order": 4}) == {"cutoff": 1000.0, "order": 4.0}


def test_resolve_knobs_fills_defaults() -> None:
    effect = get_effect("compressor")
    values = effect.resolve_knobs({"ratio": 8})
    assert values == {k.name: (8.0 if k.name == "ratio" else k.default) for k in effect.knobs}
    assert effect.resolve_knobs(None) == {k.name: k.default for k in effect.knobs}


def test_parse_knob_args() -> None:
    assert parse_knob_args(["drive=0.7", " tone = 3000 ", "level=-6"]) == {
        "drive": 0.7,
        "tone": 3000.0,
        "level": -6.0,
    }
    assert parse_knob_args([]) == {}
    for bad in ("drive", "drive=", "=3", "drive=abc", "drive=inf"):
        with pytest.raises(FxcloneError) as err:
            parse_knob_args([bad])
        assert repr(bad) in str(err.value)
    with pytest.raises(FxcloneError, match="use --knob NAME=VALUE"):
        parse_knob_args(["drive"])
    with pytest.raises(FxcloneError, match="given twice"):
        parse_knob_args(["drive=1", "drive=2"])


def test_knob_normalise_round_trips_and_is_geometric_on_log_knobs() -> None:
    tone = get_effect("distortion").knob("tone")
    assert tone.log_scale
    assert tone.normalise(500.0) == pytest.approx(0.0)
    assert tone.normalise(2000.0) == pytest.approx(0.5)  # geometric midpoint of 500..8000
    assert tone.normalise(8000.0) == pytest.approx(1.0)
    drive = get_effect("distortion").knob("drive")
    assert drive.normalise(10.0) == pytest.approx(0.25)
    for knob in (tone, drive):
        for u in (0.0, 0.3, 1.0):
            assert knob.normalise(knob.denormalise(u)) == pytest.approx(u)


def test_knob_declarations_are_checked() -> None:
    with pytest.raises(ValueError):
        Knob("x", "", 1.0, 0.0, 0.5, "min above max")
    with pytest.raises(ValueError):
        Knob("x", "", 0.0, 1.0, 2.0, "default out of range")
    with pytest.raises(ValueError):
        Knob("x", "Hz", 0.0, 1.0, 0.5, "log scale from zero", log_scale=True)


@pytest.mark.parametrize(
    ("audio", "match"),
    [
        (np.zeros(100, np.float32), r"shape \(100,\)"),
        (np.zeros((0, 100), np.float32), r"shape \(0, 100\)"),
        (np.full((1, 100), np.nan, np.float32), "NaN or Inf"),
    ],
)
def test_bad_audio_is_refused(audio: np.ndarray, match: str) -> None:
    with pytest.raises(FxcloneError, match=match):
        get_effect("lowpass").render(audio, FS)


@pytest.mark.parametrize("rate", [0, -48000, 44100.5, float("nan"), "48000", True])
def test_bad_sample_rate_is_refused(rate: object) -> None:
    with pytest.raises(FxcloneError, match="sample rate"):
        get_effect("lowpass").render(_tone(100, 0.01), rate)  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------
# contract: every registered effect


def _noise(channels: int, seconds: float = 0.25, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (0.3 * rng.standard_normal((channels, int(seconds * FS)))).astype(np.float32)


@pytest.mark.parametrize("effect", EFFECTS, ids=lambda e: e.name)
def test_render_is_deterministic_float32_and_shape_preserving(effect: Effect) -> None:
    dry = _noise(1)
    first, second = effect.render(dry, FS), effect.render(dry.copy(), FS)
    assert first.dtype == np.float32 and first.shape == dry.shape
    np.testing.assert_array_equal(first, second)
    assert np.isfinite(first).all() and np.abs(first).max() > 1e-3


@pytest.mark.parametrize("effect", EFFECTS, ids=lambda e: e.name)
def test_channels_are_processed_independently(effect: Effect) -> None:
    stereo = _noise(2)
    wet = effect.render(stereo, FS)
    assert wet.shape == (2, stereo.shape[1])
    for ch in range(2):
        np.testing.assert_allclose(wet[ch], effect.render(stereo[ch : ch + 1], FS)[0], atol=1e-6)
    assert not np.allclose(wet[0], wet[1])


@pytest.mark.parametrize("effect", EFFECTS, ids=lambda e: e.name)
def test_render_is_causal(effect: Effect) -> None:
    dry = _noise(1)
    cut = dry.shape[1] // 2
    changed = dry.copy()
    changed[:, cut:] = _noise(1, seed=1)[:, cut:]
    a, b = effect.render(dry, FS), effect.render(changed, FS)
    np.testing.assert_array_equal(a[:, :cut], b[:, :cut])
    assert not np.allclose(a[:, cut:], b[:, cut:])


@pytest.mark.parametrize("effect", EFFECTS, ids=lambda e: e.name)
@pytest.mark.parametrize("sample_rate", [8000, 22050, 96000])
def test_extreme_knobs_and_rates_give_finite_audio(effect: Effect, sample_rate: int) -> None:
    dry = _noise(1, seconds=0.05)
    assert effect.render(dry[:, :0], sample_rate).shape == (1, 0)
    for pick in (lambda k: k.minimum, lambda k: k.maximum):
        wet = effect.render(dry, sample_rate, {k.name: pick(k) for k in effect.knobs})
        assert np.isfinite(wet).all()


# --------------------------------------------------------------------------------------------
# compressor


def _square_carrier(envelope: np.ndarray) -> np.ndarray:
    """A 1 kHz square wave with the given envelope: |x| equals the envelope at every sample,
    so a peak detector reads the envelope exactly and the gain is ``wet / dry`` per sample."""
    signs = np.where((np.arange(envelope.size) // 24) % 2 == 0, 1.0, -1.0)
    return (signs * envelope)[None].astype(np.float32)


@pytest.mark.parametrize(
    ("level_db", "threshold_db", "ratio"),
    [(-6.0, -30.0, 4.0), (0.0, -20.0, 10.0), (-10.0, -40.0, 2.0)],
)
def test_compressor_steady_state_gain_reduction(
    level_db: float, threshold_db: float, ratio: float
) -> None:
    dry = _tone(1000.0, amplitude=10 ** (level_db / 20))
    knobs = {"threshold": threshold_db, "ratio": ratio, "knee": 0, "attack": 1, "release": 200}
    wet = get_effect("compressor").render(dry, FS, knobs)
    last = slice(FS // 2, FS)
    measured_db = 20 * math.log10(np.abs(wet[0, last]).max() / np.abs(dry[0, last]).max())
    expected_db = -(level_db - threshold_db) * (1 - 1 / ratio)
    assert measured_db == pytest.approx(expected_db, abs=1.0)


def test_compressor_soft_knee_and_makeup_follow_the_static_curve() -> None:
    compressor = get_effect("compressor")
    at_threshold = _square_carrier(np.full(FS // 10, 10 ** (-20 / 20)))
    knobs = {"threshold": -20, "ratio": 4, "knee": 12, "attack": 0.1, "release": 5}
    gain_db = 20 * np.log10(compressor.render(at_threshold, FS, knobs)[0, -1] / at_threshold[0, -1])
    # Giannoulis eq. 4 at the threshold: (1/R - 1) (W/2)^2 / (2W) = -0.75 * 12 / 8 dB.
    assert gain_db == pytest.approx(-1.125, abs=1e-3)
    quiet = _square_carrier(np.full(FS // 10, 10 ** (-40 / 20)))
    wet = compressor.render(quiet, FS, {"threshold": -20, "knee": 12, "makeup": 6})
    np.testing.assert_allclose(wet / quiet, 10 ** (6 / 20), rtol=1e-5)


@pytest.mark.parametrize(("attack_ms", "release_ms"), [(5.0, 100.0), (1.0, 40.0), (20.0, 300.0)])
def test_compressor_attack_and_release_time_constants(attack_ms: float, release_ms: float) -> None:
    on, off = FS // 10, FS // 10 + FS // 2
    envelope = np.full(off + 5 * int(release_ms * FS / 1000), 0.01)  # -40 dB: below threshold
    envelope[on:off] = 0.5  # -6 dB: 18 dB over threshold
    dry = _square_carrier(envelope)
    knobs = {"threshold": -24, "ratio": 4, "knee": 0, "attack": attack_ms, "release": release_ms}
    gain_db = 20 * np.log10(get_effect("compressor").render(dry, FS, knobs)[0] / dry[0])
    full_db = gain_db[off - 1]
    assert full_db == pytest.approx(-18 * 0.75, abs=0.05)
    attack_measured = np.argmax(gain_db[on:] <= full_db * (1 - 1 / math.e)) / FS * 1000
    release_measured = np.argmax(gain_db[off:] >= full_db / math.e) / FS * 1000
    assert attack_measured == pytest.approx(attack_ms, rel=0.2)
    assert release_measured == pytest.approx(release_ms, rel=0.2)


def _smoother_reference(target: np.ndarray, attack: float, release: float) -> np.ndarray:
    out, y = np.empty_like(target), 0.0
    for i, x in enumerate(target.tolist()):
        a = attack if x < y else release
        y = a * y + (1 - a) * x
        out[i] = y
    return out


@pytest.mark.parametrize(("attack_ms", "release_ms"), [(0.1, 2000.0), (5.0, 100.0), (200.0, 5.0)])
def test_vectorised_smoother_matches_the_per_sample_recursion(
    attack_ms: float, release_ms: float
) -> None:
    rng = np.random.default_rng(3)
    n = FS // 2
    envelope = np.repeat(rng.uniform(0.0, 1.0, 10), n // 10)
    level_db = 20 * np.log10(np.maximum(np.abs(rng.standard_normal(n) * envelope), 1e-10))
    target = np.minimum(0.0, -0.75 * (level_db + 30))
    attack = time_constant_coefficient(attack_ms, FS)
    release = time_constant_coefficient(release_ms, FS)
    fast = _branching_smoother(target, attack, release)
    np.testing.assert_allclose(fast, _smoother_reference(target, attack, release), atol=1e-8)


# --------------------------------------------------------------------------------------------
# lowpass


def _minus_3db_frequency(cutoff_hz: float, order: int) -> float:
    impulse = np.zeros((1, 1 << 17), np.float32)
    impulse[0, 0] = 1.0
    wet = get_effect("lowpass").render(impulse, FS, {"cutoff": cutoff_hz, "order": order})
    mag_db = 20 * np.log10(np.abs(np.fft.rfft(wet[0].astype(np.float64))))
    freqs = np.fft.rfftfreq(impulse.shape[1], 1 / FS)
    i = int(np.argmax(mag_db < -3.0103))
    # Interpolate between the two bins around the crossing.
    return float(np.interp(-3.0103, [mag_db[i], mag_db[i - 1]], [freqs[i], freqs[i - 1]]))


@pytest.mark.parametrize("order", [1, 2, 4, 8])
@pytest.mark.parametrize("cutoff_hz", [100.0, 1000.0, 10000.0])
def test_lowpass_minus_3db_point_is_the_cutoff(cutoff_hz: float, order: int) -> None:
    assert _minus_3db_frequency(cutoff_hz, order) == pytest.approx(cutoff_hz, rel=0.05)


@pytest.mark.parametrize("order", [1, 2, 3, 4, 6, 8])
def test_lowpass_slope_is_6db_per_octave_per_order(order: int) -> None:
    # Measured with sines (not an impulse) so 100+ dB of attenuation stays above float32's
    # noise floor; two and three octaves above the cutoff the slope is near its asymptote.
    cutoff_hz, lowpass = 200.0, get_effect("lowpass")
    gains_db = []
    for freq in (4 * cutoff_hz, 8 * cutoff_hz):
        wet = lowpass.render(_tone(freq, 0.5), FS, {"cutoff": cutoff_hz, "order": order})
        gains_db.append(20 * math.log10(_amplitude_at(wet[0, FS // 4 :], freq)))
    assert gains_db[0] - gains_db[1] == pytest.approx(6.0 * order, abs=1.5)


def test_lowpass_cutoff_above_nyquist_is_clamped() -> None:
    sample_rate = 22050
    t = np.arange(sample_rate) / sample_rate
    dry = np.sin(2 * np.pi * 100 * t)[None].astype(np.float32)
    wet = get_effect("lowpass").render(dry, sample_rate, {"cutoff": 20000})
    assert np.isfinite(wet).all()
    assert np.abs(wet[0, 1000:]).max() == pytest.approx(1.0, abs=1e-3)


# --------------------------------------------------------------------------------------------
# distortion


def test_distortion_thd_rises_with_drive() -> None:
    distortion = get_effect("distortion")
    dry = _tone(500.0, amplitude=0.5)
    curve = [thd(distortion.render(dry, FS, {"drive": d})[0], 500.0, FS) for d in (0, 12, 24, 36)]
    assert all(a < b for a, b in itertools.pairwise(curve))
    assert curve[0] < 0.06 and curve[-1] > 0.3


def test_distortion_makes_even_harmonics() -> None:
    h = harmonic_amplitudes(
        get_effect("distortion").render(_tone(500.0, amplitude=0.5), FS)[0], 500.0, FS
    )
    assert 20 * math.log10(h[1] / h[0]) > -50.0


def test_distortion_output_has_no_dc() -> None:
    wet = get_effect("distortion").render(_tone(500.0), FS, {"drive": 40})
    assert abs(float(wet[0, FS // 2 :].mean())) < 1e-3


def _static_fit_residual(dry: np.ndarray, wet: np.ndarray, bins: int = 256) -> float:
    """Energy left after the best memoryless map ``wet ~ g(dry)`` (per-bin means), relative."""
    order = np.argsort(dry)
    fit = np.empty_like(wet)
    for idx in np.array_split(order, bins):
        fit[idx] = wet[idx].mean()
    return float(np.sum((wet - fit) ** 2) / np.sum(wet**2))


def test_distortion_has_memory() -> None:
    dry = _noise(1, seconds=1.0)[0].astype(np.float64)
    wet = get_effect("distortion").render(dry[None], FS)[0].astype(np.float64)
    # The measure is near zero for a memoryless curve, so a large value is memory.
    assert _static_fit_residual(dry, np.tanh(3 * dry)) < 0.01
    assert _static_fit_residual(dry, wet) > 0.5


@pytest.mark.parametrize("kind", ["sine100", "sine500", "sine3000", "square", "noise"])
def test_distortion_full_scale_input_peaks_below_one_at_defaults(kind: str) -> None:
    if kind.startswith("sine"):
        dry = _tone(float(kind[4:]))
    elif kind == "square":
        dry = np.sign(_tone(500.0)).astype(np.float32)
    else:
        dry = np.random.default_rng(0).uniform(-1, 1, (1, FS)).astype(np.float32)
    assert np.abs(get_effect("distortion").render(dry, FS)).max() < 1.0


def test_distortion_tone_lowers_energy_above_5khz() -> None:
    dry, distortion = _tone(500.0), get_effect("distortion")
    freqs = np.fft.rfftfreq(FS // 2, 1 / FS)

    def fraction_above_5k(tone_hz: float) -> float:
        power = np.abs(np.fft.rfft(distortion.render(dry, FS, {"tone": tone_hz})[0, FS // 2 :]))
        return float(np.sum(power[freqs > 5000] ** 2) / np.sum(power**2))

    assert 10 * math.log10(fraction_above_5k(1000.0) / fraction_above_5k(8000.0)) < -20.0


def test_distortion_aliasing_stays_low_at_full_drive() -> None:
    f0 = 3001.0  # not a divisor of the sample rate, so aliases miss the harmonic bins
    wet = get_effect("distortion").render(_tone(f0, amplitude=0.5), FS, {"drive": 40, "tone": 8000})
    seg = wet[0, FS // 4 :].astype(np.float64)
    spectrum = np.abs(np.fft.rfft(seg * np.hanning(seg.size)))
    freqs = np.fft.rfftfreq(seg.size, 1 / FS)
    harmonic = freqs < 30
    for k in range(1, int(FS / 2 / f0) + 1):
        harmonic |= np.abs(freqs - k * f0) < 20
    assert 20 * math.log10(spectrum[~harmonic].max() / spectrum.max()) < -60.0


def test_oversampled_clipper_does_not_depend_on_block_size() -> None:
    x = np.random.default_rng(4).standard_normal((2, 5000)) * 5
    reference = _clip_oversampled(x)
    for block in (1, 333, 4096):
        np.testing.assert_array_equal(_clip_oversampled(x, block), reference)
