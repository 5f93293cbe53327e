"""Built-in pitch effects: a phase-vocoder pitch shifter and an analogue-style octaver.

Like :mod:`fxclone.effects.builtin`, each effect processes every channel on its own, computes
in float64 and returns float32. Both are causal (the output at sample ``n`` depends on input
up to ``n`` only); the pitch shifter gets there by delaying its output by a fixed latency,
given by :func:`pitch_latency_samples`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from fractions import Fraction

import numpy as np
from scipy import signal

from fxclone.effects.dsp import clamp_cutoff
from fxclone.effects.filters import mix_dry_wet
from fxclone.effects.registry import Effect, Knob, register

# --------------------------------------------------------------------------------------------
# pitch

# The pitch ratio is realised as a fraction p/q (time-stretch by p/q, resample by q/p);
# denominators up to this bound put it within 0.1 cent of 2^(s/12) for every s in range
# (the worst case is next to a simple ratio such as 1/2). The resampler's cost per sample does
# not grow with the denominator: its polyphase filter has about 20 taps per phase.
_MAX_RATIO_DENOMINATOR = 20000
# Half-length of the resampler's filter, in output samples, is 10 * max(1, 1/ratio) <= 20;
# this covers it with room for rounding.
_RESAMPLER_MARGIN = 32
_PV_BLOCK_FRAMES = 128  # synthesis frames per block of the phase vocoder


def _pitch_fft_size(sample_rate: int) -> int:
    """Phase-vocoder frame: the power of two nearest 43 ms (2048 samples at 44.1/48 kHz).

    Long enough to resolve the partials of a low E (82 Hz) one bin apart.
    """
    return 2 ** round(math.log2(0.043 * sample_rate))


def pitch_latency_samples(sample_rate: int) -> int:
    """Delay of the ``pitch`` effect in samples, the same for every knob setting.

    The phase vocoder reads half a frame plus one hop ahead of the output (``N/2 + N/4``), a
    synthesis frame shifted down an octave spreads over ``N`` output samples (``N/2`` either
    side of its centre), and the resampler's filter adds a few more. Delaying the output by
    that sum makes the effect causal. ``N`` is :func:`_pitch_fft_size`: at 44.1 or 48 kHz
    the latency is 3616 samples (75 ms at 48 kHz).
    """
    n_fft = _pitch_fft_size(sample_rate)
    return n_fft // 2 + n_fft // 4 + n_fft + _RESAMPLER_MARGIN


def _ratio_fraction(semitones: float) -> Fraction:
    return Fraction(2.0 ** (semitones / 12.0)).limit_denominator(_MAX_RATIO_DENOMINATOR)


def _phase_vocoder_stretch(x: np.ndarray, stretch: float, n_fft: int) -> np.ndarray:
    """Time-stretch ``x`` by ``stretch`` keeping its pitch: a phase vocoder with phase locking.

    Hann frames of ``n_fft`` at hop ``n_fft/4`` are read at fractional positions ``k /
    stretch`` (magnitudes interpolated between neighbouring frames) and written at hop
    ``n_fft/4``. Each bin's phase advances by its measured instantaneous frequency times the
    hop, so a steady sinusoid keeps its exact frequency. Identity phase locking (Laroche &
    Dolson 1999) then gives every bin the phase of its nearest spectral peak plus its
    analysis phase offset from that peak, which keeps the partials' sidebands coherent and
    removes most of the plain phase vocoder's "phasiness".

    Args:
        x: float64 ``(samples,)``.
        stretch: output duration / input duration, in (0.4, 2.1).
        n_fft: frame length, a multiple of 4.

    Returns:
        float64 stretched signal; sample ``m`` corresponds to input time ``m / stretch``.
    """
    hop = n_fft // 4
    window = signal.get_window("hann", n_fft)
    padded = np.concatenate([np.zeros(n_fft // 2), x, np.zeros(n_fft + hop)])
    frames = np.lib.stride_tricks.sliding_window_view(padded, n_fft)[::hop]
    spectra = np.fft.rfft(frames * window, axis=1)
    magnitude, phase = np.abs(spectra), np.angle(spectra)
    bins = np.arange(spectra.shape[1])
    expected = 2.0 * math.pi * bins * hop / n_fft  # phase advance of a bin-centred sinusoid
    deviation = np.diff(phase, axis=0) - expected
    advance = expected + (deviation - 2.0 * math.pi * np.round(deviation / (2.0 * math.pi)))

    steps = np.arange(int((len(frames) - 2) * stretch) + 1) / stretch
    j_all = np.floor(steps).astype(int)
    near_all = np.round(steps).astype(int)
    nbins = len(bins)
    out = np.zeros((len(steps) + 3) * hop)
    carry = phase[0] - advance[0]  # so the first step lands on frame 0's analysis phase
    # Blocks of synthesis frames keep the (frames, bins) temporaries in cache; the phase
    # accumulator is carried across, so the result does not depend on the block size.
    for s0 in range(0, len(steps), _PV_BLOCK_FRAMES):
        j = j_all[s0 : s0 + _PV_BLOCK_FRAMES]
        frac = (steps[s0 : s0 + len(j)] - j)[:, None]
        mag = (1.0 - frac) * magnitude[j] + frac * magnitude[j + 1]
        # Each step advances every bin's phase by the advance measured at the previous step.
        previous = j_all[max(s0 - 1, 0) : s0 - 1 + len(j)] if s0 else np.r_[0, j[:-1]]
        acc = np.cumsum(advance[previous], axis=0) + carry
        carry = np.mod(acc[-1], 2.0 * math.pi)

        # Identity phase locking: every bin follows its nearest peak of this frame.
        is_peak = np.zeros(mag.shape, dtype=bool)
        is_peak[:, 1:-1] = (mag[:, 1:-1] > mag[:, :-2]) & (mag[:, 1:-1] >= mag[:, 2:])
        below = np.maximum.accumulate(np.where(is_peak, bins, -nbins), axis=1)
        above = np.where(is_peak, bins, 2 * nbins)[:, ::-1]
        above = np.minimum.accumulate(above, axis=1)[:, ::-1]
        peak = np.where(bins - below <= above - bins, below, above)
        peak = np.where((peak < 0) | (peak >= nbins), bins, peak)  # frames with no peak
        rows = np.arange(len(j))[:, None]
        near = phase[near_all[s0 : s0 + len(j)]]
        locked = acc[rows, peak] + near - near[rows, peak]

        out_frames = np.fft.irfft(mag * np.exp(1j * locked), n=n_fft, axis=1) * window
        for b in range(4):  # overlap-add: frame k covers hops k..k+3
            at = (s0 + b) * hop
            out[at : at + len(j) * hop] += out_frames[:, b * hop : (b + 1) * hop].ravel()
    # Hann^2 at 75 % overlap sums to 1.5; the first half frame is the leading pad.
    return out[n_fft // 2 :] / 1.5


class Pitch(Effect):
    """A pitch shifter that keeps the duration: phase-vocoder time stretch, then resampling.

    The signal is time-stretched by the pitch ratio ``2^(semitones/12)`` with
    :func:`_phase_vocoder_stretch` and resampled back to its length (polyphase, Kaiser
    window), which scales every frequency by the ratio; the ratio is a fraction within
    0.1 cent of exact. The shifted voice and the dry signal are crossfaded by ``mix``.

    Latency: the vocoder looks ahead, so the whole output (dry part included, so the two
    line up) is delayed by :func:`pitch_latency_samples` (3616 samples, 75 ms, at 48 kHz),
    which makes the effect causal; output length equals input length, so the last 75 ms
    of input are not heard. Transients are smeared over about one frame (43 ms), the usual
    phase-vocoder sound. At 0 semitones the shifted voice is the delayed dry signal.
    """

    name = "pitch"
    description = "pitch shifter (phase vocoder + resampling), duration kept, 75 ms latency"
    knobs = (
        Knob("semitones", "st", -12.0, 12.0, 7.0, "pitch shift in semitones"),
        Knob("mix", "%", 0.0, 100.0, 100.0, "shifted voice share (0 = dry only)"),
    )

    def process(self, dry: np.ndarray, sample_rate: int, knobs: Mapping[str, float]) -> np.ndarray:
        n = dry.shape[1]
        delay = pitch_latency_samples(sample_rate)
        x = dry.astype(np.float64)
        if knobs["semitones"] == 0.0:
            shifted = x
        else:
            ratio = _ratio_fraction(knobs["semitones"])
            n_fft = _pitch_fft_size(sample_rate)
            shifted = np.stack(
                [
                    _fit_length(
                        signal.resample_poly(
                            _phase_vocoder_stretch(ch, float(ratio), n_fft),
                            ratio.denominator,
                            ratio.numerator,
                        ),
                        n,
                    )
                    for ch in x
                ]
            )
        out = mix_dry_wet(x, shifted, knobs["mix"])
        delayed = np.zeros_like(out)
        delayed[:, delay:] = out[:, : max(n - delay, 0)]
        return delayed.astype(np.float32)


def _fit_length(x: np.ndarray, n: int) -> np.ndarray:
    """``x`` cut or zero-padded to ``n`` samples."""
    return x[:n] if x.size >= n else np.concatenate([x, np.zeros(n - x.size)])


# --------------------------------------------------------------------------------------------
# octave

_TRACK_HPF_HZ = 40.0  # below the lowest guitar/bass fundamental we track (bass E1 = 41 Hz)
_TRACK_LPF_HZ = 600.0  # keeps the fundamental, removes the harmonics that cause false flips
_TRACK_HYSTERESIS = 10.0 ** (-50.0 / 20.0)  # Schmitt trigger: +-0.003 (-50 dBFS)
_UP_DC_BLOCK_HZ = 20.0  # coupling capacitor after the rectifier


def _flip_flop(v: np.ndarray, hysteresis: float) -> np.ndarray:
    """Frequency divider: +-1, toggling at every rising crossing of ``v`` through
    ``+hysteresis`` (a Schmitt trigger, so noise near zero cannot toggle it twice).

    Args:
        v: float64 ``(samples,)``.
        hysteresis: the trigger's thresholds are ``+hysteresis`` and ``-hysteresis``.

    Returns:
        float64 ``(samples,)`` of +1/-1, starting at +1.
    """
    level = np.where(v > hysteresis, 1, np.where(v < -hysteresis, -1, 0))
    # The comparator holds its last decided level between the thresholds.
    last = np.maximum.accumulate(np.where(level != 0, np.arange(v.size), 0))
    held = level[last]
    held[held == 0] = -1
    rising = np.zeros(v.size, dtype=np.int64)
    rising[1:] = (held[1:] == 1) & (held[:-1] == -1)
    return 1.0 - 2.0 * (np.cumsum(rising) % 2)


class Octave(Effect):
    """An analogue-style octaver: octave down by flip-flop division, octave up by rectifying.

    Down (as in a Boss OC-2): the input is band-limited to 40-600 Hz (Butterworth, 1st-order
    high-pass, 2nd-order low-pass) so that only the fundamental crosses zero; a Schmitt
    trigger (+-0.003, -50 dBFS) and a flip-flop toggle at every other rising crossing, and the
    flip-flop's +-1 switches the polarity of that band-limited signal. The polarity flips
    where the signal is zero, so the product is continuous: a sine at f becomes a wave of
    period 2/f whose strongest component is f/2 (0.85 of the input amplitude) with no
    component at f. It follows the playing dynamics and, like the pedal, tracks single notes
    only; below -50 dBFS it stops dividing and passes the band-limited signal.
    Up (as in an Octavia): full-wave rectification ``|x|`` with its DC removed by a 20 Hz
    high-pass; a sine at f gives 2f (0.42 of the input amplitude) and its even harmonics,
    nothing at f. The three voices are summed with their levels. Causal, no latency.
    """

    name = "octave"
    description = "octaver: flip-flop octave down, rectifier octave up, dry blend"
    knobs = (
        Knob("down", "%", 0.0, 100.0, 40.0, "octave-down level"),
        Knob("up", "%", 0.0, 100.0, 25.0, "octave-up level"),
        Knob("dry", "%", 0.0, 100.0, 40.0, "dry level"),
    )

    def process(self, dry: np.ndarray, sample_rate: int, knobs: Mapping[str, float]) -> np.ndarray:
        x = dry.astype(np.float64)
        track = np.vstack(
            [
                signal.butter(1, _TRACK_HPF_HZ, "highpass", fs=sample_rate, output="sos"),
                signal.butter(
                    2,
                    clamp_cutoff(_TRACK_LPF_HZ, sample_rate),
                    "lowpass",
                    fs=sample_rate,
                    output="sos",
                ),
            ]
        )
        tracked = signal.sosfilt(track, x, axis=-1)
        down = np.stack([_flip_flop(ch, _TRACK_HYSTERESIS) for ch in tracked]) * tracked
        dc_block = signal.butter(1, _UP_DC_BLOCK_HZ, "highpass", fs=sample_rate, output="sos")
        up = signal.sosfilt(dc_block, np.abs(x), axis=-1)
        out = knobs["dry"] * x + knobs["down"] * down + knobs["up"] * up
        return (out / 100.0).astype(np.float32)


PITCH = register(Pitch())
OCTAVE = register(Octave())
