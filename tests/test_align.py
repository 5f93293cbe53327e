"""Alignment of a recording to its dry signal: latency, clock drift, DC, level, errors.

The wets here are made by methods independent of the ones align.py uses to correct them:
fractional delays by 4x polyphase oversampling (scipy's resample_poly) and an integer shift,
clock drift by resample_poly at 50001/50000 (align.py resamples with soxr).
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import soundfile as sf
from scipy.signal import resample_poly

from fxclone import align
from fxclone.audio import resample
from fxclone.capture import capture_signal
from fxclone.effects import get_effect
from fxclone.errors import FxcloneError
from fxclone.signals import TRAIN_MIX, synth_track

SR = 48000
OFFSETS = (1.0, 37.5, 480.25, 4999.0)
GAIN = 0.5  # -6.02 dB
DC = 0.02
NOISE_RMS = 1e-3  # -60 dBFS


def _shift(x: np.ndarray, offset: float) -> np.ndarray:
    """Delay by ``offset`` (a multiple of 0.25): 4x polyphase upsampling, shift, decimation."""
    up = resample_poly(x, 4, 1)
    k = round(4 * offset)
    up = np.concatenate([np.zeros(k), up[: up.size - k]])
    return resample_poly(up, 1, 4)[: x.size]


def _recorded(x: np.ndarray, offset: float, seed: int) -> np.ndarray:
    noise = np.random.default_rng(seed).standard_normal(x.size) * NOISE_RMS
    return GAIN * _shift(x, offset) + noise + DC


@pytest.fixture(scope="module")
def dry() -> np.ndarray:
    return synth_track(3, SR, 20.0, TRAIN_MIX).astype(np.float64)


@pytest.fixture(scope="module")
def dry16() -> np.ndarray:
    return synth_track(2, 16000, 20.0, TRAIN_MIX).astype(np.float64)


@pytest.fixture(scope="module")
def aligned(dry: np.ndarray) -> dict[float, tuple[np.ndarray, np.ndarray, align.AlignReport]]:
    return {off: align.align_pair(dry, _recorded(dry, off, i), SR) for i, off in enumerate(OFFSETS)}


@pytest.fixture(scope="module")
def capture_dry() -> np.ndarray:
    return capture_signal(SR).audio[0].astype(np.float64)


def test_fractional_delay_is_a_band_limited_shift() -> None:
    n = np.arange(8000)
    freqs = (50.0, 1234.5, 9000.0)

    def tones(t: np.ndarray) -> np.ndarray:
        return sum(np.sin(2 * np.pi * f * t / SR + f) for f in freqs)

    x = tones(n) * np.hanning(n.size)
    for delay in (0.3, -2.75, 17.5):
        got = align.fractional_delay(x, delay)
        want = tones(n - delay) * np.interp(n - delay, n, np.hanning(n.size))
        error = float(np.max(np.abs(got - want)[1000:-1000]))
        assert got.shape == x.shape
        assert error < 1e-3, f"delay {delay}: max error {error:.2e}"
    stereo = np.stack([x, -x])
    assert np.array_equal(align.fractional_delay(stereo, 3)[1, 3:], -x[:-3].astype(np.float32))
    back = align.fractional_delay(align.fractional_delay(x, 12.4), -12.4)
    assert float(np.max(np.abs(back - x)[100:-100])) < 1e-4


@pytest.mark.parametrize("offset", OFFSETS)
def test_latency_recovered_within_a_tenth_of_a_sample(aligned, dry, offset: float) -> None:
    out_dry, out_wet, report = aligned[offset]
    error = report.latency_samples - offset
    print(f"offset {offset}: estimated {report.latency_samples:.4f}, error {error:+.4f} samples")
    assert abs(error) <= 0.1
    assert out_dry.shape == out_wet.shape and report.samples == out_dry.size
    # Aligned sample for sample: what is left is the -60 dBFS noise (level matched x2).
    esr = float(np.sum((out_wet - out_dry) ** 2) / np.sum(out_dry**2))
    floor = (NOISE_RMS / GAIN) ** 2 / float(np.mean(dry**2))
    print(f"  aligned ESR {esr:.2e}, noise floor {floor:.2e}")
    assert esr < 3 * floor + 1e-5
    assert report.trimmed_start == 0 and abs(report.trimmed_end - offset) <= 1


def test_level_matching_and_dc(aligned, dry) -> None:
    for offset in OFFSETS:
        _, out_wet, report = aligned[offset]
        truth_db = -20 * math.log10(GAIN)
        print(f"offset {offset}: gain {report.gain_db:+.3f} dB (truth {truth_db:+.3f}), ", end="")
        print(f"DC reported {report.dc_offset:.5f}, left {float(np.mean(out_wet)):.1e}")
        assert report.gain_db is not None and abs(report.gain_db - truth_db) < 0.1
        assert abs(report.dc_offset - DC) < 1e-3
        assert abs(float(np.mean(out_wet))) < 1e-4
        assert not report.drift.detected and report.drift.ppm == 0.0
    lines = aligned[37.5][2].summary_lines()
    assert lines[0] == "latency 37.50 samples (0.78 ms), corrected"
    assert "level matched: wet scaled by +6.0 dB" in lines
    json.dumps(aligned[37.5][2].to_dict())


def test_latency_through_a_nonlinear_effect(dry) -> None:
    # The distortion's minimum-phase oversampling filters (about 2.5 samples each way) and its
    # 2-pole 2.5 kHz tone filter (about 4 samples at low frequencies) delay it by itself, by an
    # amount that depends on frequency, so its "latency" has no exact true value: the test
    # checks that its own latency lies in that 2-15 sample range, and that delaying its output
    # by 37.5 samples moves the estimate by 37.5 within 0.1 sample.
    fx = get_effect("distortion").render(dry[None].astype(np.float32), SR, {})[0]
    own = align.estimate_latency(dry, fx.astype(np.float64), SR)
    wet = _recorded(fx.astype(np.float64), 37.5, 7)
    total = align.estimate_latency(dry, wet, SR)
    print(f"distortion: own latency {own:.3f}, delayed by 37.5 -> {total:.3f} ({total - own:.4f})")
    assert 2.0 < own < 15.0
    assert abs(total - own - 37.5) <= 0.1


def test_clock_drift_detected_and_corrected(capture_dry) -> None:
    dry = capture_dry  # 3 min 15 s at 48 kHz
    drifted = resample_poly(dry, 50001, 50000)  # exactly 20 ppm more samples
    wet = 0.7 * np.concatenate([np.zeros(300), drifted])[: dry.size + 100]
    wet += np.random.default_rng(5).standard_normal(wet.size) * NOISE_RMS + 0.01
    out_dry, out_wet, report = align.align_pair(dry, wet, SR)
    print(f"drift {report.drift.ppm:+.4f} ppm (truth +20), latency {report.latency_samples:.3f}")
    assert report.drift.detected
    assert abs(report.drift.ppm - 20.0) <= 1.0
    assert abs(report.latency_samples - 300.0) <= 0.1
    assert "clock drift +20.0 ppm, corrected" in report.summary_lines()
    n, span = out_dry.size, 10 * SR
    residual = [
        align.estimate_latency(out_dry[s : s + span], out_wet[s : s + span], SR)
        for s in (0, n // 2 - span // 2, n - span)
    ]
    print("residual misalignment at start, middle, end:", [f"{r:+.4f}" for r in residual])
    assert max(abs(r) for r in residual) <= 0.5


def test_no_drift_reported_without_drift(capture_dry) -> None:
    dry = capture_dry
    wet = 0.7 * np.concatenate([np.zeros(123), dry[:-123]])
    wet += np.random.default_rng(6).standard_normal(wet.size) * NOISE_RMS
    drift = align.estimate_drift(dry, wet, SR)
    print(f"drift-free: fitted {drift.fitted_ppm:+.5f} ppm, reported {drift.ppm}")
    assert drift.ppm == 0.0 and not drift.detected
    assert abs(drift.fitted_ppm) < 0.05
    assert len(drift.latencies) >= 8
    assert max(abs(v - 123) for v in drift.latencies) < 0.05


def test_repeatability_floor() -> None:
    sr = 16000
    cap = capture_signal(sr)
    fx = get_effect("distortion").render(cap.audio, sr, {}).astype(np.float64)
    wet = np.concatenate([np.zeros((1, 250)), fx[:, :-250]], axis=1)
    _, out_wet, report = align.align_pair(cap.audio, wet, sr, capture=cap)
    print(f"deterministic effect: repeatability ESR {report.repeatability_esr:.2e}")
    assert report.repeatability_esr is not None and report.repeatability_esr < 1e-6
    assert report.capture_version == 1
    noisy = wet + np.random.default_rng(8).standard_normal(wet.shape) * 0.01  # -40 dBFS
    _, _, report = align.align_pair(cap.audio, noisy, sr, capture=cap)
    rep = cap.repeat
    segment = wet[0, rep.start_a + 250 : rep.start_a + 250 + rep.length]
    nsr = 1e-4 / float(np.mean(segment**2))
    ratio = report.repeatability_esr / nsr
    print(f"-40 dBFS noise: repeatability ESR {report.repeatability_esr:.3e}, NSR {nsr:.3e}")
    assert 0.5 < ratio < 2.0
    assert any(line.startswith("repeatability floor ESR") for line in report.summary_lines())


def test_unrelated_files_refused() -> None:
    rng = np.random.default_rng(9)
    a, b = rng.standard_normal((2, 10 * 16000)) * 0.1
    with pytest.raises(FxcloneError, match="belong") as err:
        align.align_pair(a, b, 16000)
    print(err.value)


def test_latency_beyond_limit_refused(dry16) -> None:
    wet = np.concatenate([np.zeros(4800), dry16[:-4800]])  # 0.3 s late
    too_late = r"latency is 4800\.0 samples.*limit of 0\.1 s; pass --max-latency"
    with pytest.raises(FxcloneError, match=too_late):
        align.align_pair(dry16, wet, 16000, max_latency_s=0.1)
    assert abs(align.estimate_latency(dry16, wet, 16000, max_latency_s=0.5) - 4800) < 0.1


def test_length_mismatch_refused(dry16) -> None:
    sr, dry = 16000, dry16
    wet = np.concatenate([np.zeros(100), dry[: dry.size // 2]])
    with pytest.raises(FxcloneError, match="shorter") as err:
        align.align_pair(dry, wet, sr)
    assert f"wet {wet.size} samples" in str(err.value)
    assert f"dry {dry.size} samples" in str(err.value)
    longer = np.concatenate([dry, dry[: 3 * sr]])  # 3 s over: beyond max(1 s, 1 %)
    with pytest.raises(FxcloneError, match="3.00 s longer"):
        align.align_pair(dry, longer, sr)
    # Within tolerance: half a second longer, and a second shorter, are fine.
    assert align.align_pair(dry, longer[: dry.size + sr // 2], sr)[2].trimmed_end == 0
    assert align.align_pair(dry, dry[:-sr], sr)[2].trimmed_end == sr


def test_silence_short_overlap_and_polarity() -> None:
    sr = 16000
    x = synth_track(4, sr, 6.0, TRAIN_MIX).astype(np.float64)
    with pytest.raises(FxcloneError, match="wet signal is silent"):
        align.align_pair(x, np.full_like(x, 0.3), sr)  # only DC
    with pytest.raises(FxcloneError, match="dry signal is silent"):
        align.align_pair(np.zeros_like(x), x, sr)
    with pytest.raises(FxcloneError, match="overlap"):
        align.align_pair(x[: sr // 2], x[: sr // 2], sr)
    _, _, report = align.align_pair(x, -0.8 * _shift(x, 5.25), sr)
    assert report.polarity_inverted and abs(report.latency_samples - 5.25) < 0.1
    clipped = np.clip(3 * x / np.max(np.abs(x)), -1, 1)
    _, _, report = align.align_pair(x, clipped, sr)
    print(f"clipped: flat fraction {report.clip_fraction:.4f}")
    assert report.clipped and report.clip_fraction > 0.001
    assert not align.align_pair(x, 0.5 * x, sr)[2].clipped


def test_align_files(tmp_path, dry) -> None:
    dry10 = dry[10 * SR :]
    wet = _recorded(dry10, 40.0, 11)
    stereo = resample(np.stack([wet, wet]).astype(np.float32), SR, 44100)
    sf.write(tmp_path / "dry.wav", dry10.astype(np.float32), SR, subtype="FLOAT")
    sf.write(tmp_path / "wet.wav", stereo.T, 44100, subtype="FLOAT")
    report = align.align_files(
        tmp_path / "dry.wav", tmp_path / "wet.wav", tmp_path / "out.wav",
        report_path=tmp_path / "align.json",
    )  # fmt: skip
    out, rate = sf.read(tmp_path / "out.wav", always_2d=True)
    print(f"files: latency {report.latency_samples:.3f} (truth 40), notes {report.notes}")
    assert rate == SR and out.shape == (dry10.size, 1)
    assert abs(report.latency_samples - 40.0) < 0.1
    assert any("44100 Hz" in note for note in report.notes)
    assert any("mixed to mono" in note for note in report.notes)
    saved = json.loads((tmp_path / "align.json").read_text())
    assert saved["latency_samples"] == pytest.approx(report.latency_samples)
    esr = float(np.sum((out[:-41, 0] - dry10[:-41]) ** 2) / np.sum(dry10[:-41] ** 2))
    assert esr < 1e-3, f"written file misaligned: ESR {esr:.2e}"
