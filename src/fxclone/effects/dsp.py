"""Shared DSP pieces of the built-in effects: 4x oversampling, cutoff clamping, dB."""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np
from scipy import signal

Shaper = Callable[[np.ndarray], np.ndarray]
OVERSAMPLE = 4

# Filters are kept this far below Nyquist, where the bilinear transform still behaves.
MAX_CUTOFF_FRACTION = 0.45


def clamp_cutoff(
    cutoff_hz: float, sample_rate: int, fraction: float = MAX_CUTOFF_FRACTION
) -> float:
    """``cutoff_hz`` clamped to ``fraction`` of the sample rate (a cutoff above Nyquist is void)."""
    return min(cutoff_hz, fraction * sample_rate)


def db_to_gain(db: float) -> float:
    """A level in dB as a linear gain."""
    return 10.0 ** (db / 20.0)


@functools.lru_cache(maxsize=1)
def oversampling_fir() -> np.ndarray:
    """Minimum-phase anti-imaging / anti-aliasing FIR at the oversampled rate.

    96 taps. In units of the base sample rate: within 0.1 dB up to 0.36 (17 kHz at 48 kHz),
    -1 dB at 0.40, -18.6 dB at Nyquist and below -90 dB from 0.58, so the decimation folds
    back only what lies between 0.5 and 0.58, onto 0.42..0.5 (above 20 kHz at 48 kHz).
    Minimum phase keeps the effect causal with a group delay of about 2.5 base-rate samples
    (per pass, low frequencies), instead of the pre-ringing a linear-phase resampler adds.

    Returns:
        float64 ``(96,)`` taps with unit DC gain.
    """
    linear = signal.firwin(96, 0.9 / OVERSAMPLE, window=("kaiser", 10.0))
    # minimum_phase halves the log-magnitude, so feed it the squared response (h * h).
    return signal.minimum_phase(np.convolve(linear, linear), method="homomorphic")


def oversampled(x: np.ndarray, shaper: Shaper, block_samples: int = 16384) -> np.ndarray:
    """Run ``shaper`` at 4x the sample rate, block by block, and come back to the base rate.

    Resampling uses :func:`oversampling_fir` (minimum phase, about 2.5 base-rate samples of
    delay). Blocks keep memory flat (a whole file at 4x in float64 is 32 bytes per input
    sample per array). ``shaper`` sees the blocks in order, so it may hold state; the filters'
    histories are carried between blocks, so the result does not depend on ``block_samples``.

    Args:
        x: float64 ``(channels, samples)`` at the base rate.
        shaper: maps float64 ``(channels, n)`` at the 4x rate to the same shape.
        block_samples: base-rate samples per block.

    Returns:
        float64 ``(channels, samples)`` at the base rate.
    """
    h = oversampling_fir()
    up_hist = -(-(h.size - 1) // OVERSAMPLE)  # base-rate samples the upsampler looks back
    down_hist = up_hist * OVERSAMPLE  # a multiple of 4 keeps the decimation phase
    channels, n = x.shape
    x_hist = np.zeros((channels, up_hist))
    y_hist = np.zeros((channels, down_hist))
    out = np.empty_like(x)
    for start in range(0, n, block_samples):
        part = np.concatenate([x_hist, x[:, start : start + block_samples]], axis=1)
        count = part.shape[1] - up_hist
        up = signal.upfirdn(OVERSAMPLE * h, part, up=OVERSAMPLE, axis=1)
        up = up[:, down_hist : down_hist + count * OVERSAMPLE]
        shaped = np.concatenate([y_hist, shaper(up)], axis=1)
        down = signal.upfirdn(h, shaped, down=OVERSAMPLE, axis=1)
        out[:, start : start + count] = down[:, up_hist : up_hist + count]
        x_hist, y_hist = part[:, -up_hist:], shaped[:, -down_hist:]
    return out
