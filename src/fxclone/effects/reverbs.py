"""Built-in reverbs: a feedback-delay-network reverb (room, plate, hall) with RT60 set in
seconds, and a spring reverb of dispersive chirping loops driven into saturation; and the
Schroeder RT60 measure their decay laws are checked with (see
:mod:`fxclone.effects.timebased` for how the loops are computed)."""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from scipy import signal
from scipy.linalg import hadamard

from fxclone.effects.registry import Effect, Knob, register
from fxclone.effects.timebased import _crossfade, _cutoff_hz, _delayed_block, _soft_clip


def schroeder_rt60(ir: np.ndarray, sample_rate: int, band_hz: float | None = None) -> float:
    """RT60 of an impulse response by Schroeder backward integration and a T30 fit.

    The energy decay curve ``EDC(t) = sum_{k >= t} h[k]^2`` (in dB re its start) is fitted by
    least squares between -5 and -35 dB and extended to -60 dB. The response should run
    well past its -35 dB point (1.5x RT60 is plenty), or the truncated tail bends the curve.

    Args:
        ir: ``(samples,)`` impulse response.
        sample_rate: Hz.
        band_hz: if given, the response is first filtered to the octave band centred here
            (4th-order Butterworth band-pass, edges at ``band_hz / sqrt 2`` and ``* sqrt 2``).

    Returns:
        RT60 in seconds.
    """
    h = np.asarray(ir, dtype=np.float64)
    if band_hz is not None:
        edges = [band_hz / math.sqrt(2.0), band_hz * math.sqrt(2.0)]
        h = signal.sosfilt(signal.butter(4, edges, "bandpass", fs=sample_rate, output="sos"), h)
    edc = np.cumsum((h**2)[::-1])[::-1]
    edc_db = 10.0 * np.log10(np.maximum(edc / edc[0], 1e-30))
    fit = (edc_db <= -5.0) & (edc_db >= -35.0)
    if fit.sum() < 3:
        raise ValueError("impulse response too short to fall from -5 to -35 dB; lengthen it")
    t = np.nonzero(fit)[0] / sample_rate
    slope_db_per_s = np.polyfit(t, edc_db[fit], 1)[0]
    return float(-60.0 / slope_db_per_s)


# --------------------------------------------------------------------------------------------
# digital delay


@dataclass(frozen=True)
class ReverbType:
    """One ``type`` setting of :class:`Reverb`.

    Attributes:
        name: what the panel calls it.
        delays_ms: the 8 FDN line lengths, ms; longer lines give sparser, bigger spaces.
        hf_ratio: RT60 at Nyquist / RT60 at DC (Jot's absorption filters); 1 is undamped.
        early_ms: length of the velvet-noise early-reflection burst, ms.
        early_per_ms: early reflections per ms.
    """

    name: str
    delays_ms: tuple[float, ...]
    hf_ratio: float
    early_ms: float
    early_per_ms: float


REVERB_TYPES = (
    ReverbType("room", (8.9, 10.7, 12.3, 14.1, 15.9, 18.3, 20.9, 23.9), 0.45, 15.0, 1.5),
    ReverbType("plate", (5.3, 6.7, 7.9, 9.1, 10.3, 11.9, 13.1, 14.9), 0.8, 4.0, 4.0),
    ReverbType("hall", (23.3, 27.1, 31.7, 36.1, 41.3, 46.9, 53.3, 59.9), 0.5, 40.0, 1.0),
)
_EARLY_SEED = 2718
_REVERB_REFERENCE_HZ = 500.0  # the decay knob is the RT60 here
_MAX_POLE = 0.9
_MAX_LINE_GAIN = 0.9999
# Wet levels for a unit impulse: early reflections of energy 0.09, a late tail of about 0.1
# (about -8 dB together), so full-scale material mixed at the default stays below 1.
_EARLY_LEVEL = 0.3
_LATE_LEVEL = 1.0


