"""Fitting the pitch model (:mod:`fxclone.models.pitch`) to one continuous dry/wet stream.

1. **Ratio.** Frames of both signals become log-magnitude spectra on a log-frequency axis
   (one cent per point, 150 Hz to 0.4 fs, frames of 0.34 s so that partials are a few cents
   wide), each flattened by subtracting its own running mean over a semitone (the material's
   tilt and formants are not what moved); summed over frames, the cross-correlation of wet
   against dry peaks where the wet signal's partials sit ``ratio`` times above the dry ones.
   Taken over its running median (harmonic spectra resemble themselves a little at every
   small shift; a pitch shift lines up every partial at one), the peak within a quarter tone
   of zero is the dry signal mixed in; the strongest other peaks (up to six, each at least a
   quarter of the strongest), refined between points, are the candidate ratios.
2. **Delays.** The dry path's delay is the peak of the wet-dry waveform cross-correlation;
   the shifted voice's (beyond the analysis frame) the peak of the cross-correlation of
   short-time energy envelopes of the model's shifted voice and what the dry path leaves.
3. **Voices and gains.** The dry gain by least squares (the dry path is coherent with the
   wet); the shifted voices cannot be phase-coherent with another vocoder's, so their gains
   match the power the dry path leaves, bin by bin of short-time spectra (non-negative least
   squares). Candidates join as voices, best first, while each explains 3 % of the power
   still unexplained (harmonic spectra also line up at octaves and fifths of a true ratio).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy import optimize, signal

from fxclone.models.pitch import PitchModel

_CENT = math.log(2.0) / 1200.0
_MAX_SHIFT_CENTS = 2400  # two octaves either way
_DRY_ZONE_CENTS = 50  # a quarter tone: the dry signal mixed in, not a shift
_FRAME_S = 0.34  # partials a few cents wide above _LOW_HZ
_LOW_HZ = 150.0
_CANDIDATES = 6  # ratios tried as voices


def _log_axis(x: np.ndarray, sr: int, n: int, starts: np.ndarray) -> np.ndarray:
    """Flattened log-magnitude spectra of the ``n``-sample frames of ``x`` at ``starts`` on a
    one-cent log-frequency axis; ``(frames, points)``."""
    window = np.hanning(n)
    chunk = np.stack([x[s : s + n] for s in starts]) * window
    magnitude = np.log(np.abs(np.fft.rfft(chunk, axis=1)) + 1e-7)
    freqs = np.fft.rfftfreq(n, 1.0 / sr)
    grid = np.exp(np.arange(math.log(_LOW_HZ), math.log(0.4 * sr), _CENT))
    on_grid = np.stack([np.interp(grid, freqs, m) for m in magnitude])
    smooth = signal.fftconvolve(on_grid, np.ones((1, 100)) / 100, mode="same")  # a semitone
    return on_grid - smooth


def fit_ratios(dry: np.ndarray, wet: np.ndarray, sr: int, count: int, seed: int = 0) -> list[float]:
    """Up to ``count`` pitch ratios mapping the dry signal's partials onto the wet signal's,
    strongest first; a further ratio is kept only where its peak is at least a quarter of the
    strongest one's and a quarter tone from the others."""
    rng = np.random.default_rng(seed)
    n = 2 ** round(math.log2(_FRAME_S * sr))
    starts = rng.integers(0, max(dry.size - n, 1), 400)
    d, w = _log_axis(dry, sr, n, starts), _log_axis(wet, sr, n, starts)
    width = d.shape[1]
    size = 2 ** math.ceil(math.log2(2 * width))
    spectrum = np.fft.rfft(w, size, axis=1) * np.conj(np.fft.rfft(d, size, axis=1))
    corr = np.fft.irfft(spectrum.sum(0), size)  # corr[k]: wet at cent c + k vs dry at c
    lags = np.arange(-_MAX_SHIFT_CENTS, _MAX_SHIFT_CENTS + 1)
    values = corr[lags % size]
    # prominence over the neighbourhood: harmonic spectra resemble themselves a little at
    # every small shift, a pitch shift lines up every partial at one
    values = values - signal.medfilt(values, 201)
    values[np.abs(lags) < _DRY_ZONE_CENTS] = -np.inf
    ratios: list[float] = []
    strongest = float(np.max(values))
    while len(ratios) < count:
        best = int(np.argmax(values))
        if not values[best] > 0.25 * strongest:
            break
        shift = float(lags[best])
        if 0 < best < lags.size - 1:
            a, b, c = values[best - 1], values[best], values[best + 1]
            if np.isfinite(a) and np.isfinite(c) and a - 2 * b + c < 0:
                shift += 0.5 * (a - c) / (a - 2 * b + c)
        ratios.append(math.exp(shift * _CENT))
        values[np.abs(lags - lags[best]) < _DRY_ZONE_CENTS] = -np.inf
    return ratios


