"""Characterise an effect from outside: feed it test signals and measure what comes back.

:func:`measure_effect` treats any effect (the real one or a model of it) as a black box
``process(audio) -> audio`` and returns the classic bench measurements of an analogue unit:
frequency response, THD against level, static transfer curve, step and impulse responses,
attack and release times, and aliasing. :func:`plot_measurements` overlays several of them
(the target and its models) in one PNG, so a model's character can be compared at a glance.

Every test signal is mono and sent in a separate call, each starting from silence, so an
effect with state (a compressor, a delay) starts afresh each time. A multichannel output is
averaged to mono before it is measured.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import signal

from fxclone.errors import FxcloneError

Processor = Callable[[np.ndarray], np.ndarray]
"""An effect as a function: float32 ``(channels, samples)`` -> the same shape, at one rate."""

# Frequency response: an exponential sweep at this peak level, from SWEEP_F1_HZ to 0.45 fs.
SWEEP_LEVEL_DBFS = -20.0
SWEEP_SECONDS = 2.0
SWEEP_F1_HZ = 10.0
# The deconvolved impulse response is kept from this long before its peak to this long after;
# the 2nd harmonic's response lies L ln 2 (0.18 s at 48 kHz) before the peak, outside it.
_IR_PRE_S = 0.05
_IR_POST_S = 0.5
N_RESPONSE_POINTS = 256
RESPONSE_F_MIN_HZ = 20.0

# THD against level: a 1 kHz sine at these peak levels.
THD_FREQ_HZ = 1000.0
THD_LEVELS_DBFS = np.linspace(-40.0, 0.0, 9)
N_HARMONICS_REPORTED = 5  # harmonics 2..6
# Each tone settles for this long, then this much of it is analysed.
_TONE_SETTLE_S = 0.3
_TONE_ANALYSE_S = 0.2
# Energy within this many FFT bins of a partial belongs to it (a Blackman-Harris main lobe is
# 4 bins wide either side).
_PARTIAL_HALF_WIDTH_BINS = 6
# Ratios and levels below this read as -200 dB.
DB_FLOOR = 1e-10

TRANSFER_FREQ_HZ = 50.0
_TRANSFER_PERIODS = 5  # the last of these is kept

STEP_AMPLITUDE = 0.5
IMPULSE_AMPLITUDE = 0.1
RESPONSE_MS = 50.0

# Attack/release: a 1 kHz tone at these levels (dBFS peak) for these durations (s).
DYNAMICS_LEVELS_DBFS = (-30.0, -6.0, -30.0)
DYNAMICS_SECONDS = (0.5, 0.5, 1.0)
DYNAMICS_MIN_CHANGE_DB = 1.0
_DYNAMICS_FRACTION = 1.0 - math.exp(-1.0)  # 63.2 %, one time constant of a one-pole smoother
_DYNAMICS_FINAL_S = 0.05  # the settled gain is the mean over the last 50 ms of a segment

# Aliasing: a full-scale sine at 3.1 kHz, or 0.065 fs at rates below 44.1 kHz. 3100 Hz shares
# no small common factor with 44.1 or 48 kHz, so aliased harmonics fall between true ones.
ALIASING_FREQ_HZ = 3100.0
_ALIASING_MIN_RATE = 44100


@dataclass(frozen=True)
class Measurements:
    """What :func:`measure_effect` found. Arrays are float64 numpy, 1-D unless stated.

    Attributes:
        freqs_hz: frequencies of ``response_db``, log-spaced from 20 Hz to 0.45 fs.
        response_db: small-signal magnitude response in dB (exponential sweep at -20 dBFS
            peak, Farina deconvolution, relative to the sweep itself, so the identity is 0 dB).
        levels_dbfs: peak levels of the 1 kHz test tone, -40 to 0 dBFS in 5 dB steps.
        thd: total harmonic distortion at each level, as a ratio (not %): RMS of harmonics 2
            and up (to Nyquist) over the fundamental's.
        harmonics_db: ``(levels, 5)``: harmonics 2..6 in dB re. the fundamental.
        transfer_in: input samples of one period of a full-scale 50 Hz sine, after settling.
        transfer_out: the output at the same samples (the static transfer curve when plotted
            against ``transfer_in``; a loop if the effect has memory at 50 Hz).
        step_t_ms: time of each ``step_response`` sample in ms from the step.
        step_response: output for an input stepping from 0 to 0.5 at t = 0 (first 50 ms).
        impulse_t_ms: time of each ``impulse_response`` sample in ms from the impulse.
        impulse_response: output for one sample of 0.1 at t = 0, divided by 0.1, so a linear
            effect shows its impulse response (first 50 ms).
        attack_ms: time for the gain to cover 63 % of its change (in dB) after a 1 kHz tone
            steps from -30 to -6 dBFS; NaN when the gain changes by 1 dB or less.
        release_ms: the same after the tone steps back to -30 dBFS.
        aliasing_db: output energy not at harmonics (or DC) of a full-scale 3.1 kHz sine, in dB
            re. the total output energy; about -100 dB or below for an alias-free effect.
    """

    freqs_hz: np.ndarray
    response_db: np.ndarray
    levels_dbfs: np.ndarray
    thd: np.ndarray
    harmonics_db: np.ndarray
    transfer_in: np.ndarray
    transfer_out: np.ndarray
    step_t_ms: np.ndarray
    step_response: np.ndarray
    impulse_t_ms: np.ndarray
    impulse_response: np.ndarray
    attack_ms: float
    release_ms: float
    aliasing_db: float


def _run(process: Processor, x: np.ndarray, what: str) -> np.ndarray:
    """Send mono ``(samples,)`` through ``process``; return the mono float64 output."""
    audio = np.asarray(x, dtype=np.float32)[None, :]
    out = np.asarray(process(audio), dtype=np.float64)
    if out.ndim == 1:
        out = out[None, :]
    if out.ndim != 2 or out.shape[1] != audio.shape[1]:
        raise FxcloneError(
            f"the effect returned shape {out.shape} for the {what} of shape {audio.shape}; "
            "it must return (channels, samples) with as many samples as it was given"
        )
    if not np.all(np.isfinite(out)):
        raise FxcloneError(
            f"the effect returned NaN/Inf for the {what}; fix the model or effect that made it"
        )
    return out.mean(axis=0)


def _db(ratio: np.ndarray | float) -> np.ndarray:
    return 20.0 * np.log10(np.maximum(ratio, DB_FLOOR))


def _tone(freq_hz: float, amplitude: float, n: int, sample_rate: int) -> np.ndarray:
    return amplitude * np.sin(2.0 * np.pi * freq_hz * np.arange(n) / sample_rate)


# --------------------------------------------------------------------------------------------
# frequency response


def _frequency_response(process: Processor, sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
    """Exponential sweep and Farina's inverse filter; the response re. the sweep's own."""
    f1, f2 = SWEEP_F1_HZ, 0.45 * sample_rate
    n = round(SWEEP_SECONDS * sample_rate)
    t = np.arange(n) / sample_rate
    rate = SWEEP_SECONDS / math.log(f2 / f1)
    sweep = np.sin(2.0 * np.pi * f1 * rate * (np.exp(t / rate) - 1.0))
    # Short fades stop the sweep's ends from clicking; the reference below sees them too.
    fade = round(0.005 * sample_rate)
    ramp = 0.5 - 0.5 * np.cos(np.pi * np.arange(fade) / fade)
    sweep[:fade] *= ramp
    sweep[n - fade :] *= ramp[::-1]
    sweep *= 10.0 ** (SWEEP_LEVEL_DBFS / 20.0)
    tail = round(_IR_POST_S * sample_rate)
    x = np.concatenate([sweep, np.zeros(tail)])
    y = _run(process, x, "sine sweep")
    # The inverse filter is the time-reversed sweep with a -6 dB/octave tilt (its energy per
    # octave falls as 1/f), so sweep * inverse is a band-limited pulse at sample n - 1.
    inverse = sweep[::-1] * np.exp(-t / rate)
    ir_y = signal.fftconvolve(y, inverse)
    ir_x = signal.fftconvolve(x.astype(np.float32).astype(np.float64), inverse)
    peak = n - 1
    start, stop = peak - round(_IR_PRE_S * sample_rate), peak + tail
    window = signal.windows.tukey(stop - start, alpha=0.1)
    n_fft = 1 << (stop - start - 1).bit_length()
    spec_y = np.fft.rfft(ir_y[start:stop] * window, n_fft)
    spec_x = np.fft.rfft(ir_x[start:stop] * window, n_fft)
    bins_hz = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    # Dividing by the reference removes the sweep's own ripple and band edges, so only the
    # effect remains; both are nonzero across the band measured.
    response_db = _db(np.abs(spec_y)) - _db(np.abs(spec_x))
    freqs_hz = np.geomspace(RESPONSE_F_MIN_HZ, f2, N_RESPONSE_POINTS)
    return freqs_hz, np.interp(freqs_hz, bins_hz, response_db)


# --------------------------------------------------------------------------------------------
# tones: THD and aliasing


def _tone_spectrum(
    process: Processor, freq_hz: float, amplitude: float, sample_rate: int, what: str
) -> tuple[np.ndarray, np.ndarray]:
    """Power spectrum (Blackman-Harris) of the settled output for a sine; bins in Hz."""
    settle, analyse = round(_TONE_SETTLE_S * sample_rate), round(_TONE_ANALYSE_S * sample_rate)
    y = _run(process, _tone(freq_hz, amplitude, settle + analyse, sample_rate), what)
    segment = y[settle:]
    power = np.abs(np.fft.rfft(segment * signal.windows.blackmanharris(analyse))) ** 2
    return np.fft.rfftfreq(analyse, 1.0 / sample_rate), power


def _partial_power(power: np.ndarray, bins_hz: np.ndarray, freq_hz: float) -> float:
    centre = round(freq_hz / bins_hz[1])
    lo, hi = max(0, centre - _PARTIAL_HALF_WIDTH_BINS), centre + _PARTIAL_HALF_WIDTH_BINS + 1
    return float(power[lo:hi].sum())


def _distortion(process: Processor, sample_rate: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """THD and harmonics 2..6 of a 1 kHz tone at each of THD_LEVELS_DBFS."""
    nyquist = sample_rate / 2.0
    n_harmonics = int((nyquist - 2 * _PARTIAL_HALF_WIDTH_BINS / _TONE_ANALYSE_S) // THD_FREQ_HZ)
    thd, harmonics_db = [], []
    for level in THD_LEVELS_DBFS:
        bins_hz, power = _tone_spectrum(
            process, THD_FREQ_HZ, 10.0 ** (level / 20.0), sample_rate, f"{level:g} dBFS tone"
        )
        partials = np.array(
            [_partial_power(power, bins_hz, k * THD_FREQ_HZ) for k in range(1, n_harmonics + 1)]
        )
        fundamental = max(partials[0], DB_FLOOR**2)
        thd.append(math.sqrt(partials[1:].sum() / fundamental))
        reported = np.zeros(N_HARMONICS_REPORTED)
        count = min(N_HARMONICS_REPORTED, n_harmonics - 1)
        reported[:count] = partials[1 : 1 + count]
        harmonics_db.append(_db(np.sqrt(reported / fundamental)))
    return THD_LEVELS_DBFS.copy(), np.array(thd), np.array(harmonics_db)


def _aliasing(process: Processor, sample_rate: int) -> float:
    freq_hz = ALIASING_FREQ_HZ if sample_rate >= _ALIASING_MIN_RATE else 0.065 * sample_rate
    bins_hz, power = _tone_spectrum(process, freq_hz, 1.0, sample_rate, "aliasing tone")
    harmonic = sum(
        _partial_power(power, bins_hz, k * freq_hz)
        for k in range(int(sample_rate / 2 // freq_hz) + 1)  # k = 0 is DC, not aliasing
    )
    total = float(power.sum())
    if total <= 0.0:
        return float("nan")
    return float(10.0 * math.log10(max((total - harmonic) / total, DB_FLOOR**2)))


# --------------------------------------------------------------------------------------------
# time-domain responses


def _transfer(process: Processor, sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
    period = round(sample_rate / TRANSFER_FREQ_HZ)
    x = np.sin(2.0 * np.pi * np.arange(_TRANSFER_PERIODS * period) / period)
    x = x.astype(np.float32).astype(np.float64)  # what the effect actually receives
    y = _run(process, x, "50 Hz sine")
    return x[-period:], y[-period:]


def _short_response(
    process: Processor, x: np.ndarray, sample_rate: int, what: str
) -> tuple[np.ndarray, np.ndarray]:
    n = round(RESPONSE_MS / 1000.0 * sample_rate)
    y = _run(process, x, what)[:n]
    return np.arange(n) * 1000.0 / sample_rate, y


def _dynamics(process: Processor, sample_rate: int) -> tuple[float, float]:
    """Attack and release times in ms from a tone stepping -30 -> -6 -> -30 dBFS."""
    lengths = [round(s * sample_rate) for s in DYNAMICS_SECONDS]
    amplitude = np.concatenate(
        [
            np.full(n, 10.0 ** (lvl / 20.0))
            for lvl, n in zip(DYNAMICS_LEVELS_DBFS, lengths, strict=True)
        ]
    )
    x = amplitude * np.sin(2.0 * np.pi * THD_FREQ_HZ * np.arange(amplitude.size) / sample_rate)
    y = _run(process, x, "level-stepped tone")
    # RMS over one period of the tone (centred) is steady for a steady sine, so what varies
    # is the gain. The input's RMS over the same window is the reference, so a window that
    # straddles a level step compares like with like instead of reading a spurious jump.
    period = max(1, round(sample_rate / THD_FREQ_HZ))
    kernel = np.ones(period) / period
    mean_square_out = np.convolve(y**2, kernel, mode="same")
    mean_square_in = np.convolve(x**2, kernel, mode="same")
    gain_db = 10.0 * np.log10(np.maximum(mean_square_out, DB_FLOOR**2) / mean_square_in)
    final = round(_DYNAMICS_FINAL_S * sample_rate)
    edges = np.cumsum([0, *lengths])
    settled = [float(np.mean(gain_db[stop - final : stop])) for stop in edges[1:]]
    times = []
    for seg in (1, 2):
        before, after = settled[seg - 1], settled[seg]
        change = after - before
        if abs(change) <= DYNAMICS_MIN_CHANGE_DB:
            times.append(float("nan"))
            continue
        start = edges[seg]
        progress = (gain_db[start : edges[seg + 1]] - before) / change
        reached = np.flatnonzero(progress >= _DYNAMICS_FRACTION)
        times.append(float(reached[0]) * 1000.0 / sample_rate if reached.size else float("nan"))
    return times[0], times[1]


def harmonic_amplitudes(
    y: np.ndarray, f0_hz: float, sample_rate: int, start_s: float = 0.25, seconds: float = 0.5
) -> np.ndarray:
    """Peak amplitudes of f0, 2 f0, ... up to Nyquist in ``y[start : start + seconds]``.

    Uses a rectangular window over the segment, exact when it holds a whole number of
    periods (f0 on an FFT bin, e.g. 500 Hz over 0.5 s), so no leakage blurs the harmonics.
    """
    flat = np.asarray(y, dtype=np.float64).reshape(-1) if np.ndim(y) == 1 else np.asarray(y)[0]
    start = int(start_s * sample_rate)
    seg = np.asarray(flat[start : start + int(seconds * sample_rate)], dtype=np.float64)
    spec = np.abs(np.fft.rfft(seg)) * 2 / seg.size
    k = round(f0_hz * seg.size / sample_rate)
    return spec[k::k]


def thd(y: np.ndarray, f0_hz: float, sample_rate: int, **segment: float) -> float:
    """Total harmonic distortion (ratio, not %) of a steady tone: rms of harmonics 2.. / f0."""
    h = harmonic_amplitudes(y, f0_hz, sample_rate, **segment)
    return float(np.sqrt(np.sum(h[1:] ** 2)) / h[0])


def measure_effect(process: Processor, sample_rate: int) -> Measurements:
    """Run the bench tests on ``process`` and return what they measured.

    About 6.5 s of test audio in 15 calls (sweep 2.5 s, nine 0.5 s tones, 2 s of level steps,
    and short signals), so under a second of analysis at 48 kHz plus the effect's own time.

    Args:
        process: the effect; float32 ``(channels, samples)`` in, the same shape out. It is
            always given one channel; a multichannel output is averaged to mono.
        sample_rate: in Hz, at which ``process`` runs; at least 8000.

    Raises:
        FxcloneError: ``sample_rate`` is too low, or ``process`` returns the wrong shape or
            non-finite samples.
    """
    if not isinstance(sample_rate, int | np.integer) or sample_rate < 8000:
        raise FxcloneError(
            f"cannot measure at sample_rate={sample_rate!r}; give a whole rate of at least "
            "8000 Hz (the 1 kHz tests need its harmonics below Nyquist)"
        )
    sample_rate = int(sample_rate)
    freqs_hz, response_db = _frequency_response(process, sample_rate)
    levels, thd, harmonics_db = _distortion(process, sample_rate)
    transfer_in, transfer_out = _transfer(process, sample_rate)
    n = round(RESPONSE_MS / 1000.0 * sample_rate)
    step_t_ms, step_response = _short_response(
        process, np.full(2 * n, STEP_AMPLITUDE), sample_rate, "step"
    )
    impulse = np.zeros(2 * n)
    impulse[0] = IMPULSE_AMPLITUDE
    impulse_t_ms, impulse_response = _short_response(process, impulse, sample_rate, "impulse")
    attack_ms, release_ms = _dynamics(process, sample_rate)
    return Measurements(
        freqs_hz=freqs_hz,
        response_db=response_db,
        levels_dbfs=levels,
        thd=thd,
        harmonics_db=harmonics_db,
        transfer_in=transfer_in,
        transfer_out=transfer_out,
        step_t_ms=step_t_ms,
        step_response=step_response,
        impulse_t_ms=impulse_t_ms,
        impulse_response=impulse_response / IMPULSE_AMPLITUDE,
        attack_ms=attack_ms,
        release_ms=release_ms,
        aliasing_db=_aliasing(process, sample_rate),
    )


# --------------------------------------------------------------------------------------------
# plot