@functools.lru_cache(maxsize=16)
def _early_reflections(type_index: int, sample_rate: int) -> np.ndarray:
    """Velvet-noise burst: one +-1 tap at a seeded random spot in every grid cell, decaying.

    The first tap sits at sample 0, so the wet response starts exactly at the pre-delay.
    Normalised to unit energy. Returns float64 ``(taps,)``.
    """
    kind = REVERB_TYPES[type_index]
    rng = np.random.default_rng(_EARLY_SEED + type_index)
    length = max(2, round(kind.early_ms * sample_rate / 1000.0))
    cell = max(1.0, sample_rate / (1000.0 * kind.early_per_ms))
    starts = np.arange(0.0, length, cell)
    taps = np.minimum((starts + rng.uniform(0.0, cell, starts.size)).astype(np.int64), length - 1)
    taps[0] = 0
    h = np.zeros(length)
    # Each reflection is quieter than the one before: -20 dB across the burst.
    np.add.at(h, taps, rng.choice([-1.0, 1.0], taps.size) * 10.0 ** (-taps / length))
    return h / np.sqrt(np.sum(h**2))


class Reverb(Effect):
    """Algorithmic reverb: velvet-noise early reflections into an 8-line feedback delay network.

    Flow: pre-delay -> early reflections (a seeded velvet-noise FIR) -> 8 delay lines mixed by
    an orthogonal Hadamard matrix, each line through Jot's absorption filter
    ``g_i (1 - b_i) / (1 - b_i z^-1)`` with ``g_i = 10^(-3 d_i / (fs decay))``; wet = early
    reflections + the lines' sum; ``out = (1 - mix) dry + mix wet``. A line of ``d_i`` samples
    then loses 60 dB every ``decay`` seconds at DC whatever its length, so ``decay`` is the
    RT60 of the whole tail at low and mid frequencies (measured in the 500 Hz octave band);
    ``b_i`` shortens it smoothly to ``hf_ratio * decay`` at Nyquist (room 0.45, plate 0.8,
    hall 0.5). ``type`` picks the line lengths and damping: 0 room (9-24 ms), 1 plate (5-15
    ms, bright and dense), 2 hall (23-60 ms).
    """

    name = "reverb"
    description = "FDN reverb: room/plate/hall, RT60 set in seconds, pre-delay"
    knobs = (
        Knob("decay", "s", 0.2, 8.0, 1.5, "RT60 of the tail (500 Hz band)", log_scale=True),
        Knob("type", "", 0.0, 2.0, 0.0, "0 room, 1 plate, 2 hall", integer=True),
        Knob("predelay", "ms", 0.0, 200.0, 10.0, "gap before the first reflection"),
        Knob("mix", "%", 0.0, 100.0, 20.0, "wet share of the output"),
    )

    def process(self, dry: np.ndarray, sample_rate: int, knobs: Mapping[str, float]) -> np.ndarray:
        x = dry.astype(np.float64)
        type_index = int(knobs["type"])
        kind = REVERB_TYPES[type_index]
        predelay = round(knobs["predelay"] * sample_rate / 1000.0)
        shifted = np.zeros_like(x)
        if predelay < x.shape[1]:
            shifted[:, predelay:] = x[:, : x.shape[1] - predelay]
        early = signal.oaconvolve(
            shifted, _early_reflections(type_index, sample_rate)[None], axes=-1
        )[:, : x.shape[1]]
        late = _fdn(early, sample_rate, kind, knobs["decay"])
        return _crossfade(x, _EARLY_LEVEL * early + late, knobs["mix"])


