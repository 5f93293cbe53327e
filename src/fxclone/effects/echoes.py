"""Built-in echoes: a digital delay with a tone filter in its loop, and a tape echo with
saturating feedback, band-limited repeats and wow and flutter (see
:mod:`fxclone.effects.timebased` for how the loops are computed)."""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
from scipy import signal

from fxclone.effects.registry import Effect, Knob, register
from fxclone.effects.timebased import _crossfade, _cutoff_hz, _delayed_block, _soft_clip


class Delay(Effect):
    """A digital delay whose repeats pass through a tone low-pass on every trip.

    Flow: ``line_in = dry + feedback * lowpass(line_out)``; ``line_out = line_in`` delayed by
    ``time``; ``out = (1 - mix) dry + mix line_out``. The tone filter is a first-order
    Butterworth low-pass (unity gain at DC, -3 dB at ``tone``), so each repeat is the previous
    one times ``feedback * |H(f)|``: exactly ``feedback`` per repeat (``20 log10 feedback``
    dB) for content well below ``tone``, and ``feedback / sqrt 2`` at ``tone``. The first
    repeat is the dry signal exactly, ``time`` later (rounded to a whole sample).
    """

    name = "delay"
    description = "digital delay: feedback through a tone low-pass, dry/wet mix"
    knobs = (
        Knob("time", "ms", 1.0, 2000.0, 350.0, "delay between repeats", log_scale=True),
        Knob("feedback", "%", 0.0, 95.0, 35.0, "level of each repeat relative to the last"),
        Knob("tone", "Hz", 500.0, 16000.0, 6000.0, "low-pass in the feedback path", log_scale=True),
        Knob("mix", "%", 0.0, 100.0, 30.0, "wet share of the output"),
    )

    def process(self, dry: np.ndarray, sample_rate: int, knobs: Mapping[str, float]) -> np.ndarray:
        x = dry.astype(np.float64)
        channels, n = x.shape
        delay = max(1, round(knobs["time"] * sample_rate / 1000.0))
        feedback = knobs["feedback"] / 100.0
        b, a = signal.butter(1, _cutoff_hz(knobs["tone"], sample_rate), fs=sample_rate)
        zi = np.zeros((channels, 1))
        line_in = np.empty_like(x)
        line_out = np.zeros_like(x)
        for start in range(0, n, delay):
            stop = min(start + delay, n)
            line_out[:, start:stop] = _delayed_block(line_in, start, delay, stop - start)
            toned, zi = signal.lfilter(b, a, line_out[:, start:stop], axis=-1, zi=zi)
            line_in[:, start:stop] = x[:, start:stop] + feedback * toned
        return _crossfade(x, line_out, knobs["mix"])


# --------------------------------------------------------------------------------------------
# tape echo


# Wow (capstan eccentricity, ~0.5 Hz) and flutter (pinch roller and motor, 6-10 Hz) as peak
# deviations of the delay time at wow_flutter = 100 %: pitch deviations of about 0.3 % each.
_WOW_HZ, _WOW_MS = 0.5, 1.0
_FLUTTER = ((6.7, 0.08), (9.3, 0.05))  # (Hz, ms)
_TAPE_SEED = 1957  # fixed phases: the same knobs give the same wobble on every render
_TAPE_HPF_HZ = 100.0  # head bump / coupling: bass thins on every pass
_TAPE_LPF_HZ = 4000.0  # head gap and tape speed loss