def _power(x: np.ndarray, n: int) -> np.ndarray:
    """Short-time power spectra of ``x`` (Hann frames of ``n``, hop ``n / 2``), flattened."""
    frames = np.lib.stride_tricks.sliding_window_view(x, n)[:: n // 2] * np.hanning(n)
    return (np.abs(np.fft.rfft(frames, axis=1)) ** 2).ravel()


def _xcorr_peak(a: np.ndarray, b: np.ndarray, max_lag: int) -> int:
    """The lag ``0..max_lag`` at which ``a`` best matches ``b`` delayed."""
    size = 2 ** math.ceil(math.log2(a.size + b.size))
    corr = np.fft.irfft(np.fft.rfft(a, size) * np.conj(np.fft.rfft(b, size)), size)
    return int(np.argmax(corr[: max_lag + 1]))


def _envelope(x: np.ndarray, hop: int) -> np.ndarray:
    frames = x[: x.size // hop * hop].reshape(-1, hop)
    energy = np.sqrt(np.mean(frames**2, axis=1) + 1e-12)
    return energy - energy.mean()


@torch.no_grad()
def fit_pitch(model: PitchModel, dry: np.ndarray, wet: np.ndarray, seed: int = 0) -> float:
    """Fit ``model`` in place to mono ``dry``/``wet`` streams; returns the loudest voice's
    ratio."""
    sr = model.sample_rate
    dry64, wet64 = dry.astype(np.float64), wet.astype(np.float64)
    candidates = fit_ratios(dry64, wet64, sr, _CANDIDATES, seed) or [1.0]

    span = min(dry64.size, 60 * sr)  # delays and gains from (at most) the first minute
    d, w = dry64[:span], wet64[:span]
    dry_lag = _xcorr_peak(w, d, model.max_delay)
    delayed = np.concatenate([np.zeros(dry_lag), d[: span - dry_lag]])
    gain = float(np.dot(w, delayed) / max(np.dot(delayed, delayed), 1e-30))
    rest = w - gain * delayed

    # each candidate alone, at unit gain and no delay beyond the frame
    model.delay.fill_(0)
    model.dry_gain.fill_(0.0)
    model.wet_gain.zero_()
    model.wet_gain[0] = 1.0
    alone = []
    for ratio in candidates:
        model.log_ratio[0] = math.log(ratio)
        out = model(torch.from_numpy(d.astype(np.float32))[None, None])[0, 0]
        alone.append(out.double().numpy())
    hop = max(1, sr // 1000)  # 1-ms energy frames
    frames = _xcorr_peak(_envelope(rest, hop), _envelope(alone[0], hop), model.max_delay // hop)
    extra = frames * hop
    # Another vocoder's voices cannot be phase-coherent with these: their gains match the
    # power the dry path leaves, bin by bin (non-negative least squares on power spectra).
    # Voices join while each explains 3 % of what is left: harmonic spectra also line
    # up at octaves and fifths of the true ratio, which explain a little.
    n = 2 ** round(math.log2(0.043 * sr))
    basis = np.stack([_power(np.concatenate([np.zeros(extra), a[: span - extra]]), n)
                      for a in alone], 1)  # fmt: skip
    target = _power(rest, n)
    scale = float(basis.max()) or 1.0
    basis, target = basis / scale, target / scale
    chosen: list[int] = []
    left = float(np.sum(target**2))
    while len(chosen) < model.log_ratio.numel():
        trials = [(optimize.nnls(basis[:, [*chosen, c]], target)[1] ** 2, c)
                  for c in range(len(candidates)) if c not in chosen]  # fmt: skip
        if not trials:
            break
        error, best = min(trials)
        if chosen and error > 0.97 * left:
            break
        chosen, left = [*chosen, best], error
    squares = optimize.nnls(basis[:, chosen], target)[0]
    model.log_ratio.zero_()
    model.wet_gain.zero_()
    for slot, (c, square) in enumerate(zip(chosen, squares, strict=True)):
        model.log_ratio[slot] = math.log(candidates[c])
        model.wet_gain[slot] = math.sqrt(square)
    model.delay.fill_(extra)
    model.dry_delay.fill_(dry_lag)
    model.dry_gain.fill_(gain)
    return model.ratio