def _fdn(x: np.ndarray, sample_rate: int, kind: ReverbType, rt60_s: float) -> np.ndarray:
    """The late tail: 8-line FDN with Jot absorption, unit input/output vectors.

    Args:
        x: float64 ``(channels, samples)``, the early reflections.
        sample_rate: Hz.
        kind: line lengths and damping.
        rt60_s: RT60 at DC, seconds.

    Returns:
        float64 ``(channels, samples)``; a unit impulse leaves a tail of energy near 0.1
        (less for short decays).
    """
    channels, n = x.shape
    delays = np.array([max(1, round(ms * sample_rate / 1000.0)) for ms in kind.delays_ms])
    lines = delays.size
    gains = 10.0 ** (-3.0 * delays / (sample_rate * rt60_s))
    # Jot (1991): this pole makes the attenuation per sample the same on every line at each
    # frequency, falling to hf_ratio * RT60 at Nyquist.
    # Clamped because the first-order formula overshoots for very short decays on long lines.
    poles = np.minimum(
        _MAX_POLE, math.log(10.0) / 4.0 * np.log10(gains) * (1.0 - 1.0 / kind.hf_ratio**2)
    )
    # The filter's small loss at the reference frequency is folded back into the gain, so the
    # RT60 there is exact rather than only at DC.
    w = 2.0 * math.pi * _REVERB_REFERENCE_HZ / sample_rate
    loss = (1.0 - poles) / np.abs(1.0 - poles * np.exp(-1j * w))
    gains = np.minimum(_MAX_LINE_GAIN, gains / loss)
    feedback = hadamard(lines) / math.sqrt(lines)
    signs = np.array([1.0, -1.0, 1.0, 1.0, -1.0, 1.0, -1.0, -1.0])[:lines] / math.sqrt(lines)
    # A unit-energy input leaves energy sum_k g^(2k) ~ 1 / (1 - g^2) in the tail; undo it.
    # An impulse leaves ~ 1 / (1 - g^2) in a lossless-at-DC line; the absorption filters take
    # about nine tenths of that, so the tail's energy ends near 0.1 * _LATE_LEVEL^2.
    scale = _LATE_LEVEL / math.sqrt(float(np.mean(1.0 / (1.0 - gains**2))))
    history = np.empty((lines, channels, n))  # only finished samples are ever read
    zi = np.zeros((lines, channels, 1))
    out = np.empty_like(x)
    block = int(delays.min())
    for start in range(0, n, block):
        stop = min(start + block, n)
        taps = np.empty((lines, channels, stop - start))
        for i in range(lines):
            raw = _delayed_block(history[i], start, int(delays[i]), stop - start)
            taps[i], zi[i] = signal.lfilter(
                [gains[i] * (1.0 - poles[i])], [1.0, -poles[i]], raw, axis=-1, zi=zi[i]
            )
        out[:, start:stop] = np.tensordot(signs, taps, axes=1)
        history[:, :, start:stop] = signs[:, None, None] * x[None, :, start:stop] + np.tensordot(
            feedback, taps, axes=1
        )
    return scale * out


# --------------------------------------------------------------------------------------------
# spring reverb


_SPRING_DELAYS_MS = (37.0, 43.7)  # two springs of a typical long tank, transit time each way
_CHIRP_SECTIONS = 40  # first-order all-passes per trip
_CHIRP_HZ = 1000.0  # their corner: 0.32 ms delay each at DC, 0.16 ms at 1 kHz, 0.03 at 3 kHz
_SPRING_LPF_HZ = 4500.0
_SPRING_HPF_HZ = 120.0  # the transducers pass little bass
_DECAY_REFERENCE_HZ = 1000.0


