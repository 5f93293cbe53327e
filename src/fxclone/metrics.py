"""Objective distances between a target (the real effect's output) and an estimate (a model's).

Every function takes ``target, estimate`` as float arrays of the same shape, either
``(channels, samples)`` or ``(samples,)``, and returns a Python ``float``. Sums run over all
channels and samples, so a stereo file is scored as one signal, not as an average of two.

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


def compute_metrics(target: np.ndarray, estimate: np.ndarray, sample_rate: int) -> dict[str, float]:
    """All the metrics above in one dict: ``esr``, ``esr_pre_emph``, ``mae`` and ``mrstft``.

    Args:
        target: ``(channels, samples)`` or ``(samples,)`` float audio.
        estimate: same shape as ``target``.
        sample_rate: in Hz.
    """
    return {
        "esr": esr(target, estimate),
        "esr_pre_emph": esr_pre_emph(target, estimate),
        "mae": mae(target, estimate),
        "mrstft": mrstft(target, estimate, sample_rate),
    }
