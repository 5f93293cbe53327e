"""Fitting the tape model (:mod:`fxclone.models.tape`) to one continuous dry/wet stream.

1. **Delay.** The dry path's gain by least squares at lag 0; the delay is the strongest peak
   of the cross-correlation of what it leaves with the dry signal (lags from 1 ms).
2. **Wobble.** In frames of about 43 ms (hop 10 ms) the same cross-correlation, within
   1.5 ms of that delay, peaks where the playback head is (refined between samples); frames
   whose peak is not clear, or not unique (tonal material correlates at every period of its
   note), are left out. The track's strongest Lomb-Scargle line is a wow or flutter
   component: its rate, depth and phase by least squares, subtracted, and the next one
   read, while each stands out of the track's noise (all of them refined at once by robust
   non-linear least squares after each). The material's own changes make lines too (the
   filters' delay moves with each note's spectrum), so these are candidates: the strongest
   (the wow) goes into the model, the others are tried below.
3. **Loop.** The whole model runs over the first ``fit_seconds`` of the stream with the
   dry and wet gains solved by least squares: the filter corners, feedback and drive on a
   coarse grid, then those and the delay by coordinate search. Candidate components join
   one at a time, best first, while each cuts the error by 5 %; then the loop's values by
   Nelder-Mead (the corners and the delay trade off along a narrow valley), each
   component's rate, depth and phase by coordinate search (the frames blur flutter), and
   the loop's values by Nelder-Mead once more.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import scipy.fft
import torch
from scipy import optimize, signal

from fxclone.models.tape import TapeModel

_FRAME_S = 0.043
_HOP_S = 0.01
_WOBBLE_MS = 1.5  # the farthest the playback head is looked for from the mean delay
_MIN_RATE, _MAX_RATE = 0.05, 20.0  # Hz: wow and flutter
_LINE = 8.0  # a component's Lomb-Scargle power over the median of the periodogram


def _xcorr(a: np.ndarray, b: np.ndarray, lags: range) -> np.ndarray:
    """``sum_n a[n] b[n - lag]`` for each lag in ``lags`` (``a`` and ``b`` the same length)."""
    size = scipy.fft.next_fast_len(a.size + b.size, real=True)
    corr = scipy.fft.irfft(scipy.fft.rfft(a, size) * np.conj(scipy.fft.rfft(b, size)), size)
    return corr[np.asarray(lags)]


def delay_track(
    rest: np.ndarray, dry: np.ndarray, sr: int, delay: int
) -> tuple[np.ndarray, np.ndarray]:
    """``(times_s, delays)``: where the playback head is (samples, between samples) in each
    frame with a clear peak within ``_WOBBLE_MS`` of ``delay``.

    Tonal material correlates at every period of its note, so a frame's highest peak may be
    a period away from the head: frames whose second-highest peak is 0.8 of the highest or
    more are left out."""
    frame, hop = int(_FRAME_S * sr), max(1, int(_HOP_S * sr))
    w = max(2, int(_WOBBLE_MS * 1e-3 * sr))
    starts = np.arange(delay + w, rest.size - frame, hop)
    size = scipy.fft.next_fast_len(2 * frame + 2 * w, real=True)
    kept, rows = [], []
    for chunk in np.array_split(starts, max(1, starts.size // 512)):
        if chunk.size == 0:
            continue
        r = np.stack([rest[s : s + frame] for s in chunk])
        x = np.stack([dry[s - delay - w : s - delay + frame + w] for s in chunk])
        corr = scipy.fft.irfft(scipy.fft.rfft(x, size) * np.conj(scipy.fft.rfft(r, size)), size)
        corr = corr[:, : 2 * w + 1][:, ::-1]  # column j: lag delay - w + j
        energy = np.sqrt(np.sum(r**2, axis=1) * np.sum(x[:, w : w + frame] ** 2, axis=1))
        clear = np.max(corr, axis=1) > 0.5 * energy + 1e-30
        kept.append(chunk[clear])
        rows.append(corr[clear])
    starts, corr = np.concatenate(kept), np.concatenate(rows)
    if starts.size == 0:
        return np.zeros(0), np.zeros(0)
    # a frame whose second-highest peak is close to its highest is ambiguous (a tone)
    local = np.full(corr.shape, -np.inf)
    inner = (corr[:, 1:-1] >= corr[:, :-2]) & (corr[:, 1:-1] >= corr[:, 2:])
    local[:, 1:-1] = np.where(inner, corr[:, 1:-1], -np.inf)
    top = np.sort(local, axis=1)[:, -2:]
    unique = np.isfinite(top[:, 1]) & (top[:, 0] < 0.8 * top[:, 1])
    starts, corr = starts[unique], corr[unique]
    peak = np.argmax(np.where(np.isfinite(local[unique]), corr, -np.inf), axis=1)
    a, b, c = (corr[np.arange(peak.size), peak + k] for k in (-1, 0, 1))
    curve = a - 2 * b + c
    offset = np.where(curve < 0, 0.5 * (a - c) / np.where(curve < 0, curve, -1.0), 0.0)
    return (starts + frame / 2) / sr, delay - w + peak + offset


def _sines(t: np.ndarray, params: np.ndarray) -> np.ndarray:
    """``params[0] + sum depth sin(2 pi rate t + phase)`` for (rate, depth, phase) triples."""
    out = np.full(t.shape, params[0])
    for rate, depth, phase in params[1:].reshape(-1, 3):
        out += depth * np.sin(2.0 * math.pi * rate * t + phase)
    return out


def fit_wobble(times: np.ndarray, track: np.ndarray, count: int) -> np.ndarray:
    """Up to ``count`` wow and flutter sinusoids in a delay track: ``[mean, (rate, depth,
    phase) ...]`` (rates in Hz, depths in samples, phases at time 0)."""
    params = np.array([float(np.median(track))]) if track.size else np.zeros(1)
    if track.size < 16 or count == 0:
        return params
    span = float(times[-1] - times[0])
    step = float(np.median(np.diff(times)))
    grid = np.arange(max(_MIN_RATE, 2.0 / span), min(_MAX_RATE, 0.45 / step), 0.1 / span)
    for _ in range(count):
        left = track - _sines(times, params)
        # frames whose peak jumped to another period of tonal material are left out
        spread = 1.4826 * float(np.median(np.abs(left - np.median(left)))) + 1e-9
        inlier = np.abs(left - np.median(left)) < 4.0 * spread
        times, track, left = times[inlier], track[inlier], left[inlier]
        power = signal.lombscargle(times, left - left.mean(), 2 * math.pi * grid)
        best = int(np.argmax(power))
        if power[best] < _LINE * float(np.median(power)):
            break
        rate = float(grid[best])
        basis = np.stack([np.sin(2 * math.pi * rate * times), np.cos(2 * math.pi * rate * times),
                          np.ones_like(times)], 1)  # fmt: skip
        s, c, _ = np.linalg.lstsq(basis, left, rcond=None)[0]
        params = np.concatenate([params, [rate, math.hypot(s, c), math.atan2(c, s)]])
        params = optimize.least_squares(
            lambda p, t=times, d=track: _sines(t, p) - d,
            params,
            loss="soft_l1",
            f_scale=max(float(np.std(left)), 1e-6),
        ).x
    return params


class _Loop:
    """The model's ESR over the fit stretch with its dry and wet gains solved, for loop
    values ``(hp, lp, feedback, drive, delay)``."""

    def __init__(self, model: TapeModel, dry: np.ndarray, wet: np.ndarray) -> None:
        self.model, self.dry, self.wet = model, dry, wet

    def set(self, p: list[float]) -> None:
        hp, lp, feedback, drive, delay = p
        m = self.model
        m.loop_hz.copy_(torch.tensor([hp, lp], dtype=torch.float64))
        m.feedback.fill_(feedback)
        m.log_drive.fill_(math.log(max(drive, 1e-6)))
        m.delay.fill_(delay)

    def solve(self, p: list[float]) -> tuple[float, np.ndarray]:
        self.set(p)
        played, _ = self.model.playback(self.dry[None], self.model.init_state(1))
        basis = np.stack([self.dry, played[0]], 1)
        gains, *_ = np.linalg.lstsq(basis, self.wet, rcond=None)
        error = float(np.sum((self.wet - basis @ gains) ** 2))
        return error / max(float(self.wet @ self.wet), 1e-30), gains


def _descend(
    point: list[float],
    score: Callable[[list[float]], float],
    steps: list[list[tuple[bool, float]]],
) -> list[float]:
    """Coordinate search: each value moved both ways by each of its steps (``steps[round]
    [value]`` is ``(multiplicative, size)``), moves kept where the score drops."""
    best, error = list(point), score(point)
    for row in steps:
        for i, (times, size) in enumerate(row):
            for sign in (1, -1):
                trial = list(best)
                trial[i] = trial[i] * size**sign if times else trial[i] + sign * size
                if (trial_error := score(trial)) < error:
                    best, error = trial, trial_error
    return best


def _simplex(point: list[float], score: Callable[[list[float]], float]) -> list[float]:
    """Nelder-Mead over the loop's values (corners and drive in log, feedback and delay as
    they are): the corners and the delay trade off along a narrow valley (the filters'
    group delay), which a coordinate search crawls along."""
    log = np.array([True, True, False, True, False])
    start = np.where(log, np.log(np.maximum(point, 1e-9)), point)

    def to_point(v: np.ndarray) -> list[float]:
        return [float(a) for a in np.where(log, np.exp(np.minimum(v, 30.0)), v)]

    sizes = (0.1, 0.1, 0.02, 0.1, 0.5)  # the first simplex: 10 %, feedback 0.02, 0.5 sample
    simplex = [start] + [start + np.eye(5)[i] * size for i, size in enumerate(sizes)]
    found = optimize.minimize(
        lambda v: score(to_point(v)),
        start,
        method="Nelder-Mead",
        options={"initial_simplex": np.array(simplex), "maxfev": 250, "xatol": 1e-4,
                 "fatol": 1e-9},
    )  # fmt: skip
    return to_point(found.x) if found.fun <= score(point) else list(point)


def _set_wobble(model: TapeModel, comps: list[tuple[float, float, float]]) -> None:
    """Set the model's wobble to ``(rate, depth, phase)`` components (the rest silent)."""
    model.rates.fill_(1.0)
    model.depths.zero_()
    model.phases.zero_()
    for i, (rate, depth, phase) in enumerate(comps[: model.rates.numel()]):
        model.rates[i], model.depths[i], model.phases[i] = rate, depth, phase


