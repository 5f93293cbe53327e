"""Synthetic dry material: determinism, levels, frequency range, band-limiting, mixes."""

from __future__ import annotations

import numpy as np
import pytest

from fxclone import sounds
from fxclone.signals import (
    MATERIALS,
    PEAK_DBFS_RANGE,
    TEST_MIX,
    TRAIN_MIX,
    Mix,
    synth_segment,
    synth_track,
)
from fxclone.sounds import F_MAX_HZ, F_MIN_HZ

SR = 16000


def _peak_db(x: np.ndarray) -> float:
    return float(20 * np.log10(np.max(np.abs(x))))


def _power_spectrum(x: np.ndarray, sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
    x = x.astype(np.float64)
    power = np.abs(np.fft.rfft(x * np.hanning(x.size))) ** 2
    return np.fft.rfftfreq(x.size, 1 / sample_rate), power


def test_same_seed_same_audio_other_seed_other_audio():
    a = synth_track(3, SR, 12.5, TRAIN_MIX, segment_seconds=5.0)
    b = synth_track(3, SR, 12.5, TRAIN_MIX, segment_seconds=5.0)
    c = synth_track(4, SR, 12.5, TRAIN_MIX, segment_seconds=5.0)
    assert a.dtype == np.float32 and a.shape == (round(12.5 * SR),)
    np.testing.assert_array_equal(a, b)
    assert np.mean(np.abs(a - c)) > 1e-3


def test_a_longer_track_starts_with_the_shorter_one():
    short = synth_track(9, SR, 10.0, TEST_MIX, segment_seconds=5.0)
    longer = synth_track(9, SR, 20.0, TEST_MIX, segment_seconds=5.0)
    np.testing.assert_array_equal(longer[: short.size], short)


@pytest.mark.parametrize("mix", [TRAIN_MIX, TEST_MIX], ids=lambda m: m.name)
def test_segment_peaks_lie_in_the_drawn_range_and_vary(mix):
    peaks = []
    for seed in range(16):
        x = synth_segment(np.random.default_rng(seed), SR, 2.0, mix)
        assert x.dtype == np.float32 and x.shape == (2 * SR,)
        assert np.all(np.isfinite(x))
        peaks.append(_peak_db(x))
    low, high = PEAK_DBFS_RANGE
    assert min(peaks) >= low - 0.01 and max(peaks) <= high + 0.01
    assert max(peaks) - min(peaks) > 12.0  # levels really vary across segments
    assert max(peaks) < 0.0  # never clips


@pytest.mark.parametrize("material", [m for m in MATERIALS if m != "silence"])
def test_every_material_renders_finite_unclipped_audio(material):
    mix = Mix(**{material: 1.0}, name=material)
    for seed in range(3):
        x = synth_segment(np.random.default_rng(seed), SR, 3.0, mix)
        assert np.all(np.isfinite(x))
        assert PEAK_DBFS_RANGE[0] - 0.01 <= _peak_db(x) <= PEAK_DBFS_RANGE[1] + 0.01


def test_sines_stay_in_the_fundamental_range():
    sr = 48000
    for seed in range(4):
        x = synth_segment(np.random.default_rng(seed), sr, 10.0, Mix(sine=1.0))
        freqs, power = _power_spectrum(x, sr)
        in_band = power[(freqs > 0.9 * F_MIN_HZ) & (freqs < 1.1 * F_MAX_HZ)].sum()
        assert in_band / power.sum() > 0.999
        assert F_MIN_HZ * 0.97 <= freqs[np.argmax(power)] <= F_MAX_HZ * 1.03


@pytest.mark.parametrize("sample_rate", [48000, 16000])
@pytest.mark.parametrize("shape", ["square", "saw"])
def test_square_and_saw_do_not_alias(shape, sample_rate):
    x = synth_track(1, sample_rate, 10.0, Mix(**{shape: 1.0}), segment_seconds=5.0)
    freqs, power = _power_spectrum(x, sample_rate)
    # Harmonics stop at 0.42 fs; a naive scipy square wave puts ~5e-3 of its energy up here.
    assert power[freqs > 0.45 * sample_rate].sum() / power.sum() < 1e-8
    # ...and they are really square/saw, not sines: plenty of harmonic energy above 2 kHz.
    assert power[freqs > 2000].sum() / power.sum() > 1e-3


@pytest.mark.parametrize("freq", [41.2, 110.0, 440.0, 2637.0, 3951.0])
def test_plucked_string_is_in_tune(freq):
    sr = 48000
    note = sounds._pluck(np.random.default_rng(0), sr, sr, freq)
    freqs, power = _power_spectrum(np.pad(note, (0, 7 * sr)), sr)  # 1/8-Hz bins
    band = (freqs > 0.9 * freq) & (freqs < 1.1 * freq)
    cents = 1200 * np.log2(freqs[band][np.argmax(power[band])] / freq)
    assert abs(cents) < 3.0


def test_plucked_string_decays():
    sr = 16000
    note = sounds._pluck(np.random.default_rng(2), sr, 3 * sr, 196.0)
    first, last = np.abs(note[: sr // 4]).max(), np.abs(note[2 * sr : 2 * sr + sr // 4]).max()
    assert last < 0.7 * first


def test_level_sweeps_span_at_least_20_db():
    sr = 16000
    for seed in range(6):
        sweep = sounds._level_sweep(np.random.default_rng(seed), sr, 4 * sr)
        frames = sweep[: sweep.size // 400 * 400].reshape(-1, 400)  # 25-ms frames
        level = 20 * np.log10(np.abs(frames).max(axis=1) + 1e-12)
        assert np.percentile(level, 98) - np.percentile(level, 5) > 15.0


def _quiet_share(x: np.ndarray, sample_rate: int, segment_seconds: float) -> float:
    """Median over segments: share of sounding 50-ms frames > 20 dB below the loudest."""
    shares = []
    for seg in x.reshape(-1, round(segment_seconds * sample_rate)):
        frames = seg[: seg.size // 800 * 800].reshape(-1, 800).astype(np.float64)
        db = 10 * np.log10((frames**2).mean(axis=1) + 1e-24)
        sounding = db > db.max() - 60
        shares.append(np.mean(db[sounding] < db.max() - 20))
    return float(np.median(shares))


def test_test_mix_differs_measurably_from_train_mix():
    train = synth_track(0, SR, 60.0, TRAIN_MIX, segment_seconds=5.0)
    test = synth_track(0, SR, 60.0, TEST_MIX, segment_seconds=5.0)
    # Decaying plucks, chords and level sweeps spend far more time well below the peak.
    assert _quiet_share(test, SR, 5.0) > 1.5 * _quiet_share(train, SR, 5.0)


def test_mix_rejects_bad_weights():
    with pytest.raises(ValueError, match="sine"):
        Mix(sine=-1.0)
    with pytest.raises(ValueError, match="sounding"):
        Mix(silence=1.0)
    assert TRAIN_MIX.probabilities().sum() == pytest.approx(1.0)
    assert set(TRAIN_MIX.to_dict()) == {*MATERIALS, "name"}
