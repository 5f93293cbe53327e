"""Fitting the splice pitch shifter (:mod:`fxclone.models.splice`) to one dry/wet stream.

1. **Paths.** In frames of 43 ms (hop 16 ms) the wet signal is deconvolved by the dry one
   (:func:`fxclone.models.lfo_frames.frame_correlation`); each frame's strongest delayed path
   (lags from 3 samples; frames whose peak stands at least 8 times over the frame's median)
   is the tap with the larger weight, the one within ``[window / 4, 3 window / 4]``.
2. **Window and slope.** That lag ``q`` climbs (or falls) by ``slope`` per sample and drops
   back by half a window at each splice, so ``q - slope t`` sits on a lattice of spacing
   ``window / 2``. For each window on a grid, ``sum_i exp(2 pi j (2 q_i - 2 slope t_i) /
   window)`` over the frames is one FFT over time (every slope at once) and proposes the
   slope where it peaks; the proposal with the most paths (by weight) within two samples of
   its lattice wins, refined on that count, and the window is the longest whole multiple of
   its window that holds about as many (a lattice a whole number of times finer holds the
   true one's paths too). A stream whose paths follow no lattice is refused.
3. **Regression.** The paths within a few samples of the lattice give ``q_i = c + slope t_i
   + m_i window / 2`` with whole ``m_i``: least squares for ``c``, ``slope`` and ``window``
   to a fraction of a sample, the tolerance shrinking.
4. **Waveform.** A coordinate search of tap A's delay at the middle of the scored windows
   (spread over the whole stream), the turns per sample and the window for the lowest
   error, the gains solved by least squares at each point; then Nelder-Mead on the three.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.fft
import torch
from scipy import optimize

from fxclone.errors import FxcloneError
from fxclone.models.closed_form import coordinate_search, read
from fxclone.models.lfo_frames import frame_correlation
from fxclone.models.splice import SpliceModel

_PROMINENCE = 8.0  # a frame's strongest path over its median, to be used
_FOLLOWED = 0.05  # share of the paths within two samples of the lattice that shows a splice


def strongest_paths(
    times: np.ndarray, p: np.ndarray, valid: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(frames, lags, weights)``: each usable frame's strongest delayed path (lags 3 to 95 %
    of the longest: the deconvolution's edges left out) and its prominence over the frame's
    median (log)."""
    mag = np.abs(p[:, 3 : int(0.95 * (p.shape[1] - 1))])
    peak = mag.max(axis=1)
    prominence = peak / (np.median(mag, axis=1) + 1e-30)
    keep = np.flatnonzero(valid & (prominence >= _PROMINENCE))
    lags = np.argmax(mag[keep], axis=1).astype(np.float64) + 3.0
    return keep, lags, np.log(prominence[keep])


