"""Built-in effects: low- and high-pass, parametric EQ and bitcrusher (the pitch shifter and
octaver are in :mod:`fxclone.effects.pitch`).

Like :mod:`fxclone.effects.builtin`, each effect processes every channel on its own, computes
in float64 and returns float32, and is causal.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
from scipy import signal

from fxclone.effects.dsp import clamp_cutoff
from fxclone.effects.registry import Effect, Knob, register


def mix_dry_wet(dry: np.ndarray, wet: np.ndarray, mix_percent: float) -> np.ndarray:
    """Linear dry/wet crossfade; ``mix_percent`` 100 is all wet."""
    w = mix_percent / 100.0
    return (1.0 - w) * dry + w * wet


# --------------------------------------------------------------------------------------------
# highpass


class _Butterworth(Effect):
    """A Butterworth filter (bilinear transform, pre-warped): -3 dB exactly at ``cutoff``.

    The slope far past the cutoff is 6 dB per octave per order; the passband is flat and never
    above 0 dB. A cutoff at or above 0.49 of the sample rate is clamped there. Causal.
    """

    btype = ""

    def process(self, dry: np.ndarray, sample_rate: int, knobs: Mapping[str, float]) -> np.ndarray:
        corner = clamp_cutoff(knobs["cutoff"], sample_rate, fraction=0.49)
        sos = signal.butter(round(knobs["order"]), corner, self.btype, fs=sample_rate, output="sos")
        return signal.sosfilt(sos, dry.astype(np.float64), axis=-1).astype(np.float32)


def _butterworth_knobs(default_hz: float) -> tuple[Knob, ...]:
    return (
        Knob("cutoff", "Hz", 20.0, 20000.0, default_hz, "-3 dB frequency", log_scale=True),
        Knob("order", "", 1.0, 8.0, 2.0, "filter order (whole number)", integer=True),
    )


class Lowpass(_Butterworth):
    """Butterworth low-pass; 1 kHz by default."""

    name = "lowpass"
    description = "Butterworth low-pass filter, 6 dB/octave per order"
    btype = "lowpass"
    knobs = _butterworth_knobs(1000.0)


class Highpass(_Butterworth):
    """Butterworth high-pass; 440 Hz by default (the KTH seed's filter task)."""

    name = "highpass"
    description = "Butterworth high-pass filter, 6 dB/octave per order"
    btype = "highpass"
    knobs = _butterworth_knobs(440.0)


# --------------------------------------------------------------------------------------------
# eq


def rbj_biquad(kind: str, freq_hz: float, gain_db: float, q: float, sample_rate: int) -> np.ndarray:
    """One RBJ Audio-EQ-Cookbook biquad as a normalised sos row.

    Args:
        kind: ``"lowshelf"``, ``"peak"`` or ``"highshelf"``.
        freq_hz: centre (peak) or midpoint (shelves) frequency in Hz, below Nyquist.
        gain_db: gain at the centre (peak) or on the shelf, in dB.
        q: bandwidth of the peak; for the shelves, the slope ``S`` (1 = steepest without a
            bump, which is what the EQ uses).
        sample_rate: Hz.

    Returns:
        float64 ``(1, 6)`` ``[b0, b1, b2, 1, a1, a2]``.
    """
    a = 10.0 ** (gain_db / 40.0)
    w0 = 2.0 * math.pi * freq_hz / sample_rate
    cos_w, sin_w = math.cos(w0), math.sin(w0)
    if kind == "peak":
        alpha = sin_w / (2.0 * q)
        b = [1.0 + alpha * a, -2.0 * cos_w, 1.0 - alpha * a]
        den = [1.0 + alpha / a, -2.0 * cos_w, 1.0 - alpha / a]
    elif kind in ("lowshelf", "highshelf"):
        alpha = sin_w / 2.0 * math.sqrt((a + 1.0 / a) * (1.0 / q - 1.0) + 2.0)
        k = 2.0 * math.sqrt(a) * alpha
        # The high shelf is the low shelf with cos(w0) negated and the odd terms flipped.
        sign = 1.0 if kind == "lowshelf" else -1.0
        c = sign * cos_w
        b = [
            a * ((a + 1.0) - (a - 1.0) * c + k),
            sign * 2.0 * a * ((a - 1.0) - (a + 1.0) * c),
            a * ((a + 1.0) - (a - 1.0) * c - k),
        ]
        den = [
            (a + 1.0) + (a - 1.0) * c + k,
            -sign * 2.0 * ((a - 1.0) + (a + 1.0) * c),
            (a + 1.0) + (a - 1.0) * c - k,
        ]
    else:
        raise ValueError(f"biquad kind {kind!r} is not lowshelf, peak or highshelf")
    return np.array([[*(x / den[0] for x in b), 1.0, den[1] / den[0], den[2] / den[0]]])


class Eq(Effect):
    """A three-band parametric EQ: low shelf -> peak -> high shelf, RBJ-cookbook biquads.

    The shelves use slope S = 1 (12 dB/octave transition, no overshoot): their gain is
    ``low_gain`` at DC and ``high_gain`` at Nyquist, and half of it (in dB) at ``low_freq`` /
    ``high_freq``. The peak's gain at ``mid_freq`` is exactly ``mid_gain``; ``mid_q`` sets its
    width (Q = 1.41 is one octave between the half-gain points). All gains 0 is an exact
    bypass. Frequencies at or above 0.45 of the sample rate are clamped there. Causal; the
    default is a 6 dB mid scoop, so full-scale input stays below full scale.
    """

    name = "eq"
    description = "parametric EQ: low shelf, peak, high shelf (RBJ biquads)"
    knobs = (
        Knob("low_freq", "Hz", 20.0, 2000.0, 100.0, "low shelf midpoint", log_scale=True),
        Knob("low_gain", "dB", -24.0, 24.0, 0.0, "low shelf gain"),
        Knob("mid_freq", "Hz", 20.0, 20000.0, 1000.0, "peak centre", log_scale=True),
        Knob("mid_gain", "dB", -24.0, 24.0, -6.0, "gain at the peak centre"),
        Knob("mid_q", "", 0.1, 18.0, 1.0, "peak Q: centre / bandwidth", log_scale=True),
        Knob("high_freq", "Hz", 500.0, 20000.0, 8000.0, "high shelf midpoint", log_scale=True),
        Knob("high_gain", "dB", -24.0, 24.0, 0.0, "high shelf gain"),
    )

    def process(self, dry: np.ndarray, sample_rate: int, knobs: Mapping[str, float]) -> np.ndarray:
        sos = np.vstack(
            [
                rbj_biquad(
                    "lowshelf",
                    clamp_cutoff(knobs["low_freq"], sample_rate),
                    knobs["low_gain"],
                    1.0,
                    sample_rate,
                ),
                rbj_biquad(
                    "peak",
                    clamp_cutoff(knobs["mid_freq"], sample_rate),
                    knobs["mid_gain"],
                    knobs["mid_q"],
                    sample_rate,
                ),
                rbj_biquad(
                    "highshelf",
                    clamp_cutoff(knobs["high_freq"], sample_rate),
                    knobs["high_gain"],
                    1.0,
                    sample_rate,
                ),
            ]
        )
        return signal.sosfilt(sos, dry.astype(np.float64), axis=-1).astype(np.float32)


# --------------------------------------------------------------------------------------------
# bitcrusher


def quantise(x: np.ndarray, bits: int) -> np.ndarray:
    """Symmetric mid-rise quantiser with ``2**bits`` levels ``+-(k + 1/2) * 2 / 2**bits``.

    Inputs beyond +-1 clip to the outermost level (``+-(1 - 2**-bits)``, below full scale);
    exact zeros stay zero, so digital silence is not turned into a DC offset. At 1 bit the
    output is ``+-0.5``: a square-wave fuzz.

    Args:
        x: float64 audio, any shape.
        bits: 1..16.

    Returns:
        float64, the shape of ``x``.
    """
    half_levels = 2 ** (bits - 1)
    step = 1.0 / half_levels
    k = np.minimum(np.floor(np.abs(x) / step), half_levels - 1)
    return np.sign(x) * (k + 0.5) * step


class Bitcrusher(Effect):
    """Sample-and-hold rate reduction, then bit-depth reduction, blended with the dry signal.

    Every ``downsample``-th sample is held for ``downsample`` samples (no anti-alias filter:
    the aliasing is the sound), then quantised by :func:`quantise` to ``2**bits`` levels.
    Causal (a held sample is never used before it arrives), no latency. Full scale maps to
    ``1 - 2**-bits`` at most.
    """

    name = "bitcrusher"
    description = "bitcrusher: sample-and-hold downsampling and bit-depth quantisation"
    knobs = (
        Knob("bits", "bits", 1.0, 16.0, 6.0, "bit depth: 2^bits output levels", integer=True),
        Knob("downsample", "x", 1.0, 32.0, 4.0, "hold each sample this many", integer=True),
        Knob("mix", "%", 0.0, 100.0, 100.0, "crushed share (0 = dry only)"),
    )

    def process(self, dry: np.ndarray, sample_rate: int, knobs: Mapping[str, float]) -> np.ndarray:
        x = dry.astype(np.float64)
        hold = round(knobs["downsample"])
        held = x[:, (np.arange(x.shape[1]) // hold) * hold]
        crushed = quantise(held, round(knobs["bits"]))
        return mix_dry_wet(x, crushed, knobs["mix"]).astype(np.float32)


LOWPASS = register(Lowpass())
HIGHPASS = register(Highpass())
EQ = register(Eq())
BITCRUSHER = register(Bitcrusher())
