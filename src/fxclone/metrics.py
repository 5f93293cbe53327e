"""Objective distances between a target (the real effect's output) and an estimate (a model's).

Every function takes ``target, estimate`` as float arrays of the same shape, either
``(channels, samples)`` or ``(samples,)``, and returns a Python ``float``. Sums run over all
channels and samples, so a stereo file is scored as one signal, not as an average of two.

Besides the sample-wise errors there are perceptual and loudness distances (log-mel, MFCC,
modulation spectrum and integrated loudness in :mod:`fxclone.perceptual`; the null residual
here), which ``compute_metrics(..., extended=True)`` adds.

These are numpy metrics for evaluation and reports. The differentiable training losses live
elsewhere; only :func:`mrstft` borrows torch, because it reuses auraloss' implementation so the
number printed here means the same thing as the MRSTFT loss reported in the literature.
"""

from __future__ import annotations

import math

import numpy as np

from fxclone.errors import FxcloneError

# A target with less energy than this (sum of squares) is treated as silent: ESR then reports
# the estimate's energy relative to this floor instead of dividing by zero.
_ENERGY_FLOOR = 1e-12

# auraloss' MultiResolutionSTFTLoss defaults: FFT sizes 1024/2048/512, hops 120/240/50,
# Hann windows of 600/1200/240 samples. Its STFT reflect-pads by half the largest FFT, so the
# audio must be longer than that; shorter inputs are zero-padded up to this length.
_MRSTFT_MIN_SAMPLES = 2048 + 1

# null_residual_db of a perfect match: log10(0) is -inf, reported as this floor instead.
NULL_RESIDUAL_FLOOR_DB = -200.0