def lattice(
    frames: np.ndarray, lags: np.ndarray, weights: np.ndarray, hop: int, total: int, max_lag: int
) -> tuple[float, float, float]:
    """``(window, slope, share)``: the lattice most paths sit on (``share``: their weight
    within two samples of it beyond chance, over all). Each window on a grid proposes its
    best slope (one FFT over the frame grid of the paths' phases on its lattice); the
    proposals are scored by the weight of the paths near them (the coherence alone favours
    long windows: the paths that follow no tap, a harmonic note's aliases and the like, are
    not spread evenly), and the best is refined on that score."""
    size = scipy.fft.next_fast_len(4 * total)
    when = frames.astype(np.float64) * hop
    # the stronger tap stays below three quarters of the window
    proposals = []
    for window in np.geomspace(32.0, 4.0 / 3.0 * max_lag, 400):
        z = np.zeros(total, np.complex128)
        terms = weights * np.exp(2j * math.pi * 2.0 * lags / window)
        # less the mean: paths that stay put (or a window so long that every lag is near
        # the same point of the lattice) are not a splice's sliding taps
        np.add.at(z, frames, terms - weights * np.sum(terms) / np.sum(weights))
        power = np.abs(scipy.fft.fft(z, size))
        power[:3] = 0.0
        power[-2:] = 0.0
        k = int(np.argmax(power))
        cycles = (k if k < size // 2 else k - size) / size  # per frame
        proposals.append((float(window), cycles / hop * window / 2.0))

    def near(window: float, slope: float) -> float:
        """Weight of the paths within two samples of the lattice (its best offset), less
        what paths spread evenly would put there (on a short lattice, every path is near)."""
        half = window / 2.0
        residue = np.mod(lags - slope * when, half)
        bins = max(1, int(half))
        counts = np.bincount(np.minimum((residue / half * bins).astype(np.int64), bins - 1),
                             weights=weights, minlength=bins)  # fmt: skip
        kernel = np.ones(min(bins, 5))
        best = np.max(np.convolve(np.concatenate([counts, counts[:4]]), kernel, "valid"))
        return float(best - np.sum(weights) * kernel.size / bins)

    def zoom(window: float, slope: float) -> tuple[float, float]:
        w_span, s_span = 0.02 * window, 2.0 * window / (2.0 * when[-1] + 1.0)
        for _ in range(6):  # the grid's step, then a fifth of it, ...
            pairs = [(w, s) for w in window + np.linspace(-w_span, w_span, 21)
                     for s in slope + np.linspace(-s_span, s_span, 21)]  # fmt: skip
            window, slope = max(pairs, key=lambda ws: near(*ws))
            w_span, s_span = w_span / 5.0, s_span / 5.0
        return window, slope

    # A lattice a whole number of times finer holds the true one's paths (and stray ones):
    # the best proposal may be one. The window is the longest multiple of it that holds
    # about as many paths (a multiple beyond the window loses half of them or more).
    window, slope = zoom(*max(proposals, key=lambda ws: near(*ws)))
    fine = near(window, slope)
    multiples = range(1, int(4.0 / 3.0 * max_lag / window) + 1)
    m = max(k for k in multiples if near(k * window, slope) >= 0.7 * fine)
    window, slope = zoom(m * window, slope)
    return window, slope, near(window, slope) / (np.sum(weights) + 1e-30)


def regress(
    when: np.ndarray, lags: np.ndarray, window: float, slope: float
) -> tuple[float, float, float]:
    """``(c, slope, window)`` by least squares on the paths near the lattice ``c + slope t +
    m window / 2`` (tolerance halving from a twentieth of the window to two samples)."""
    half = window / 2.0
    u = lags - slope * when
    c = half * math.atan2(np.mean(np.sin(2 * np.pi * u / half)),
                          np.mean(np.cos(2 * np.pi * u / half))) / (2 * np.pi)  # fmt: skip
    tol = max(2.0, 0.05 * window)
    while True:
        rel = lags - c - slope * when
        m = np.round(rel / half)
        near = np.abs(rel - m * half) <= tol
        if near.sum() < 8:
            break
        basis = np.stack([np.ones(near.sum()), when[near], m[near]], 1)
        (c, slope, half), *_ = np.linalg.lstsq(basis, lags[near], rcond=None)
        if tol <= 2.0:
            break
        tol = max(2.0, tol / 2.0)
    return float(c), float(slope), float(2.0 * half)


def _solve(model: SpliceModel, dry: np.ndarray, wet: np.ndarray, at: np.ndarray) -> float:
    """Gains by least squares at positions ``at``; returns the ESR there."""
    a, b, weight = model.taps(at.astype(np.float64))
    line = dry[None]
    shifted = weight * read(line, at - a)[0] + (1.0 - weight) * read(line, at - b)[0]
    basis = np.stack([dry[at], shifted], 1)
    target = wet[at]
    (g_dry, g_wet), *_ = np.linalg.lstsq(basis, target, rcond=None)
    model.dry_gain.data.fill_(float(g_dry))
    model.wet_gain.data.fill_(float(g_wet))
    err = target - basis @ np.array([g_dry, g_wet])
    return float(np.sum(err**2) / (np.sum(target**2) + 1e-30))


def fit_splice(model: SpliceModel, dry: np.ndarray, wet: np.ndarray, seed: int = 0) -> float:
    """Fit ``model`` in place to mono float ``dry``/``wet`` streams; returns its ESR on
    windows spread over the stream."""
    sr = model.sample_rate
    dry64, wet64 = dry.astype(np.float64), wet.astype(np.float64)
    max_lag = int(min(model.history - 2, dry.size // 4))
    times, _, p, valid = frame_correlation(dry64, wet64, sr, max_lag, 0.043)
    hop = max(1, round(sr / 64))
    frames, lags, weights = strongest_paths(times, p, valid)
    if frames.size >= 8:
        window, slope, _ = lattice(frames, lags, weights, hop, times.size, max_lag)
        # frame centres as stream times (samples), as the frames' lags are measured
        when = times[frames] * sr
        c, slope, window = regress(when, lags, window, slope)
        half = window / 2.0
        residue = lags - c - slope * when
        on = np.abs(residue - np.round(residue / half) * half) <= 2.0
    if frames.size < 8 or on.sum() < 20 or on.mean() < max(_FOLLOWED, 3.0 * 5.0 / half):
        # (paths spread evenly put 5 / half of themselves within two samples of a lattice)
        raise FxcloneError(
            "the splice model found no delayed copy of the dry signal sliding through a "
            "window in the wet one (it fits delay-line pitch shifters and detuners); check "
            "that the wet file is the effect's output for this dry file, or pick another "
            "model (`fxclone models`)"
        )
    model.window.fill_(float(np.clip(window, 2.0, model.history - 2.0)))
    model.slope.fill_(slope)
    model.phase.fill_(2.0 * math.pi * (c / window % 1.0))

    # The waveform search scores windows spread over the whole stream (the sweep's rate is
    # pinned by its length, and the phase holds from its first sample). It moves tap A's
    # delay at the windows' mean time, the turns (wraps) per sample and the window: nearly
    # independent, where phase and slope trade against each other, and so do slope and
    # window (the frames' lags put both a few tenths of a percent out together).
    rng = np.random.default_rng(seed)
    count = max(8, int(model.config.fit_seconds * sr / 1024))
    starts = np.sort(rng.integers(model.history, max(model.history + 1, dry.size - 1024), count))
    at = np.unique(np.concatenate([np.arange(s, s + 1024) for s in starts]))
    at = at[at < dry.size]
    middle = float(np.mean(at))
    values = torch.tensor([(c + slope * middle) % window, slope / window, window],
                          dtype=torch.float64)  # fmt: skip

    def score() -> float:
        delay, rate, w = values.tolist()
        w = float(np.clip(w, 2.0, model.history - 2.0))
        model.window.fill_(w)
        model.slope.fill_(rate * w)
        turn = delay / w - rate * middle
        model.phase.fill_(2.0 * math.pi * (turn % 1.0))
        return -_solve(model, dry64, wet64, at)

    length = float(at.max() - at.min()) + 1.0
    spans = (2.0, 4.0 / (window * length), 2.0)
    coordinate_search([(values, j, span) for j, span in enumerate(spans)], score, rounds=3)
    # The valley is a tenth of a sample wide and not quite along the axes (a longer window
    # moves the taps near its end): Nelder-Mead from there, in samples (the rate as the
    # drift it makes over the scored stretch).
    scale = np.array([1.0, window * length, 1.0])

    def error(v: np.ndarray) -> float:
        values.copy_(torch.from_numpy(v / scale))
        return -score()

    start = values.numpy() * scale
    before = error(start)
    simplex = np.array([start] + [start + 0.3 * np.eye(3)[i] for i in range(3)])
    found = optimize.minimize(error, start, method="Nelder-Mead", options={
        "initial_simplex": simplex, "maxfev": 400, "xatol": 1e-4, "fatol": 1e-12})  # fmt: skip
    return error(found.x if found.fun <= before else start)
