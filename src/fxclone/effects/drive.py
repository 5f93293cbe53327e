"""Built-in drive effects: ``overdrive``, ``fuzz`` and ``ampcab`` (registered on import).

Like :mod:`fxclone.effects.builtin`, every effect here is causal, deterministic, processes
each channel alone in float64 and returns float32. Each nonlinear stage runs at 4x the
sample rate between the minimum-phase resampling filters of the ``distortion`` effect, with
the filters that sit between nonlinear stages applied at the oversampled rate too.

The guitar cabinet of ``ampcab`` is a minimum-phase FIR that the package designs from a
documented magnitude curve (:func:`cabinet_response`, :func:`cabinet_ir`): nothing is
downloaded and the same sample rate always gives the same taps.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from typing import NamedTuple

import numpy as np
from scipy import fft as sp_fft
from scipy import signal

from fxclone.effects.dsp import OVERSAMPLE, clamp_cutoff, db_to_gain, oversampled
from fxclone.effects.registry import Effect, Knob, register


class _Cascade:
    """Biquads applied block after block with their state carried over (float64)."""

    def __init__(self, sos: np.ndarray, channels: int) -> None:
        self.sos = sos
        self.state = np.zeros((sos.shape[0], channels, 2))

    def __call__(self, x: np.ndarray) -> np.ndarray:
        y, self.state = signal.sosfilt(self.sos, x, axis=-1, zi=self.state)
        return y


def _soft_clip(u: np.ndarray) -> np.ndarray:
    """``u / sqrt(1 + u^2)``: slope 1 at 0, limits +-1, a soft knee like a silicon diode pair."""
    return u / np.sqrt(1.0 + u * u)


def _hard_clip(u: np.ndarray) -> np.ndarray:
    """``u / (1 + u^4)^(1/4)``: slope 1 at 0, limits +-1, a sharper knee than :func:`_soft_clip`."""
    u2 = u * u
    return u / np.sqrt(np.sqrt(1.0 + u2 * u2))


def _butter(order: int, cutoff_hz: float, kind: str, sample_rate: float) -> np.ndarray:
    return signal.butter(order, cutoff_hz, kind, fs=sample_rate, output="sos")


# --------------------------------------------------------------------------------------------
# overdrive

_TS_HIGHPASS_HZ = 720.0  # drive stage: 4.7 kOhm + 47 nF to ground, so bass is not clipped
_TS_LOWPASS_HZ = 5600.0  # drive stage: the capacitor across the feedback resistors
_TS_DIODE_LEVEL = 0.5  # the diodes' forward voltage relative to a full-scale input
_TS_INPUT_HPF_HZ = 20.0  # input coupling capacitor


class Overdrive(Effect):
    """A Tube-Screamer-like overdrive: clean signal plus a clipped, mid-humped copy of it.

    The TS808's op-amp has the diode pair in its feedback loop, so its output is the input
    plus a clipped version of the band it amplifies. Here: 20 Hz input high-pass, then at 4x
    ``y = x + 0.5 * c(drive * bp(x))`` where ``bp`` is a first-order high-pass at 720 Hz and
    a first-order low-pass at 5.6 kHz (the mid hump) and ``c(u) = u / sqrt(1 + u^2)`` is a
    symmetric soft clipper (odd harmonics only); then a 2nd-order Butterworth low-pass at
    ``tone`` and ``level``. Bass passes on the clean path and is never clipped, which keeps
    it tight. The clean path keeps a full-scale input's peaks, so the default ``level`` is
    -9 dB: full-scale sines then peak near 0.5 and a 50 Hz full-scale square near 0.8.
    """

    name = "overdrive"
    description = "Tube-Screamer-like overdrive: mid-hump, soft diode clipping mixed with clean"
    knobs = (
        Knob("drive", "dB", 0.0, 40.0, 24.0, "gain of the mid band into the diodes"),
        Knob("tone", "Hz", 500.0, 8000.0, 2000.0, "output low-pass cutoff", log_scale=True),
        Knob("level", "dB", -24.0, 6.0, -9.0, "output level"),
    )

    def process(self, dry: np.ndarray, sample_rate: int, knobs: Mapping[str, float]) -> np.ndarray:
        channels = dry.shape[0]
        fast = sample_rate * OVERSAMPLE
        hump = _Cascade(
            np.vstack(
                [
                    _butter(1, _TS_HIGHPASS_HZ, "highpass", fast),
                    _butter(1, clamp_cutoff(_TS_LOWPASS_HZ, sample_rate), "lowpass", fast),
                ]
            ),
            channels,
        )
        drive = db_to_gain(knobs["drive"])

        def feedback_clipper(u: np.ndarray) -> np.ndarray:
            return u + _TS_DIODE_LEVEL * _soft_clip(drive * hump(u))

        x = signal.sosfilt(
            _butter(1, _TS_INPUT_HPF_HZ, "highpass", sample_rate), dry.astype(np.float64), axis=-1
        )
        y = oversampled(x, feedback_clipper)
        tone = _butter(2, clamp_cutoff(knobs["tone"], sample_rate), "lowpass", sample_rate)
        y = signal.sosfilt(tone, y, axis=-1) * db_to_gain(knobs["level"])
        return y.astype(np.float32)


# --------------------------------------------------------------------------------------------
# fuzz

_FUZZ_INPUT_HPF_HZ = 80.0  # small input coupling capacitor: keeps low strings from farting out
_FUZZ_DC_BLOCK_HZ = 20.0  # removes the DC the asymmetric stage makes
_GATE_POSITIVE = 0.8  # dead band above 0 at full bias, in units of the clip level
_GATE_NEGATIVE = 0.48  # dead band below 0 at full bias: the starved side opens sooner
_STARVED_CLIP = 0.6  # at full bias the negative half clips at 1 - 0.6 = 0.4


def _fuzz_stage(u: np.ndarray, bias: float) -> np.ndarray:
    """A starved transistor stage: a dead band, then hard-ish clipping with uneven limits.

    ``bias`` in [0, 1] moves the operating point towards cutoff. The stage passes nothing
    while ``u`` stays inside ``[-0.48 bias, 0.8 bias]`` (the gate: quiet notes sputter out),
    passes ``u`` minus that edge outside it, and clips the result at +1 and at
    ``-(1 - 0.6 bias)``. At ``bias = 0`` it is the symmetric clipper :func:`_hard_clip`.
    """
    edge = np.where(u >= 0.0, _GATE_POSITIVE * bias, _GATE_NEGATIVE * bias)
    open_ = np.sign(u) * np.maximum(np.abs(u) - edge, 0.0)
    limit = np.where(open_ >= 0.0, 1.0, 1.0 - _STARVED_CLIP * bias)
    return limit * _hard_clip(open_ / limit)


class Fuzz(Effect):
    """A Fuzz-Face / Big-Muff-style fuzz: high gain into a starved, asymmetric, gating stage.

    Chain: 80 Hz input high-pass -> ``fuzz`` gain -> :func:`_fuzz_stage` at 4x (dead band and
    uneven clip limits set by ``bias``) -> 20 Hz DC block -> 2nd-order Butterworth low-pass
    at ``tone`` -> ``level``. Raising ``bias`` adds even harmonics (the two halves clip at
    different levels and open at different thresholds) and gates quiet signals: at full bias
    and the default 40 dB gain, an input below about -46 dBFS gives no output at all.
    """

    name = "fuzz"
    description = "asymmetric fuzz with a bias knob: even harmonics, gating sputter"
    knobs = (
        Knob("fuzz", "dB", 20.0, 60.0, 40.0, "gain into the clipping stage"),
        Knob("bias", "%", 0.0, 100.0, 25.0, "operating point: 0 symmetric, 100 starved/gated"),
        Knob("tone", "Hz", 500.0, 8000.0, 3000.0, "output low-pass cutoff", log_scale=True),
        Knob("level", "dB", -24.0, 6.0, -6.0, "output level"),
    )

    def process(self, dry: np.ndarray, sample_rate: int, knobs: Mapping[str, float]) -> np.ndarray:
        bias = knobs["bias"] / 100.0
        gain = db_to_gain(knobs["fuzz"])
        x = signal.sosfilt(
            _butter(1, _FUZZ_INPUT_HPF_HZ, "highpass", sample_rate), dry.astype(np.float64), axis=-1
        )
        y = oversampled(x * gain, lambda u: _fuzz_stage(u, bias))
        post = np.vstack(
            [
                _butter(1, _FUZZ_DC_BLOCK_HZ, "highpass", sample_rate),
                _butter(2, clamp_cutoff(knobs["tone"], sample_rate), "lowpass", sample_rate),
            ]
        )
        y = signal.sosfilt(post, y, axis=-1) * db_to_gain(knobs["level"])
        return y.astype(np.float32)


# --------------------------------------------------------------------------------------------
# ampcab: cabinet


class CabinetResponse(NamedTuple):
    """The documented cabinet magnitude curve: ``freqs_hz`` (Hz) and ``magnitude_db`` (dB)."""

    freqs_hz: np.ndarray
    magnitude_db: np.ndarray


# (centre Hz, gain dB, width in octaves (standard deviation of a Gaussian in log2 f))
_CAB_FEATURES = (
    (120.0, 5.0, 0.35),  # cone/box resonance of a closed-back 4x12
    (500.0, -3.0, 0.4),  # low-mid dip
    (1400.0, -3.0, 0.12),  # narrow cone break-up notch
    (2500.0, 5.0, 0.6),  # presence peak
)
_CAB_HIGHPASS_HZ = 90.0  # 2nd-order Butterworth: the speaker's low-frequency roll-off
_CAB_LOWPASS_HZ = 5000.0  # 5th-order Butterworth: 30 dB/octave, a 12" cone's top end
_CAB_FLOOR_DB = -100.0  # where the curve is clamped for the design (DC, far above 5 kHz)
_CAB_SECONDS = 0.04  # IR length, rounded up to a power of two of samples


def _cabinet_db(freqs_hz: np.ndarray) -> np.ndarray:
    f = np.maximum(np.asarray(freqs_hz, dtype=np.float64), 1e-3)
    db = -10.0 * np.log10(1.0 + (_CAB_HIGHPASS_HZ / f) ** 4)
    db -= 10.0 * np.log10(1.0 + (f / _CAB_LOWPASS_HZ) ** 10)
    for centre_hz, gain_db, width_oct in _CAB_FEATURES:
        db += gain_db * np.exp(-0.5 * (np.log2(f / centre_hz) / width_oct) ** 2)
    return np.maximum(db, _CAB_FLOOR_DB)


def cabinet_response(sample_rate: int, freqs_hz: np.ndarray | None = None) -> CabinetResponse:
    """The cabinet's documented magnitude response, which :func:`cabinet_ir` is designed from.

    In dB: a 2nd-order Butterworth high-pass at 90 Hz, a 5th-order Butterworth low-pass at
    5 kHz, and Gaussian bumps in log-frequency: +5 dB at 120 Hz (0.35 octave standard
    deviation), -3 dB at 500 Hz (0.4), -3 dB at 1.4 kHz (0.12) and +5 dB at 2.5 kHz (0.6).
    Clamped at -100 dB.

    Args:
        sample_rate: Hz; the default grid stops at Nyquist.
        freqs_hz: where to evaluate, Hz; ``None`` gives 512 log-spaced points from 20 Hz to
            ``min(20 kHz, sample_rate / 2)``.

    Returns:
        :class:`CabinetResponse` of float64 arrays, unpackable as ``(freqs, magnitude_db)``.
    """
    if freqs_hz is None:
        freqs_hz = np.geomspace(20.0, min(20000.0, sample_rate / 2.0), 512)
    freqs = np.asarray(freqs_hz, dtype=np.float64)
    return CabinetResponse(freqs, _cabinet_db(freqs))


@functools.lru_cache(maxsize=8)
def _cabinet_taps(sample_rate: int) -> np.ndarray:
    taps = 1 << math.ceil(math.log2(_CAB_SECONDS * sample_rate))
    n_fft = 16 * taps  # dense grid: keeps the cepstrum's time aliasing negligible
    log_mag = _cabinet_db(np.fft.rfftfreq(n_fft, 1.0 / sample_rate)) * (math.log(10.0) / 20.0)
    # Homomorphic minimum phase: fold the real cepstrum onto positive quefrencies.
    cepstrum = np.fft.irfft(log_mag, n_fft)
    fold = np.zeros(n_fft)
    fold[0] = fold[n_fft // 2] = 1.0
    fold[1 : n_fft // 2] = 2.0
    h = np.fft.irfft(np.exp(np.fft.rfft(cepstrum * fold)), n_fft)[:taps]
    # A half-Hann over the last eighth: the truncated tail ends at zero instead of a step.
    fade = taps // 8
    h[-fade:] *= 0.5 * (1.0 + np.cos(np.pi * np.arange(1, fade + 1) / fade))
    h.setflags(write=False)
    return h


def cabinet_ir(sample_rate: int) -> np.ndarray:
    """Minimum-phase FIR of the guitar cabinet at ``sample_rate`` (Hz), deterministic.

    Designed from :func:`cabinet_response` by the cepstral (homomorphic) method on a grid 16
    times longer than the IR, truncated to the power of two at or above 40 ms (2048 taps at
    44.1 and 48 kHz) with a half-Hann fade over its last eighth. Minimum phase puts the
    energy first, so the cabinet adds no pre-ringing and little delay.

    Returns:
        float64 ``(taps,)``, a fresh copy.
    """
    return _cabinet_taps(int(sample_rate)).copy()


_DIRECT_TAPS = 512  # taps convolved sample by sample; measured fastest at 48 kHz


def _causal_convolve(x: np.ndarray, h: np.ndarray) -> np.ndarray:
    """``x`` filtered by the FIR ``h``, truncated to ``x``'s length, exactly causal, in float32.

    One FFT over the whole signal would let rounding noise from later samples reach earlier
    outputs (about 1e-17, but the output before a change would no longer be bit-identical).
    Here the first 512 taps are applied directly, and each later partition ``h[d : 2d]`` by
    FFT over input blocks of ``d`` samples: a block's products only land ``d`` or more
    samples after its first sample, so no output depends on a later input, even in rounding.
    float32 (the output's type; rounding near -140 dB) halves the time: 60 s at 48 kHz
    takes about 0.25 s.

    Args:
        x: ``(channels, samples)``, any float dtype.
        h: ``(taps,)``, any float dtype.

    Returns:
        float32 ``(channels, samples)``.
    """
    x = np.asarray(x, dtype=np.float32)
    h = np.asarray(h, dtype=np.float32)
    channels, n = x.shape
    head = min(_DIRECT_TAPS, h.size)
    y = np.stack([np.convolve(ch, h[:head])[:n] for ch in x])
    start = head
    while start < h.size:
        block = start
        blocks = -(-n // block)
        padded = np.zeros((channels, blocks * block), dtype=np.float32)
        padded[:, :n] = x
        spec = sp_fft.rfft(padded.reshape(channels, blocks, block), 2 * block, axis=-1)
        spec *= sp_fft.rfft(h[start : 2 * start], 2 * block)
        products = sp_fft.irfft(spec, 2 * block, axis=-1)
        for offset, half in (
            (start, products[..., :block]),
            (start + block, products[..., block:]),
        ):
            if n > offset:
                y[:, offset:] += half.reshape(channels, -1)[:, : n - offset]
        start *= 2
    return y


# --------------------------------------------------------------------------------------------
# ampcab: amp

_AMP_INPUT_HPF_HZ = 30.0  # input coupling capacitor
_AMP_COUPLING_HZ = (60.0, 120.0)  # coupling high-pass after stage 1 and stage 2
_TUBE_BIAS = (0.35, 0.25)  # operating-point offset of each triode stage
_LOW_SHELF_HZ = 150.0
_MID_PEAK_HZ, _MID_Q = 700.0, 0.7
_HIGH_SHELF_HZ = 2500.0
_AMP_OUTPUT_GAIN = 0.9  # times 1 / sum|cabinet_ir|: the cabinet keeps +-1 within +-0.9


def _triode(u: np.ndarray, bias: float) -> np.ndarray:
    """An inverting triode stage: ``-(s(u + b) - s(b)) / s'(b)`` with ``s = _soft_clip``.

    The offset ``b`` puts the operating point off the curve's centre, so even small signals
    get a 2nd harmonic and loud ones clip at ``1 - s(b)`` on one side and ``1 + s(b)`` on the
    other (grid conduction vs cutoff). Dividing by the slope makes the small-signal gain 1.
    """
    # The same arithmetic as the signal path, so silence maps to exactly 0.
    s_b = float(_soft_clip(np.array(bias)))
    slope = (1.0 + bias * bias) ** -1.5
    return -(_soft_clip(u + bias) - s_b) / slope


def _rbj(kind: str, f0_hz: float, gain_db: float, fs: float, q: float = 0.7071) -> np.ndarray:
    """One biquad from the Audio EQ Cookbook (R. Bristow-Johnson) as an sos row.

    ``kind`` is ``"lowshelf"``, ``"highshelf"`` (shelf slope 1: gain/2 dB at ``f0_hz``) or
    ``"peak"`` (gain at ``f0_hz``, bandwidth from ``q``).
    """
    a = 10.0 ** (gain_db / 40.0)
    w0 = 2.0 * math.pi * f0_hz / fs
    cos_w, sin_w = math.cos(w0), math.sin(w0)
    if kind == "peak":
        alpha = sin_w / (2.0 * q)
        b = [1 + alpha * a, -2 * cos_w, 1 - alpha * a]
        den = [1 + alpha / a, -2 * cos_w, 1 - alpha / a]
    else:
        alpha = sin_w / 2.0 * math.sqrt(2.0)  # shelf slope S = 1
        root = 2.0 * math.sqrt(a) * alpha
        sign = 1.0 if kind == "lowshelf" else -1.0
        b = [
            a * ((a + 1) - sign * (a - 1) * cos_w + root),
            2 * sign * a * ((a - 1) - sign * (a + 1) * cos_w),
            a * ((a + 1) - sign * (a - 1) * cos_w - root),
        ]
        den = [
            (a + 1) + sign * (a - 1) * cos_w + root,
            -2 * sign * ((a - 1) + sign * (a + 1) * cos_w),
            (a + 1) + sign * (a - 1) * cos_w - root,
        ]
    return np.concatenate([b, den])[None, :] / den[0]


def tone_stack(bass_db: float, mid_db: float, treble_db: float, sample_rate: int) -> np.ndarray:
    """The ``ampcab`` tone stack as sos ``(3, 6)``: shelves and a peak, each 0 dB at 0.

    Low shelf at 150 Hz (``bass_db`` below it, half of it at 150 Hz), peak at 700 Hz with
    Q 0.7 (``mid_db``), high shelf at 2.5 kHz (``treble_db`` above it). Gains in dB,
    ``sample_rate`` in Hz (the amp runs it at 4x the audio rate).
    """
    high_hz = clamp_cutoff(_HIGH_SHELF_HZ, sample_rate)
    return np.vstack(
        [
            _rbj("lowshelf", _LOW_SHELF_HZ, bass_db, sample_rate),
            _rbj("peak", _MID_PEAK_HZ, mid_db, sample_rate, q=_MID_Q),
            _rbj("highshelf", high_hz, treble_db, sample_rate),
        ]
    )


class AmpCab(Effect):
    """A guitar amp into a cabinet: two triode stages, tone stack, power amp, cabinet IR.

    At 4x: stage 1 (gain, inverting asymmetric triode :func:`_triode`, 60 Hz coupling
    high-pass) -> stage 2 (gain, triode, 120 Hz coupling high-pass) -> :func:`tone_stack`
    (bass, mid, treble) -> ``master`` gain -> push-pull power amp ``u / sqrt(1 + u^2)``
    (symmetric: odd harmonics). Back at the base rate: the cabinet FIR (:func:`cabinet_ir`),
    by an exactly causal partitioned convolution, scaled by ``0.9 / sum|ir|``. The ``gain``
    knob is split evenly between the two stages. ``master`` sets how hard the power amp is
    driven, as on a master-volume amp. The power amp's output is within +-1 and the scaled
    cabinet cannot take that past 0.9; only the resampling filter's overshoot adds to it,
    and full-scale sines, squares, noise and clicks at extreme settings peak below 0.75.
    """

    name = "ampcab"
    description = "guitar amp and cabinet: two triode stages, tone stack, power amp, 4x12 IR"
    knobs = (
        Knob("gain", "dB", 0.0, 60.0, 30.0, "preamp gain, split over the two triode stages"),
        Knob("bass", "dB", -12.0, 12.0, 0.0, "low shelf at 150 Hz"),
        Knob("mid", "dB", -12.0, 12.0, 0.0, "peak at 700 Hz, Q 0.7"),
        Knob("treble", "dB", -12.0, 12.0, 0.0, "high shelf at 2.5 kHz"),
        Knob("master", "dB", -24.0, 12.0, 0.0, "drive into the power amp"),
    )

    def process(self, dry: np.ndarray, sample_rate: int, knobs: Mapping[str, float]) -> np.ndarray:
        channels = dry.shape[0]
        fast = sample_rate * OVERSAMPLE
        stage_gain = db_to_gain(knobs["gain"] / 2.0)
        master = db_to_gain(knobs["master"])
        couple1, couple2 = (
            _Cascade(_butter(1, hz, "highpass", fast), channels) for hz in _AMP_COUPLING_HZ
        )
        stack = _Cascade(tone_stack(knobs["bass"], knobs["mid"], knobs["treble"], fast), channels)

        def amp(u: np.ndarray) -> np.ndarray:
            u = couple1(_triode(stage_gain * u, _TUBE_BIAS[0]))
            u = couple2(_triode(stage_gain * u, _TUBE_BIAS[1]))
            return _soft_clip(master * stack(u))

        x = signal.sosfilt(
            _butter(1, _AMP_INPUT_HPF_HZ, "highpass", sample_rate), dry.astype(np.float64), axis=-1
        )
        y = oversampled(x, amp)
        ir = _cabinet_taps(sample_rate)
        return _causal_convolve(y, ir * (_AMP_OUTPUT_GAIN / np.abs(ir).sum()))


OVERDRIVE = register(Overdrive())
FUZZ = register(Fuzz())
AMPCAB = register(AmpCab())
