"""What the time-based effects share: feedback loops computed block by block.

The effects are in :mod:`fxclone.effects.echoes` (digital delay, tape echo) and
:mod:`fxclone.effects.reverbs` (FDN reverb, spring reverb).

Every effect here is a feedback loop around a delay. A loop whose shortest delay is ``D``
samples is computed in blocks of at most ``D`` samples: each block reads only output that
earlier blocks have finished, so whole blocks are vectorised (numpy slices, ``scipy`` filters
with carried state) and no Python code runs per sample. All channels go through each block
together but never mix. Output is float64 internally, float32 out, cut to the input length.

Decay laws are exact by construction and checked by ``tests/test_effects_timebased.py``:
a loop of ``T`` seconds with gain ``g`` per pass loses ``-20 log10(g)`` dB every ``T``, so
``g = 10 ** (-3 T / RT60)`` makes the level fall 60 dB in ``RT60`` seconds.
"""

from __future__ import annotations

import numpy as np

# Filters are kept this far below Nyquist, where the bilinear transform still behaves.
_MAX_CUTOFF_FRACTION = 0.45


def _cutoff_hz(cutoff_hz: float, sample_rate: int) -> float:
    """``cutoff_hz`` clamped below Nyquist (a cutoff above it is void)."""
    return min(cutoff_hz, _MAX_CUTOFF_FRACTION * sample_rate)


def _crossfade(dry: np.ndarray, wet: np.ndarray, mix_percent: float) -> np.ndarray:
    """``(1 - m) * dry + m * wet`` with ``m = mix_percent / 100``, as float32."""
    m = mix_percent / 100.0
    return ((1.0 - m) * dry + m * wet).astype(np.float32)


def _soft_clip(x: np.ndarray, gain: float) -> np.ndarray:
    """``tanh(gain * x) / gain``: unity gain for small signals, saturating near ``1 / gain``.

    Dividing by ``gain`` keeps quiet material at the same level whatever the drive, so a drive
    knob changes only how early the loop saturates, never the small-signal decay law.
    """
    return np.tanh(gain * x) / gain


def _delayed_block(buffer: np.ndarray, start: int, delay: int, length: int) -> np.ndarray:
    """``buffer[:, start - delay : start - delay + length]`` with zeros before sample 0.

    Args:
        buffer: ``(channels, samples)`` history of a line's input.
        start: first output sample of the block.
        delay: whole samples, ``>= length`` so only finished samples are read.
        length: block length in samples.
    """
    lo = start - delay
    if lo >= 0:
        return buffer[:, lo : lo + length]
    out = np.zeros((buffer.shape[0], length))
    if lo + length > 0:
        out[:, -lo:] = buffer[:, : lo + length]
    return out