def _pair(target: np.ndarray, estimate: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Check shapes and return both signals as float64 ``(channels, samples)``."""
    t = np.asarray(target, dtype=np.float64)
    e = np.asarray(estimate, dtype=np.float64)
    if t.shape != e.shape:
        raise FxcloneError(
            f"target has shape {t.shape} but estimate has shape {e.shape}; "
            "trim or pad them to the same (channels, samples) before scoring"
        )
    if t.ndim == 1:
        t, e = t[None, :], e[None, :]
    if t.ndim != 2 or t.shape[1] == 0:
        raise FxcloneError(
            f"audio of shape {t.shape} cannot be scored; give (channels, samples) or (samples,) "
            "with at least one sample"
        )
    return t, e


def esr(target: np.ndarray, estimate: np.ndarray) -> float:
    """Error-to-signal ratio ``sum((target - estimate)**2) / sum(target**2)``.

    Unitless; 0 is a perfect match, 1 is as bad as outputting silence. Neural Amp Modeler calls
    ESR < 0.01 "great". A silent target (energy below 1e-12) is divided by 1e-12 instead.

    Args:
        target: ``(channels, samples)`` or ``(samples,)`` float audio.
        estimate: same shape as ``target``.
    """
    t, e = _pair(target, estimate)
    return float(np.sum((t - e) ** 2) / max(float(np.sum(t**2)), _ENERGY_FLOOR))


def pre_emphasis(audio: np.ndarray, coeff: float = 0.95) -> np.ndarray:
    """First-order pre-emphasis ``y[n] = x[n] - coeff * x[n-1]`` along the last axis.

    The sample before the first is taken as zero. Shape is preserved; the result is float64.
    """
    x = np.asarray(audio, dtype=np.float64)
    y = x.copy()
    y[..., 1:] -= coeff * x[..., :-1]
    return y


def esr_pre_emph(target: np.ndarray, estimate: np.ndarray, coeff: float = 0.95) -> float:
    """ESR after first-order pre-emphasis (``y[n] = x[n] - coeff * x[n-1]``) of both signals.

    Unitless. The filter tilts both spectra up by about 6 dB/octave above ``(1 - coeff) *
    sample_rate / (2 pi)`` Hz, so errors in the treble count as much as the louder bass: the
    loss of Wright, Damskägg & Välimäki (2019) with their coefficient 0.95.

    Args:
        target: ``(channels, samples)`` or ``(samples,)`` float audio.
        estimate: same shape as ``target``.
        coeff: pre-emphasis coefficient in [0, 1).
    """
    t, e = _pair(target, estimate)
    return esr(pre_emphasis(t, coeff), pre_emphasis(e, coeff))


def mae(target: np.ndarray, estimate: np.ndarray) -> float:
    """Mean absolute error ``mean(|target - estimate|)``, in the signals' own units (full scale).

    Args:
        target: ``(channels, samples)`` or ``(samples,)`` float audio.
        estimate: same shape as ``target``.
    """
    t, e = _pair(target, estimate)
    return float(np.mean(np.abs(t - e)))


def mrstft(
    target: np.ndarray,
    estimate: np.ndarray,
    sample_rate: int,
    max_chunk_seconds: float = 30.0,
) -> float:
    """Multi-resolution STFT distance from ``auraloss.freq.MultiResolutionSTFTLoss``.

    Unitless. auraloss' defaults are used unchanged: FFT sizes 1024, 2048 and 512 with hops
    120, 240 and 50 and Hann windows of 600, 1200 and 240 samples; at each resolution the loss is
    spectral convergence plus the L1 distance of log magnitudes, averaged over the three. The
    resolutions are in samples, so the same audio at a higher sample rate is analysed with
    shorter windows in milliseconds.

    Long audio is scored in equal chunks of at most ``max_chunk_seconds`` (which bounds memory:
    30 s at 48 kHz needs about 0.3 GB) and the chunk losses are averaged weighted by length.
    Audio shorter than 2049 samples is zero-padded to that length first, because the STFT
    reflect-pads by half the largest FFT.

    Args:
        target: ``(channels, samples)`` or ``(samples,)`` float audio.
        estimate: same shape as ``target``.
        sample_rate: in Hz; only used to size the chunks.
        max_chunk_seconds: longest stretch scored in one STFT call, in seconds.
    """
    t, e = _pair(target, estimate)
    if sample_rate <= 0 or max_chunk_seconds <= 0:
        raise FxcloneError(
            f"mrstft needs a positive sample rate and chunk length, got sample_rate={sample_rate} "
            f"and max_chunk_seconds={max_chunk_seconds}"
        )
    import torch
    from auraloss.freq import MultiResolutionSTFTLoss

    loss_fn = MultiResolutionSTFTLoss()
    n = t.shape[1]
    max_chunk = max(_MRSTFT_MIN_SAMPLES, int(max_chunk_seconds * sample_rate))
    # Equal chunks rather than full chunks plus a remainder: a tiny last chunk would be mostly
    # padding and its STFT frames would not resemble the rest of the audio.
    n_chunks = math.ceil(n / max_chunk)
    bounds = np.linspace(0, n, n_chunks + 1).round().astype(int)
    total = 0.0
    with torch.no_grad():
        for start, stop in zip(bounds[:-1], bounds[1:], strict=True):
            pad = max(0, _MRSTFT_MIN_SAMPLES - (stop - start))
            chunks = [np.pad(x[:, start:stop], ((0, 0), (0, pad))) for x in (e, t)]
            # auraloss wants (batch, channels, samples) and (input, target) in that order: its
            # spectral convergence is normalised by the target's magnitude.
            est_t, tgt_t = (torch.from_numpy(c.astype(np.float32))[None] for c in chunks)
            total += float(loss_fn(est_t, tgt_t)) * (stop - start)
    return float(total / n)


def modulation_distance(target: np.ndarray, estimate: np.ndarray, sample_rate: int) -> float:
    """Distance between the modulation spectra of two signals (0 = the same modulation).

    Phase-blind, so it scores a time-varying effect whose oscillator starts at another point
    of its cycle: the level of 16 log-spaced bands (50 Hz to 16 kHz) is followed in dB over
    43-ms frames (hop 10.7 ms; levels 30 dB under the target band's mean are floored), and
    each band's level track is taken to its magnitude spectrum over 0.1-20 Hz. The distance
    is the energy of the difference of those spectra over the target's, summed over bands
    and channels.
    """
    t, e = _pair(target, estimate)
    frame = 1 << max(6, round(math.log2(0.043 * sample_rate)))
    hop = frame // 4
    if t.shape[1] < 8 * frame:
        raise FxcloneError(
            f"{t.shape[1]} samples are too short for a modulation spectrum; give at least "
            f"{8 * frame} ({8 * frame / sample_rate:.2f} s)"
        )
    edges = np.geomspace(50.0, min(16000.0, 0.45 * sample_rate), 17)
    freqs = np.fft.rfftfreq(frame, 1.0 / sample_rate)
    band = np.searchsorted(edges, freqs) - 1  # band of each bin; -1 or 16 outside
    window = np.hanning(frame)

    def levels(x: np.ndarray) -> np.ndarray:  # (channels, frames, bands)
        starts = np.arange(0, x.shape[-1] - frame + 1, hop)
        frames = np.stack([x[:, s : s + frame] for s in starts], axis=1) * window
        power = np.abs(np.fft.rfft(frames, axis=-1)) ** 2
        return np.stack([power[..., band == b].sum(-1) for b in range(16)], axis=-1)

    lt, le = levels(t), levels(e)
    # Levels 30 dB under a band's mean are floored: there, dB follows noise, not modulation.
    floor = 1e-3 * lt.mean(axis=1, keepdims=True) + 1e-20

    def spectra(level: np.ndarray) -> np.ndarray:
        db = 10.0 * np.log10(level + floor)
        db -= db.mean(axis=1, keepdims=True)
        mod = np.abs(np.fft.rfft(db, axis=1))
        rates = np.fft.rfftfreq(db.shape[1], hop / sample_rate)
        return mod[:, (rates >= 0.1) & (rates <= 20.0)]

    mt, me = spectra(lt), spectra(le)
    return float(np.sum((mt - me) ** 2) / max(float(np.sum(mt**2)), 1e-30))


def mae_energy_norm(target: np.ndarray, estimate: np.ndarray) -> float:
    """MAE after dividing each signal by its own RMS: ``mean(|t / rms(t) - e / rms(e)|)``.

    Unitless (multiples of each signal's RMS). This follows the thesis text of Martínez Ramírez
    (2020), where both signals' energy is normalised, so a pure gain difference scores 0 and
    what remains is a difference of waveform shape. (His code instead rescales only the
    estimate, by the ratio of mean absolute amplitudes.) The RMS runs over all channels and
    samples; a silent signal (energy below 1e-12) is divided by the floor instead of its RMS.

    Args:
        target: ``(channels, samples)`` or ``(samples,)`` float audio.
        estimate: same shape as ``target``.
    """
    t, e = _pair(target, estimate)

    def normalised(x: np.ndarray) -> np.ndarray:
        return x / math.sqrt(max(float(np.mean(x**2)), _ENERGY_FLOOR))

    return float(np.mean(np.abs(normalised(t) - normalised(e))))


def null_residual_db(target: np.ndarray, estimate: np.ndarray) -> float:
    """Energy of the null residual ``target - estimate`` re. the target's, in dB.

    ``10 log10(sum((t - e)**2) / sum(t**2))``, i.e. :func:`esr` in dB: 0 dB is as bad as
    silence, -20 dB means the residual is 1 % of the target's energy, and a pure gain ``g``
    gives ``20 log10 |1 - g|``. A perfect match (-inf) reports -200 dB
    (``NULL_RESIDUAL_FLOOR_DB``).

    Args:
        target: ``(channels, samples)`` or ``(samples,)`` float audio.
        estimate: same shape as ``target``.
    """
    ratio = esr(target, estimate)
    if ratio <= 0.0:
        return NULL_RESIDUAL_FLOOR_DB
    return max(10.0 * math.log10(ratio), NULL_RESIDUAL_FLOOR_DB)


def compute_metrics(
    target: np.ndarray, estimate: np.ndarray, sample_rate: int, extended: bool = False
) -> dict[str, float]:
    """All the metrics above in one dict.

    Always ``esr``, ``esr_pre_emph``, ``mae`` and ``mrstft``. With ``extended=True`` also
    ``mae_energy_norm``, ``mel_distance`` (dB), ``mfcc_cosine_distance``,
    ``modulation_distance`` (dB), ``loudness_diff_lufs`` (LU, estimate minus target) and
    ``null_residual_db`` (dB); the perceptual ones read at most the first 60 s, which keeps
    them to about a second on 30 s of 48 kHz stereo.

    Args:
        target: ``(channels, samples)`` or ``(samples,)`` float audio.
        estimate: same shape as ``target``.
        sample_rate: in Hz.
        extended: also compute the perceptual and loudness metrics.
    """
    scores = {
        "esr": esr(target, estimate),
        "esr_pre_emph": esr_pre_emph(target, estimate),
        "mae": mae(target, estimate),
        "mrstft": mrstft(target, estimate, sample_rate),
    }
    if not extended:
        return scores
    from fxclone.perceptual import (
        _extended_pair,
        _log_mel_db,
        _mel_distance_from,
        _mfcc_cosine_from,
        loudness_difference_lufs,
        modulation_spectrum,
    )

    t, e, rate = _extended_pair(target, estimate, sample_rate, "compute_metrics")
    # The log-mel spectrograms are shared by the mel and MFCC distances.
    t_db, e_db = _log_mel_db(t, rate), _log_mel_db(e, rate)
    scores.update(
        {
            "mae_energy_norm": mae_energy_norm(target, estimate),
            "mel_distance": _mel_distance_from(t_db, e_db),
            "mfcc_cosine_distance": _mfcc_cosine_from(t_db, e_db),
            "modulation_distance": float(
                np.mean(np.abs(modulation_spectrum(t, rate) - modulation_spectrum(e, rate)))
            ),
            "loudness_diff_lufs": loudness_difference_lufs(t, e, rate),
            "null_residual_db": null_residual_db(target, estimate),
        }
    )
    return scores