@torch.no_grad()
def fit_tape(model: TapeModel, dry: np.ndarray, wet: np.ndarray) -> float:
    """Fit ``model`` in place to mono ``dry``/``wet`` streams; returns its ESR on the
    stretch the loop was fitted on."""
    sr = model.sample_rate
    x, y = dry.astype(np.float64), wet.astype(np.float64)
    span = min(x.size, 120 * sr)  # delay and wobble from (at most) the first two minutes
    xs, ys = x[:span], y[:span]
    dry_gain = float(xs @ ys) / max(float(xs @ xs), 1e-30)
    rest = ys - dry_gain * xs
    lo, hi = max(2, sr // 1000), min(model.history - 2, span // 2)
    lags = range(lo, hi)
    delay = lo + int(np.argmax(np.abs(_xcorr(rest, xs, lags))))
    times, track = delay_track(rest, xs, sr, delay)
    # Candidate components from the track (the material's own changes make lines too, and
    # a flutter line can be weaker than them); the waveform picks among them below.
    wobble = fit_wobble(times, track, model.config.components + 4)
    found = [(r, abs(d), p if d >= 0 else p + math.pi) for r, d, p in wobble[1:].reshape(-1, 3)]
    chosen = found[:1]
    _set_wobble(model, chosen)
    centre = float(wobble[0]) if track.size else float(delay)

    n = min(x.size, int(model.config.fit_seconds * sr))
    loop = _Loop(model, x[:n], y[:n])

    def score(p: list[float]) -> float:
        if not (1.0 <= p[0] < p[1] and 0.0 <= p[3] and -0.99 <= p[2] <= 0.99):
            return math.inf
        if p[3] < 1e-3 or p[4] - float(model.depths.sum()) < 2.0:
            return math.inf
        return loop.solve(p)[0]

    grid = [[hp, lp, fb, drive, centre]
            for hp in (20.0, 50.0, 100.0, 200.0) for lp in (2000.0, 4000.0, 8000.0, 16000.0)
            for fb in (0.2, 0.5) for drive in (1.0, 2.0, 4.0)]  # fmt: skip
    best = min(grid, key=score)
    # halving steps: corners and drive x2 .. x1.02, feedback 0.1 .. 0.003, delay 2 .. 0.06
    steps = [[(True, 2.0**e), (True, 2.0**e), (False, 0.1 * e), (True, 2.0**e), (False, 2 * e)]
             for e in 0.5 ** np.arange(6.0)]  # fmt: skip
    best = _descend(best, score, steps)

    # Further components join one at a time, best first, while each cuts the error by 5 %.
    def with_components(comps: list[tuple[float, float, float]]) -> float:
        _set_wobble(model, comps)
        return score(best)

    error = score(best)
    while len(chosen) < model.config.components:
        trials = [(with_components([*chosen, c]), i)
                  for i, c in enumerate(found) if c not in chosen]  # fmt: skip
        if not trials or min(trials)[0] > 0.95 * error:
            break
        error, pick = min(trials)
        chosen.append(found[pick])
    _set_wobble(model, chosen)

    # Each component's rate, depth and phase on the waveform (the track is read in 43-ms
    # frames, which blur flutter), then the loop once more, finer.
    def wobble_score(v: list[float]) -> float:
        comps = [(float(r), float(d), float(p)) for r, d, p in np.reshape(v, (-1, 3))]
        if any(r <= 0 or d < 0 for r, d, _ in comps):
            return math.inf
        return with_components(comps)

    if chosen:
        best = _simplex(best, score)  # the loop again: it had only the wow before
        v = [value for c in chosen for value in c]
        v = _descend(v, wobble_score, [[(True, 1 + 2e-4 * e), (True, 2.0 ** (e / 2)),
                                        (False, 0.2 * e)] * len(chosen)
                                       for e in 0.5 ** np.arange(5.0)])  # fmt: skip
        wobble_score(v)
        best = _simplex(best, score)
    error, gains = loop.solve(best)
    model.dry_gain.fill_(float(gains[0]))
    model.wet_gain.fill_(float(gains[1]))
    return error