class TapeEcho(Effect):
    """A tape echo: saturating record head, band-limited playback, wow and flutter.

    Flow: ``record = tanh(G (dry + feedback * playback)) / G`` with ``G = 10^(drive/20)``;
    ``playback`` = the record signal read ``time + wobble(t)`` earlier (linear interpolation
    between samples), then a 100 Hz 2nd-order high-pass and a 4 kHz 2nd-order low-pass;
    ``out = (1 - mix) dry + mix playback``. Quiet repeats decay by ``feedback`` per pass in the
    pass band; loud ones are squashed by the record head's tanh first, so they fade faster.
    ``wobble`` is a 0.5 Hz wow of +-1 ms plus 6.7 and 9.3 Hz flutter of +-0.08 and +-0.05 ms,
    scaled by ``wow_flutter`` and with fixed phases (deterministic); at 0 % the echo is
    exactly ``time`` late.
    """

    name = "tape_echo"
    description = "tape echo: saturating feedback, band-limited repeats, wow and flutter"
    knobs = (
        Knob("time", "ms", 20.0, 1000.0, 300.0, "delay between repeats", log_scale=True),
        Knob("feedback", "%", 0.0, 95.0, 40.0, "small-signal level of each repeat"),
        Knob("drive", "dB", 0.0, 24.0, 6.0, "record level: higher saturates repeats sooner"),
        Knob("wow_flutter", "%", 0.0, 100.0, 25.0, "depth of the tape-speed wobble"),
        Knob("mix", "%", 0.0, 100.0, 30.0, "wet share of the output"),
    )

    def process(self, dry: np.ndarray, sample_rate: int, knobs: Mapping[str, float]) -> np.ndarray:
        x = dry.astype(np.float64)
        channels, n = x.shape
        delay = _tape_delay_samples(n, sample_rate, knobs["time"], knobs["wow_flutter"])
        pad = int(math.ceil(delay.max())) + 2  # zeros before sample 0 for the earliest reads
        # Interpolation reads samples floor(pos) and floor(pos) + 1, so a block may be one
        # sample shorter than the shortest delay.
        block = max(1, int(math.floor(delay.min())) - 1)
        loop_sos = np.vstack(
            [
                signal.butter(2, _TAPE_HPF_HZ, "highpass", fs=sample_rate, output="sos"),
                signal.butter(
                    2, _cutoff_hz(_TAPE_LPF_HZ, sample_rate), fs=sample_rate, output="sos"
                ),
            ]
        )
        zi = np.zeros((loop_sos.shape[0], channels, 2))
        gain = 10.0 ** (knobs["drive"] / 20.0)
        feedback = knobs["feedback"] / 100.0
        record = np.zeros((channels, pad + n))
        playback = np.empty_like(x)
        positions = np.arange(n) + pad - delay
        for start in range(0, n, block):
            stop = min(start + block, n)
            pos = positions[start:stop]
            i = np.floor(pos).astype(np.int64)
            frac = pos - i
            heard = (1.0 - frac) * record[:, i] + frac * record[:, i + 1]
            heard, zi = signal.sosfilt(loop_sos, heard, axis=-1, zi=zi)
            playback[:, start:stop] = heard
            record[:, pad + start : pad + stop] = _soft_clip(
                x[:, start:stop] + feedback * heard, gain
            )
        return _crossfade(x, playback, knobs["mix"])


def _tape_delay_samples(
    n: int, sample_rate: int, time_ms: float, depth_percent: float
) -> np.ndarray:
    """Delay in (fractional) samples at each of ``n`` output samples: ``time`` plus wobble."""
    t = np.arange(n) / sample_rate
    phases = np.random.default_rng(_TAPE_SEED).uniform(0.0, 2.0 * math.pi, 1 + len(_FLUTTER))
    wobble_ms = _WOW_MS * np.sin(2.0 * math.pi * _WOW_HZ * t + phases[0])
    for (freq_hz, depth_ms), phase in zip(_FLUTTER, phases[1:], strict=True):
        wobble_ms += depth_ms * np.sin(2.0 * math.pi * freq_hz * t + phase)
    return (time_ms + depth_percent / 100.0 * wobble_ms) * sample_rate / 1000.0


# --------------------------------------------------------------------------------------------
# FDN reverb


DELAY = register(Delay())
TAPE_ECHO = register(TapeEcho())