def _spring_loop_sos(sample_rate: int) -> np.ndarray:
    """One trip's filters as second-order sections: the dispersive all-pass chain, then the
    4.5 kHz low-pass. The chain is ``(w0 - s) / (w0 + s)`` repeated, via the bilinear
    transform; its group delay ``2 w0 / (w0^2 + w^2)`` per section falls with frequency, so
    lows arrive later than highs and each echo is a descending chirp."""
    w0 = 2.0 * math.pi * _CHIRP_HZ
    b1, a1 = signal.bilinear([-1.0, w0], [1.0, w0], fs=sample_rate)
    pair = np.concatenate([np.convolve(b1, b1), np.convolve(a1, a1)])
    chain = np.tile(pair, (_CHIRP_SECTIONS // 2, 1))
    lowpass = signal.butter(
        2, _cutoff_hz(_SPRING_LPF_HZ, sample_rate), fs=sample_rate, output="sos"
    )
    return np.vstack([chain, lowpass])


def _loop_gain_and_delay(sos: np.ndarray, freq_hz: float, sample_rate: int) -> tuple[float, float]:
    """``|H(f)|`` and group delay in seconds of ``sos`` at ``freq_hz``."""
    eps = 1.0
    _, h = signal.sosfreqz(sos, worN=[freq_hz - eps, freq_hz, freq_hz + eps], fs=sample_rate)
    phase = np.unwrap(np.angle(h))
    delay_s = -(phase[2] - phase[0]) / (2.0 * math.pi * 2.0 * eps)
    return float(abs(h[1])), float(delay_s)


class Spring(Effect):
    """Spring reverb: a saturating driver into two dispersive feedback loops (springs).

    Flow: ``tank_in = tanh(G dry) / G`` with ``G = 10^(drive/20)``; each spring is a loop
    ``s = tank_in + g * lowpass(chirp(s delayed by D))`` with ``D`` = 37 or 43.7 ms, ``chirp``
    40 first-order all-passes at 1 kHz (lows delayed up to 12.7 ms more than highs per trip)
    and a 4.5 kHz low-pass; wet = the springs' summed returns through a 120 Hz high-pass;
    ``out = (1 - mix) dry + mix wet``. ``g = 10^(-3 T / decay) / |H(1 kHz)|`` with ``T`` the
    trip time at 1 kHz (``D`` plus the filters' group delay), so ``decay`` is the RT60 at
    1 kHz exactly; lows (longer trips) ring a little longer, highs above 4.5 kHz shorter.
    """

    name = "spring"
    description = "spring reverb: dispersive chirping feedback loops, driven input"
    knobs = (
        Knob("decay", "s", 0.3, 6.0, 2.0, "RT60 at 1 kHz", log_scale=True),
        Knob("drive", "dB", 0.0, 30.0, 6.0, "drive into the tank: higher saturates"),
        Knob("mix", "%", 0.0, 100.0, 30.0, "wet share of the output"),
    )

    def process(self, dry: np.ndarray, sample_rate: int, knobs: Mapping[str, float]) -> np.ndarray:
        x = dry.astype(np.float64)
        channels, n = x.shape
        tank_in = _soft_clip(x, 10.0 ** (knobs["drive"] / 20.0))
        sos = _spring_loop_sos(sample_rate)
        magnitude, filter_delay_s = _loop_gain_and_delay(sos, _DECAY_REFERENCE_HZ, sample_rate)
        delays = [max(1, round(ms * sample_rate / 1000.0)) for ms in _SPRING_DELAYS_MS]
        gains = [
            min(
                0.999,
                10.0 ** (-3.0 * (d / sample_rate + filter_delay_s) / knobs["decay"]) / magnitude,
            )
            for d in delays
        ]
        # A unit impulse leaves energy ~ 1 / (1 - g^2) in a loop; keep the wet level steady.
        scale = 1.0 / math.sqrt(sum(1.0 / (1.0 - g**2) for g in gains))
        lines = np.empty((len(delays), channels, n))  # only finished samples are ever read
        zi = np.zeros((len(delays), sos.shape[0], channels, 2))
        wet = np.zeros_like(x)
        block = min(delays)
        for start in range(0, n, block):
            stop = min(start + block, n)
            for j, (delay, gain) in enumerate(zip(delays, gains, strict=True)):
                raw = _delayed_block(lines[j], start, delay, stop - start)
                back, zi[j] = signal.sosfilt(sos, raw, axis=-1, zi=zi[j])
                wet[:, start:stop] += back
                lines[j, :, start:stop] = tank_in[:, start:stop] + gain * back
        hpf = signal.butter(1, _SPRING_HPF_HZ, "highpass", fs=sample_rate, output="sos")
        return _crossfade(x, scale * signal.sosfilt(hpf, wet, axis=-1), knobs["mix"])


REVERB = register(Reverb())
SPRING = register(Spring())
