"""Built-in modulation effects: tremolo, vibrato, chorus, flanger and phaser.

Every effect here is driven by one free-running low-frequency oscillator (LFO) per call:
``theta[n] = 2 pi rate n / sample_rate + phase``, starting at the ``phase`` knob (degrees) on
sample 0 and never restarting, so a long stream rendered in one call has no seams. Every
channel sees the same LFO (a stereo pair stays in step), is processed alone, in float64, and
returned as float32. All effects are causal and deterministic.

Delay-based effects (vibrato, chorus, flanger) read their delay lines by linear interpolation:
its weights are convex, so a tap is never louder than the signal it reads, which keeps the
output peak at or below the input peak.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from fxclone.effects.registry import Effect, Knob, register


def lfo_phase(samples: int, sample_rate: int, rate_hz: float, phase_deg: float) -> np.ndarray:
    """LFO phase in radians for samples ``0 .. samples - 1`` of one call.

    Args:
        samples: number of samples.
        sample_rate: Hz.
        rate_hz: LFO frequency in Hz.
        phase_deg: phase at sample 0, in degrees.

    Returns:
        float64 ``(samples,)``; the LFO itself is ``sin`` of this.
    """
    n = np.arange(samples, dtype=np.float64)
    return 2.0 * math.pi * rate_hz / sample_rate * n + math.radians(phase_deg)


def _rate_knob(default_hz: float) -> Knob:
    return Knob("rate", "Hz", 0.05, 10.0, default_hz, "LFO frequency", log_scale=True)


_PHASE_KNOB = Knob("phase", "deg", 0.0, 360.0, 0.0, "LFO phase at the first sample")
_MIX_KNOB = Knob("mix", "%", 0.0, 100.0, 50.0, "share of the effected signal in the output")


def _delay_samples(
    samples: int, sample_rate: int, knobs: Mapping[str, float], min_delay_ms: float
) -> np.ndarray:
    """Swept delay ``min_delay + depth (1 + sin theta)`` in samples, float64 ``(samples,)``.

    ``depth`` (ms) is the peak deviation from the centre ``min_delay + depth``, so the
    delay swings between ``min_delay`` and ``min_delay + 2 depth``.
    """
    theta = lfo_phase(samples, sample_rate, knobs["rate"], knobs["phase"])
    delay_ms = min_delay_ms + knobs["depth"] * (1.0 + np.sin(theta))
    return delay_ms * 1e-3 * sample_rate


def _read_delayed(x: np.ndarray, delay: np.ndarray) -> np.ndarray:
    """``x[n - delay[n]]`` by linear interpolation; zero before the first sample.

    Args:
        x: float64 ``(channels, samples)``.
        delay: float64 ``(samples,)`` in samples; values below 1 are raised to 1, so the
            read never looks past the current sample (the effect stays causal at any rate).

    Returns:
        float64 ``(channels, samples)``.
    """
    delay = np.maximum(delay, 1.0)
    pad = math.ceil(float(delay.max())) + 1
    padded = np.concatenate([np.zeros((x.shape[0], pad)), x], axis=1)
    position = np.arange(x.shape[1]) - delay + pad
    i0 = np.floor(position).astype(np.int64)
    frac = position - i0
    return padded[:, i0] * (1.0 - frac) + padded[:, i0 + 1] * frac


# --------------------------------------------------------------------------------------------
# tremolo


class Tremolo(Effect):
    """Amplitude modulation: ``gain = 1 - depth (1 + lfo) / 2``.

    ``lfo`` runs between -1 and 1, so the gain swings between 1 and ``1 - depth``: the
    loudest-to-quietest ratio is ``1 / (1 - depth)``. ``shape`` blends a sine LFO (0 %)
    into a triangle of the same phase and peaks (100 %), ``(2 / pi) asin(sin theta)``.
    The output is never louder than the input.
    """

    name = "tremolo"
    description = "tremolo: amplitude modulation by a sine/triangle LFO"
    knobs = (
        _rate_knob(4.0),
        Knob("depth", "%", 0.0, 100.0, 50.0, "gain dip at the LFO's peak"),
        Knob("shape", "%", 0.0, 100.0, 0.0, "LFO wave: 0 sine .. 100 triangle"),
        _PHASE_KNOB,
    )

    def process(self, dry: np.ndarray, sample_rate: int, knobs: Mapping[str, float]) -> np.ndarray:
        theta = lfo_phase(dry.shape[1], sample_rate, knobs["rate"], knobs["phase"])
        sine = np.sin(theta)
        blend = knobs["shape"] / 100.0
        lfo = (1.0 - blend) * sine + blend * (2.0 / math.pi) * np.arcsin(sine)
        gain = 1.0 - knobs["depth"] / 100.0 * (1.0 + lfo) / 2.0
        return (dry.astype(np.float64) * gain).astype(np.float32)


# --------------------------------------------------------------------------------------------
# vibrato

# Shortest delay of the vibrato's sweep: enough for the interpolated read to stay causal at
# any sample rate above 2 kHz, small enough to add little latency.
_VIBRATO_MIN_DELAY_MS = 0.5


class Vibrato(Effect):
    """Pitch vibrato: the input read from a delay line whose length the LFO sweeps (wet only).

    The delay is ``0.5 ms + depth (1 + sin theta)``. A tone at ``f0`` comes out with an
    instantaneous frequency ``f0 (1 - d'(t))``, which swings by ``+- 2 pi rate depth f0``
    (e.g. +-31 Hz, 54 cents, for a 1 kHz tone at 5 Hz and 1 ms). Linear interpolation.
    """

    name = "vibrato"
    description = "vibrato: pitch modulation by an LFO-swept delay line, wet only"
    knobs = (
        _rate_knob(5.0),
        Knob("depth", "ms", 0.0, 5.0, 0.5, "peak deviation of the delay from its centre"),
        _PHASE_KNOB,
    )

    def process(self, dry: np.ndarray, sample_rate: int, knobs: Mapping[str, float]) -> np.ndarray:
        delay = _delay_samples(dry.shape[1], sample_rate, knobs, _VIBRATO_MIN_DELAY_MS)
        return _read_delayed(dry.astype(np.float64), delay).astype(np.float32)


# --------------------------------------------------------------------------------------------
# chorus


class Chorus(Effect):
    """Chorus: 1-3 delayed voices, each swept by the LFO, mixed with the dry signal.

    Voice ``v`` of ``V`` reads the input at ``delay + depth (1 + sin(theta + 2 pi v / V))``
    (the voices sweep evenly spread in phase, 180 deg for two and 120 deg for three, as in a
    tri-chorus); the wet signal is their mean and the output ``(1 - mix) dry + mix wet``.
    """

    name = "chorus"
    description = "chorus: 1-3 LFO-swept delay voices (7-35 ms) mixed with the dry signal"
    knobs = (
        _rate_knob(0.8),
        Knob("depth", "ms", 0.0, 5.0, 2.0, "peak deviation of each voice's delay"),
        Knob("delay", "ms", 7.0, 25.0, 10.0, "shortest delay of the sweep"),
        Knob("voices", "", 1.0, 3.0, 2.0, "number of delayed voices", integer=True),
        _MIX_KNOB,
        _PHASE_KNOB,
    )

    def process(self, dry: np.ndarray, sample_rate: int, knobs: Mapping[str, float]) -> np.ndarray:
        x = dry.astype(np.float64)
        voices = round(knobs["voices"])
        wet = np.zeros_like(x)
        for voice in range(voices):
            spread = {**knobs, "phase": knobs["phase"] + 360.0 * voice / voices}
            wet += _read_delayed(x, _delay_samples(x.shape[1], sample_rate, spread, knobs["delay"]))
        mix = knobs["mix"] / 100.0
        return ((1.0 - mix) * x + mix * wet / voices).astype(np.float32)


# --------------------------------------------------------------------------------------------
# flanger


class Flanger(Effect):
    """Flanger: a short LFO-swept delay with feedback, mixed with the dry signal.

    Delay line ``v[n] = x[n] + fb w[n]`` with tap ``w[n] = v[n - d[n]]`` and
    ``d = delay + depth (1 + sin theta)``; output ``(1 - mix) x + mix (1 - |fb|) w``. The
    factor ``1 - |fb|`` makes the tap's impulse response sum to at most 1 in absolute value,
    so feedback sharpens the comb without raising the peak above the input's.

    The feedback loop reads only samples at least ``delay`` old, so it runs in blocks shorter
    than the current delay: each block reads only what earlier blocks wrote, and the result
    equals the per-sample recursion.
    """

    name = "flanger"
    description = "flanger: 0.5-10 ms LFO-swept delay with feedback, mixed with the dry signal"
    knobs = (
        _rate_knob(0.25),
        Knob("depth", "ms", 0.0, 2.5, 1.0, "peak deviation of the delay from its centre"),
        Knob("delay", "ms", 0.5, 5.0, 1.0, "shortest delay of the sweep"),
        Knob("feedback", "%", -95.0, 95.0, 50.0, "tap fed back into the delay line"),
        _MIX_KNOB,
        _PHASE_KNOB,
    )

    def process(self, dry: np.ndarray, sample_rate: int, knobs: Mapping[str, float]) -> np.ndarray:
        x = dry.astype(np.float64)
        delay = np.maximum(_delay_samples(x.shape[1], sample_rate, knobs, knobs["delay"]), 1.0)
        tap = _feedback_tap(x, delay, knobs["feedback"] / 100.0)
        mix, fb = knobs["mix"] / 100.0, abs(knobs["feedback"]) / 100.0
        return ((1.0 - mix) * x + mix * (1.0 - fb) * tap).astype(np.float32)


def _feedback_tap(x: np.ndarray, delay: np.ndarray, feedback: float) -> np.ndarray:
    """Tap ``w[n] = v[n - delay[n]]`` of the line ``v = x + feedback w``, linear interpolation.

    Args:
        x: float64 ``(channels, samples)``.
        delay: float64 ``(samples,)`` in samples, at least 1.
        feedback: loop gain in (-1, 1).

    Returns:
        float64 ``(channels, samples)``.
    """
    channels, n = x.shape
    pad = math.ceil(float(delay.max())) + 1
    line = np.zeros((channels, pad + n))
    position = np.arange(n) - delay + pad
    i0 = np.floor(position).astype(np.int64)
    i1 = i0 + 1
    frac = position - i0
    # Sample n reads line[i1[n]], i.e. unpadded sample newest[n]. A block [start, stop) may
    # only read what earlier blocks wrote, newest < start; newest rises with n (the delay
    # changes by less than a sample per sample), so each block runs up to the first sample
    # that would read inside it. That is at least the shortest delay minus one, and twice
    # that on average over a sweep. A one-sample block is always safe: at delay 1 it reads
    # the unwritten sample n with weight 0.
    newest = i1 - pad
    tap = np.empty_like(x)
    start = 0
    while start < n:
        stop = max(int(np.searchsorted(newest, start)), start + 1)
        lo, hi, f = i0[start:stop], i1[start:stop], frac[start:stop]
        older = line[:, lo]
        w = older + f * (line[:, hi] - older)
        tap[:, start:stop] = w
        line[:, pad + start : pad + stop] = x[:, start:stop] + feedback * w
        start = stop
    return tap


# --------------------------------------------------------------------------------------------
# phaser

# The all-pass coefficient is held for blocks of about this many seconds (a power of two in
# samples: 32 at 44.1 and 48 kHz, 8 at 16 kHz): the sweep is then a staircase of ~1500 steps
# a second, far finer than the ear follows, and each block is a time-invariant system, which
# lets the loop run vectorised (see _allpass_loop).
_PHASER_HOLD_S = 1.0 / 1500.0
# Blocks solved together; bounds the memory of the block matrices (about 10 MB for 8 stages).
_PHASER_CHUNK_BLOCKS = 4096
# Break frequencies are kept below this fraction of the sample rate (tan() blows up at 0.5).
_PHASER_MAX_FRACTION = 0.45


class Phaser(Effect):
    """Phaser: first-order all-pass stages swept by the LFO, with feedback, mixed with dry.

    Each stage is ``A(z) = (a + z^-1) / (1 + a z^-1)`` with ``a = (t - 1) / (t + 1)``,
    ``t = tan(pi f_b / fs)``: unit gain, phase -90 deg at the break frequency ``f_b``. All
    stages share ``f_b``, swept on a log scale: ``log f_b = log sqrt(low high) + depth
    log(high / low) / 2 sin theta`` (``depth`` 100 % covers ``low``..``high``). The cascade
    output ``v`` is fed back one sample later, ``u[n] = x[n] + fb v[n - 1]``, and the output
    is ``(1 - mix) x + mix (1 - |fb|) v``; at mix 50 % and no feedback the dry and
    phase-shifted signals cancel where the cascade's phase is an odd multiple of 180 deg, one
    notch per two stages. The loop's gain peaks at ``1 / (1 - |fb|)``, so the factor
    ``1 - |fb|`` keeps a steady tone at or below its input level (a moving all-pass is not
    exactly lossless: a full-scale tone peaks up to 1.002). An all-pass changes a signal's
    crest factor, so the peaks of broadband input can rise: full-scale uniform noise peaks
    near 1.3 at the defaults, while the synthetic training material (peaks at -2 dBFS)
    comes out below -5 dBFS.

    ``a`` is held constant over blocks of about 0.7 ms (32 samples at 48 kHz; its value at
    the block's centre) so
    each block is linear time-invariant and the whole loop can be solved with array
    operations; odd stage counts are accepted (they add a notch at Nyquist).
    """

    name = "phaser"
    description = "phaser: 4-8 LFO-swept first-order all-pass stages with feedback"
    knobs = (
        _rate_knob(0.5),
        Knob("depth", "%", 0.0, 100.0, 100.0, "share of the low..high sweep the LFO covers"),
        Knob("low", "Hz", 20.0, 1000.0, 200.0, "lowest break frequency", log_scale=True),
        Knob("high", "Hz", 1000.0, 16000.0, 2000.0, "highest break frequency", log_scale=True),
        Knob("stages", "", 4.0, 8.0, 4.0, "first-order all-pass stages", integer=True),
        Knob("feedback", "%", -90.0, 90.0, 30.0, "cascade output fed back to its input"),
        _MIX_KNOB,
        _PHASE_KNOB,
    )

    def process(self, dry: np.ndarray, sample_rate: int, knobs: Mapping[str, float]) -> np.ndarray:
        x = dry.astype(np.float64)
        block = 2 ** max(0, round(math.log2(_PHASER_HOLD_S * sample_rate)))
        blocks = -(-x.shape[1] // block)
        centres = np.arange(blocks) * block + (block - 1) / 2.0
        theta = 2.0 * math.pi * knobs["rate"] / sample_rate * centres + math.radians(knobs["phase"])
        high = min(knobs["high"], _PHASER_MAX_FRACTION * sample_rate)
        low = min(knobs["low"], high)
        log_centre, half_span = 0.5 * math.log(low * high), 0.5 * math.log(high / low)
        break_hz = np.exp(log_centre + knobs["depth"] / 100.0 * half_span * np.sin(theta))
        t = np.tan(math.pi * break_hz / sample_rate)
        coefficient = (t - 1.0) / (t + 1.0)
        feedback = knobs["feedback"] / 100.0
        v = _allpass_loop(x, coefficient, block, round(knobs["stages"]), feedback)
        mix = knobs["mix"] / 100.0
        return ((1.0 - mix) * x + mix * (1.0 - abs(feedback)) * v).astype(np.float32)


def _allpass_step(
    a: np.ndarray, feedback: float, states: list[np.ndarray], fed_back: np.ndarray, x: np.ndarray
) -> np.ndarray:
    """One sample of the feedback all-pass cascade for many independent runs at once.

    Stages are transposed direct form II: ``out = a in + z``, ``z <- in - a out``.
    ``states`` (one array per stage) is updated in place; returns the cascade output, which
    is also the next ``fed_back``.
    """
    u = x + feedback * fed_back
    for i, z in enumerate(states):
        out = a * u + z
        states[i] = u - a * out
        u = out
    return u


def _allpass_loop(
    x: np.ndarray, coefficient: np.ndarray, block: int, stages: int, feedback: float
) -> np.ndarray:
    """Cascade output ``v`` of the phaser's loop, coefficient held per block.

    The loop's state ``s`` (one value per stage plus the fed-back sample) evolves as
    ``s' = M_k s + g_k x`` inside block ``k``. Split each block's output into the response to
    its own input from a zero state (all blocks at once, one sample step at a time) plus the
    response to the state it starts in, ``c_k M_k^j s_k``; only ``s_{k+1} = M_k^B s_k + e_k``
    is left sequential, one small matrix product per block instead of a Python loop per
    sample. Equal to the per-sample recursion up to rounding.

    Args:
        x: float64 ``(channels, samples)``.
        coefficient: float64 ``(blocks,)`` all-pass coefficient per block,
            ``blocks * block >= samples``.
        block: samples per block, a power of two.
        stages: number of all-pass stages.
        feedback: loop gain in (-1, 1).

    Returns:
        float64 ``(channels, samples)``.
    """
    channels, n = x.shape
    size = stages + 1
    state = np.zeros((channels, size))
    out = np.empty((channels, coefficient.size * block))
    padded = np.zeros_like(out)
    padded[:, :n] = x
    for first in range(0, coefficient.size, _PHASER_CHUNK_BLOCKS):
        a = coefficient[first : first + _PHASER_CHUNK_BLOCKS]
        nb = a.size
        span = slice(first * block, (first + nb) * block)
        # (B, channels, nb): sample j of every block, contiguous per step.
        xb = padded[:, span].reshape(channels, nb, block).transpose(2, 0, 1).copy()

        # Zero-state response of every block, and the state each block ends in.
        states = [np.zeros((channels, nb)) for _ in range(stages)]
        fed = np.zeros((channels, nb))
        forced = np.empty_like(xb)
        for j in range(block):
            fed = _allpass_step(a, feedback, states, fed, xb[j])
            forced[j] = fed
        ends = np.stack([*states, fed], axis=-1).transpose(1, 0, 2).copy()  # (nb, ch, size)

        # One step with no input from each unit state gives M_k (columns) and c_k (last row).
        eye = np.eye(size)
        probes = [np.repeat(eye[i][None], nb, axis=0) for i in range(stages)]
        fed_probe = np.repeat(eye[stages][None], nb, axis=0)
        fed_probe = _allpass_step(a[:, None], feedback, probes, fed_probe, np.zeros((nb, size)))
        step = np.stack([*probes, fed_probe], axis=1)  # (nb, size, size): M_k
        rows = np.empty((nb, block, size))  # c_k M_k^j
        rows[:, 0] = fed_probe
        for j in range(1, block):
            rows[:, j] = np.matmul(rows[:, j - 1, None], step)[:, 0]
        power = step
        for _ in range(int(math.log2(block))):
            power = np.matmul(power, power)
        power_t = power.transpose(0, 2, 1).copy()

        starts = np.empty((nb, channels, size))
        for k in range(nb):
            starts[k] = state
            state = state @ power_t[k] + ends[k]
        free = np.einsum("kjp,kcp->jck", rows, starts)
        out[:, span] = (forced + free).transpose(1, 2, 0).reshape(channels, -1)
    return out[:, :n]


TREMOLO = register(Tremolo())
VIBRATO = register(Vibrato())
CHORUS = register(Chorus())
FLANGER = register(Flanger())
PHASER = register(Phaser())
