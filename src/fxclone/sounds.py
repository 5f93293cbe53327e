"""The sounds the synthetic dry material is built from: band-limited tones and chirps,
Karplus-Strong plucked strings, chords, noise bursts and level sweeps, and their building
blocks (wavetable oscillators, envelopes, ramps). Each sound returns float64 ``(length,)``
with any peak; :func:`fxclone.signals.synth_segment` normalises and places them.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from scipy.signal import lfilter

F_MIN_HZ = 40.0  # low B of a 5-string bass is 31 Hz; 40 Hz keeps bass fundamentals in range
F_MAX_HZ = 4000.0  # top of a piano's and a guitar's useful fundamentals
SWEEP_SPAN_DB = (20.0, 39.0)  # a sweep from a -1 dBFS peak reaches down to -40 dBFS
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
        envelope = np.exp(-t / log_uniform(rng, 0.01, 0.5))
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
    loop_gain = 10 ** (-3 * period / (log_uniform(rng, 0.3, 6.0) * sample_rate))
    width = max(2, round(period))
    burst = rng.standard_normal(width)
    pick = rng.uniform(0.0, 0.9)  # one-pole low-pass on the excitation: a softer pick
    burst = lfilter([1 - pick], [1, -pick], burst)
    position = max(1, round(rng.uniform(0.1, 0.5) * width))  # pluck position comb notch
    burst[position:] -= burst[:-position].copy()
    excitation = np.zeros(length)
    excitation[: min(width, length)] = (burst - burst.mean())[:length]
    string = _feedback_comb(excitation, delay, loop_gain * taps)
    release = min(length // 2, round(log_uniform(rng, 0.005, 0.1) * sample_rate))
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
            out[offset:] += peak_normalise(_pluck(rng, sample_rate, length - offset, freqs[i]))
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
    sound = peak_normalise(sound)
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


EVENTS = {
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
        log_uniform(rng, low, high) * sample_rate
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
        audio[:fade_in] *= cos_ramp(fade_in)
    if fade_out:
        audio[audio.size - fade_out :] *= cos_ramp(fade_out)[::-1]


def cos_ramp(length: int) -> np.ndarray:
    return 0.5 - 0.5 * np.cos(np.pi * (np.arange(length) + 0.5) / length)


def peak_normalise(audio: np.ndarray) -> np.ndarray:
    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    return audio / peak if peak > 0 else audio


def _freq_range(sample_rate: int) -> tuple[float, float]:
    high = min(F_MAX_HZ, HARMONIC_LIMIT * sample_rate / 2)  # room for at least 2 harmonics
    return min(F_MIN_HZ, high / 4), high


def _draw_freq(rng: np.random.Generator, sample_rate: int, high: float | None = None) -> float:
    low, top = _freq_range(sample_rate)
    return log_uniform(rng, low, max(low, min(top, high or top)))


def _shape(rng: np.random.Generator) -> str:
    return str(rng.choice(["sine", "square", "saw"]))


def log_uniform(rng: np.random.Generator, low: float, high: float) -> float:
    return float(np.exp(rng.uniform(np.log(low), np.log(high))))
