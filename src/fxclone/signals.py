"""Synthetic dry material: seeded tones, plucks, chords, noise, silences and level sweeps.

This extends McCool's generator (10-s segments of chirps, sines, square and sawtooth waves,
80-1200 Hz, with varying note density and note length) to the guitar/bass/keys range (about
40 Hz - 4 kHz fundamentals) and adds Karplus-Strong plucked strings, chords, noise bursts,
silences and level sweeps, because a model only learns the part of an effect the training
audio visits: nonlinear effects depend on level, compressors on level changes, delays and
reverbs on silence after a note.

Every segment is built from *events*. Each event draws its material from a :class:`Mix`
(relative weights), a duration, a start time and a level; the segment is then scaled so its
peak lies in :data:`PEAK_DBFS_RANGE`, so levels vary from one segment to the next.
Square and sawtooth waves are synthesised from their harmonics up to
``HARMONIC_LIMIT * sample_rate`` (a band-limited wavetable), so the dry signal never aliases.
Everything is numpy float64 inside and float32 mono ``(samples,)`` outside; the same seed
always gives the same samples.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from scipy.signal import lfilter

MATERIALS = (
    "chirp",
    "sine",
    "square",
    "saw",
    "pluck",
    "chord",
    "noise",
    "silence",
    "level_sweep",
)
F_MIN_HZ = 40.0  # low B of a 5-string bass is 31 Hz; 40 Hz keeps bass fundamentals in range
F_MAX_HZ = 4000.0  # top of a piano's and a guitar's useful fundamentals
PEAK_DBFS_RANGE = (-30.0, -1.0)  # each segment's peak is drawn uniformly (in dB) from here
SWEEP_SPAN_DB = (20.0, 39.0)  # a sweep from a -1 dBFS peak reaches down to -40 dBFS
VELOCITY_DB = (-24.0, 0.0)  # per-note level inside a segment
# Harmonics stop at 0.42 * fs (20.2 kHz at 48 kHz): a guard band below Nyquist keeps even the
# interpolation images of the wavetable out of the top of the spectrum.
HARMONIC_LIMIT = 0.42
_CHORDS = (
    (0, 12),  # octave
    (0, 7, 12),  # power chord
    (0, 4, 7),  # major
    (0, 3, 7),  # minor
    (0, 3, 6),  # diminished
    (0, 2, 7),  # sus2
    (0, 5, 7),  # sus4
    (0, 4, 7, 11),  # major 7
    (0, 3, 7, 10),  # minor 7
    (0, 4, 7, 10),  # dominant 7
    (0, 4, 7, 14),  # add9
    (0, 7, 12, 16, 19, 24),  # open E major voicing
    (0, 7, 12, 15, 19, 24),  # open E minor voicing
)


@dataclass(frozen=True)
class Mix:
    """Relative weights of the materials in :data:`MATERIALS` (any non-negative scale).

    ``silence`` mutes stretches of a segment; ``level_sweep`` is a held sound under a fade,
    swell or staircase of level changes. ``name`` is recorded in dataset manifests.
    """

    chirp: float = 0.0
    sine: float = 0.0
    square: float = 0.0
    saw: float = 0.0
    pluck: float = 0.0
    chord: float = 0.0
    noise: float = 0.0
    silence: float = 0.0
    level_sweep: float = 0.0
    name: str = "custom"

    def __post_init__(self) -> None:
        for material in MATERIALS:
            weight = getattr(self, material)
            if not (isinstance(weight, int | float) and np.isfinite(weight) and weight >= 0):
                raise ValueError(f"Mix {self.name!r}: weight {material}={weight!r} must be >= 0")
        if not any(getattr(self, m) > 0 for m in MATERIALS if m != "silence"):
            raise ValueError(f"Mix {self.name!r} needs a positive weight on a sounding material")

    def probabilities(self) -> np.ndarray:
        """The weights in :data:`MATERIALS` order, scaled to sum to 1."""
        weights = np.array([getattr(self, m) for m in MATERIALS], dtype=np.float64)
        return weights / weights.sum()

    def to_dict(self) -> dict[str, float | str]:
        """A JSON-ready description (for manifests)."""
        return asdict(self)


# McCool's material dominates training; the test mix leans on what training sees least
# (plucked strings, chords, level sweeps), so test figures measure generalisation.
TRAIN_MIX = Mix(
    chirp=2.0,
    sine=2.0,
    square=2.0,
    saw=2.0,
    pluck=1.0,
    chord=0.5,
    noise=0.5,
    silence=0.5,
    level_sweep=0.5,
    name="train-mix",
)
TEST_MIX = Mix(
    chirp=1.0, pluck=3.0, chord=3.0, noise=0.3, silence=0.5, level_sweep=2.0, name="test-mix"
)


def synth_segment(
    rng: np.random.Generator, sample_rate: int, seconds: float, mix: Mix
) -> np.ndarray:
    """One segment of synthetic dry audio.

    Args:
        rng: the source of every random choice (the segment is a pure function of its state).
        sample_rate: in Hz.
        seconds: segment length; ``round(seconds * sample_rate)`` samples (at least one).
        mix: material weights.

    Returns:
        float32 ``(samples,)``, peak drawn from :data:`PEAK_DBFS_RANGE` (so never above -1 dBFS).
    """
    n = max(1, round(seconds * sample_rate))
    out = np.zeros(n)
    notes = _note_count(rng, seconds)
    events = rng.choice(len(MATERIALS), size=notes, p=mix.probabilities())
    # A chord or a sweep holds several notes; counting them keeps the density musical.
    events = events[: int(np.searchsorted(np.cumsum(_NOTE_COST[events]), notes)) + 1]
    silence = MATERIALS.index("silence")
    if np.all(events == silence):  # a segment always holds at least one sound
        sounding = mix.probabilities().copy()
        sounding[silence] = 0.0
        events[0] = rng.choice(len(MATERIALS), p=sounding / sounding.sum())
    mutes = []
    for index in events:
        material = MATERIALS[index]
        length = min(n, max(1, round(_duration_s(rng, material) * sample_rate)))
        start = int(rng.integers(0, n - length + 1))
        if material == "silence":
            mutes.append((start, length))
            continue
        sound = _EVENTS[material](rng, sample_rate, length)
        # Sweeps carry their own 20-39 dB level range; a velocity on top would bury them.
        velocity_db = 0.0 if material == "level_sweep" else rng.uniform(*VELOCITY_DB)
        out[start : start + length] += _peak_normalise(sound) * 10 ** (velocity_db / 20)
    muted = _mute(out, mutes, round(0.005 * sample_rate))
    if np.any(muted):
        out = muted
    peak_db = rng.uniform(*PEAK_DBFS_RANGE)
    return (_peak_normalise(out) * 10 ** (peak_db / 20)).astype(np.float32)


def iter_segments(
    seed: int, sample_rate: int, seconds: float, mix: Mix, segment_seconds: float = 10.0
) -> Iterator[np.ndarray]:
    """Yield the segments of :func:`synth_track` one at a time (bounded memory).

    Segment ``k`` depends only on ``(seed, k)``, so a longer track starts with the same audio.
    """
    total = round(seconds * sample_rate)
    step = max(1, round(segment_seconds * sample_rate))
    count = -(-total // step)
    for k, child in enumerate(np.random.SeedSequence(seed).spawn(count)):
        length = min(step, total - k * step)
        yield synth_segment(np.random.default_rng(child), sample_rate, length / sample_rate, mix)


def synth_track(
    seed: int, sample_rate: int, seconds: float, mix: Mix, segment_seconds: float = 10.0
) -> np.ndarray:
    """Concatenated segments: float32 ``(round(seconds * sample_rate),)``, mono."""
    segments = list(iter_segments(seed, sample_rate, seconds, mix, segment_seconds))
    return np.concatenate(segments) if segments else np.zeros(0, dtype=np.float32)


# --- event scheduling ------------------------------------------------------------------


_NOTE_COST = np.array([4.0 if m in ("chord", "level_sweep") else 1.0 for m in MATERIALS])


def _note_count(rng: np.random.Generator, seconds: float) -> int:
    # McCool's notes-per-10-s draw (genrate.py:41-45), scaled to the segment length.
    u = rng.random()
    low, high = (5, 50) if u < 0.4 else (1, 10) if u < 0.8 else (10, 100) if u < 0.9 else (100, 150)
    return max(1, round(int(rng.integers(low, high)) * seconds / 10.0))


def _duration_s(rng: np.random.Generator, material: str) -> float:
    if material in ("chirp", "sine", "square", "saw"):
        # McCool's note lengths (genrate.py:54-58), made continuous.
        u = rng.random()
        if u < 0.3:
            return rng.uniform(0.8, 1.2)
        if u < 0.6:
            return rng.uniform(1.0, 2.5)
        return rng.uniform(0.05, 1.0) if u < 0.8 else rng.uniform(0.02, 0.5)
    low, high = {
        "pluck": (0.15, 4.0),
        "chord": (0.3, 4.0),
        "noise": (0.02, 2.0),
        "level_sweep": (1.0, 6.0),
        "silence": (0.1, 2.0),
    }[material]
    return _log_uniform(rng, low, high)


def _mute(audio: np.ndarray, mutes: list[tuple[int, int]], ramp: int) -> np.ndarray:
    """Silence the given ``(start, length)`` stretches (ramped), at most half the segment."""
    gain = np.ones_like(audio)
    budget = audio.size // 2
    for start, length in mutes:
        length = min(length, budget)
        if length <= 2 * ramp:
            continue
        budget -= length
        hole = np.ones(length)
        hole[ramp:-ramp] = 0.0
        hole[:ramp] = _cos_ramp(ramp)[::-1]
        hole[-ramp:] = _cos_ramp(ramp)
        gain[start : start + length] = np.minimum(gain[start : start + length], hole)
    return audio * gain


# --- sounds: each returns float64 (length,) with any peak; the caller normalises ---------


def _tone(rng: np.random.Generator, sample_rate: int, length: int, shape: str) -> np.ndarray:
    freq = np.full(length, _draw_freq(rng, sample_rate))
    if rng.random() < 0.3:  # vibrato: 3-7 Hz, up to 30 cents
        t = np.arange(length) / sample_rate
        cents = rng.uniform(0, 30) * np.sin(2 * np.pi * rng.uniform(3, 7) * t)
        freq *= 2 ** (cents / 1200)
    return _oscillator(rng, sample_rate, freq, shape) * _adsr(rng, sample_rate, length)


def _chirp(rng: np.random.Generator, sample_rate: int, length: int) -> np.ndarray:
    """A pitch glide between two random notes, linear or exponential (bends, slides)."""
    f0, f1 = _draw_freq(rng, sample_rate), _draw_freq(rng, sample_rate)
    ramp = np.linspace(0.0, 1.0, length)
    freq = f0 + (f1 - f0) * ramp if rng.random() < 0.5 else f0 * (f1 / f0) ** ramp
    shape = str(rng.choice(["sine", "sine", "sine", "saw", "square"]))
    return _oscillator(rng, sample_rate, freq, shape) * _adsr(rng, sample_rate, length)


def _noise(rng: np.random.Generator, sample_rate: int, length: int) -> np.ndarray:
    """A white or pink noise burst, percussive (exponential decay) or ADSR-shaped."""
    noise = rng.standard_normal(length)
    if rng.random() < 0.5:  # pink: -3 dB/octave
        spectrum = np.fft.rfft(noise)
        bins = np.arange(spectrum.size, dtype=np.float64)
        bins[0] = 1.0
        noise = np.fft.irfft(spectrum / np.sqrt(bins), length)
    if rng.random() < 0.5:
        t = np.arange(length) / sample_rate
        envelope = np.exp(-t / _log_uniform(rng, 0.01, 0.5))
        fade_edges(envelope, round(0.001 * sample_rate), round(0.002 * sample_rate))
    else:
        envelope = _adsr(rng, sample_rate, length)
    return noise * envelope


def _pluck(
    rng: np.random.Generator, sample_rate: int, length: int, freq: float | None = None
) -> np.ndarray:
    """A Karplus-Strong plucked string: random pitch, decay (T60 0.3-6 s) and brightness."""
    freq = min(freq or _draw_freq(rng, sample_rate), sample_rate / 4)
    period = sample_rate / freq
    damping = rng.uniform(0.05, 0.5)  # weight of the loop's one-zero low-pass: 0.5 is darkest
    # The loop (two-tap low-pass, linear-interpolation fractional delay, z^-delay) must total
    # one period: the low-pass delays by `damping` samples, the interpolator by `frac`.
    delay = max(1, int(period - damping))
    frac = float(np.clip(period - damping - delay, 0.0, 1.0))
    taps = np.convolve([1 - frac, frac], [1 - damping, damping])
    loop_gain = 10 ** (-3 * period / (_log_uniform(rng, 0.3, 6.0) * sample_rate))
    width = max(2, round(period))
    burst = rng.standard_normal(width)
    pick = rng.uniform(0.0, 0.9)  # one-pole low-pass on the excitation: a softer pick
    burst = lfilter([1 - pick], [1, -pick], burst)
    position = max(1, round(rng.uniform(0.1, 0.5) * width))  # pluck position comb notch
    burst[position:] -= burst[:-position].copy()
    excitation = np.zeros(length)
    excitation[: min(width, length)] = (burst - burst.mean())[:length]
    string = _feedback_comb(excitation, delay, loop_gain * taps)
    release = min(length // 2, round(_log_uniform(rng, 0.005, 0.1) * sample_rate))
    fade_edges(string, 0, release)  # the player damps the string
    return string


def _chord(rng: np.random.Generator, sample_rate: int, length: int) -> np.ndarray:
    """2-6 notes of a chord shape, strummed plucks or a held synthetic voicing."""
    template = _CHORDS[int(rng.integers(len(_CHORDS)))]
    count = int(rng.integers(2, 7))
    intervals = [template[i % len(template)] + 12 * (i // len(template)) for i in range(count)]
    high = _freq_range(sample_rate)[1] / 2 ** (max(intervals) / 12)
    root = _draw_freq(rng, sample_rate, high=high)
    freqs = root * 2 ** (np.asarray(intervals) / 12)
    out = np.zeros(length)
    if rng.random() < 0.6:
        strum = round(rng.uniform(0.0, 0.03) * sample_rate)  # per string; up- or down-strum
        order = range(count) if rng.random() < 0.5 else range(count - 1, -1, -1)
        for step, i in enumerate(order):
            offset = min(step * strum, length - 1)
            out[offset:] += _peak_normalise(_pluck(rng, sample_rate, length - offset, freqs[i]))
        return out
    shape = str(rng.choice(["sine", "square", "saw"]))
    for f in freqs:
        out += _oscillator(rng, sample_rate, np.full(length, f), shape)
    return out * _adsr(rng, sample_rate, length)


def _level_sweep(rng: np.random.Generator, sample_rate: int, length: int) -> np.ndarray:
    """A held sound under a fade in, fade out, swell or staircase spanning 20-39 dB."""
    kind = str(rng.choice(["tone", "plucks", "chord", "noise"]))
    if kind == "tone":
        sound = _oscillator(
            rng, sample_rate, np.full(length, _draw_freq(rng, sample_rate)), _shape(rng)
        )
    elif kind == "plucks":
        sound = _pluck_train(rng, sample_rate, length)
    elif kind == "chord":
        sound = _chord(rng, sample_rate, length)
    else:
        sound = rng.standard_normal(length)
    sound = _peak_normalise(sound)
    span = rng.uniform(*SWEEP_SPAN_DB)
    curve = str(rng.choice(["fade_in", "fade_out", "swell", "steps"]))
    if curve == "steps":
        count = int(rng.integers(3, 9))
        levels = rng.uniform(-span, 0.0, count)
        levels[int(rng.integers(count))] = 0.0
        edges = np.linspace(0, length, count + 1)
        ramp = 0.001 * sample_rate  # 1-ms steps: abrupt for a compressor, no click
        xp = np.concatenate([[0.0], np.repeat(edges[1:-1], 2) + np.tile([-ramp, ramp], count - 1)])
        xp = np.append(xp, length)
        gain_db = np.interp(np.arange(length), xp, np.repeat(levels, 2))
    else:
        points = {"fade_in": [-span, 0.0], "fade_out": [0.0, -span], "swell": [-span, 0.0, -span]}
        levels = np.asarray(points[curve])
        gain_db = np.interp(np.arange(length), np.linspace(0, length, levels.size), levels)
    sound *= 10 ** (gain_db / 20)
    fade_edges(sound, round(0.005 * sample_rate), round(0.02 * sample_rate))
    return sound


def _pluck_train(rng: np.random.Generator, sample_rate: int, length: int) -> np.ndarray:
    """Repeated plucks (2-10 per second) over a riff of 1-4 pitches."""
    spacing = max(1, round(sample_rate / rng.uniform(2.0, 10.0)))
    riff = [_draw_freq(rng, sample_rate) for _ in range(int(rng.integers(1, 5)))]
    out = np.zeros(length)
    for k, start in enumerate(range(0, length, spacing)):
        size = min(length - start, 2 * spacing)  # the next pluck damps this one
        out[start : start + size] += _pluck(rng, sample_rate, size, riff[k % len(riff)])
    return out


_EVENTS = {
    "chirp": _chirp,
    "sine": lambda rng, sr, n: _tone(rng, sr, n, "sine"),
    "square": lambda rng, sr, n: _tone(rng, sr, n, "square"),
    "saw": lambda rng, sr, n: _tone(rng, sr, n, "saw"),
    "pluck": _pluck,
    "chord": _chord,
    "noise": _noise,
    "level_sweep": _level_sweep,
}


# --- building blocks ---------------------------------------------------------------------


def _oscillator(
    rng: np.random.Generator, sample_rate: int, freq_hz: np.ndarray, shape: str
) -> np.ndarray:
    """A sine, band-limited square (random pulse width) or sawtooth following ``freq_hz``."""
    phase = rng.random() + np.cumsum(freq_hz) / sample_rate  # in cycles
    harmonics = int(HARMONIC_LIMIT * sample_rate // float(np.max(freq_hz)))
    if shape == "sine" or harmonics < 2:
        return np.sin(2 * np.pi * phase)
    duty = rng.uniform(0.25, 0.5) if shape == "square" else None
    table = _wavetable(harmonics, duty)
    position = (phase % 1.0) * (table.size - 1)
    index = position.astype(np.int64)
    return table[index] + (position - index) * (table[index + 1] - table[index])


def _wavetable(harmonics: int, duty: float | None) -> np.ndarray:
    """One cycle of a sawtooth (``duty=None``) or pulse wave, harmonics ``1..harmonics`` only.

    The table has at least 64 points per harmonic, so linear interpolation's images stay
    ~90 dB below the fundamental. The last point repeats the first for interpolation.
    """
    size = max(1024, 1 << int(np.ceil(np.log2(64 * harmonics))))
    k = np.arange(1, harmonics + 1)
    spectrum = np.zeros(size // 2 + 1, dtype=np.complex128)
    if duty is None:  # rising ramp from -1 to 1
        spectrum[k] = 1j * size / (np.pi * k)
    else:  # +1 for a `duty` share of the cycle, -1 for the rest (DC removed)
        angle = 2 * np.pi * k * duty
        spectrum[k] = size * (np.sin(angle) - 1j * (1 - np.cos(angle))) / (np.pi * k)
    table = np.fft.irfft(spectrum, size)
    return np.append(table, table[0])


def _feedback_comb(x: np.ndarray, delay: int, taps: np.ndarray) -> np.ndarray:
    """``y[n] = x[n] + sum_j taps[j] * y[n - delay - j]`` (the Karplus-Strong string loop).

    Short delays go through ``lfilter`` (its cost grows with the delay); long ones fill a block
    of ``delay`` samples per numpy step, since no sample in a block feeds another one.
    """
    if delay <= 60:
        denominator = np.zeros(delay + taps.size)
        denominator[0] = 1.0
        denominator[delay:] -= taps
        return lfilter([1.0], denominator, x)
    pad = delay + taps.size - 1
    y = np.concatenate([np.zeros(pad), x])
    history = sliding_window_view(y, taps.size)  # row i is y[i : i + len(taps)]
    kernel = taps[::-1].copy()
    for start in range(pad, y.size, delay):
        stop = min(start + delay, y.size)
        y[start:stop] += history[start - pad : stop - pad] @ kernel
    return y[pad:]


def _adsr(rng: np.random.Generator, sample_rate: int, length: int) -> np.ndarray:
    """Attack-decay-sustain-release envelope with raised-cosine attack and release."""
    attack, decay, release = (
        _log_uniform(rng, low, high) * sample_rate
        for low, high in ((0.002, 0.15), (0.02, 0.6), (0.005, 0.5))
    )
    scale = min(1.0, 0.99 * length / (attack + decay + release))
    attack, decay, release = round(attack * scale), decay * scale, round(release * scale)
    sustain = rng.uniform(0.3, 1.0)
    envelope = np.interp(
        np.arange(length), [0, attack, attack + decay, length], [1.0, 1.0, sustain, sustain]
    )
    fade_edges(envelope, attack, release)
    return envelope


def fade_edges(audio: np.ndarray, fade_in: int, fade_out: int) -> None:
    """Raised-cosine fades over the first ``fade_in`` and last ``fade_out`` samples, in place.

    Smooth corners keep the spectrum band-limited and edits click-free. ``audio`` is 1-D.
    """
    fade_in, fade_out = min(fade_in, audio.size), min(fade_out, audio.size)
    if fade_in:
        audio[:fade_in] *= _cos_ramp(fade_in)
    if fade_out:
        audio[audio.size - fade_out :] *= _cos_ramp(fade_out)[::-1]


def _cos_ramp(length: int) -> np.ndarray:
    return 0.5 - 0.5 * np.cos(np.pi * (np.arange(length) + 0.5) / length)


def _peak_normalise(audio: np.ndarray) -> np.ndarray:
    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    return audio / peak if peak > 0 else audio


def _freq_range(sample_rate: int) -> tuple[float, float]:
    high = min(F_MAX_HZ, HARMONIC_LIMIT * sample_rate / 2)  # room for at least 2 harmonics
    return min(F_MIN_HZ, high / 4), high


def _draw_freq(rng: np.random.Generator, sample_rate: int, high: float | None = None) -> float:
    low, top = _freq_range(sample_rate)
    return _log_uniform(rng, low, max(low, min(top, high or top)))


def _shape(rng: np.random.Generator) -> str:
    return str(rng.choice(["sine", "square", "saw"]))


def _log_uniform(rng: np.random.Generator, low: float, high: float) -> float:
    return float(np.exp(rng.uniform(np.log(low), np.log(high))))
