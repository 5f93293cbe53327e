"""Fitting the octaver model (:mod:`fxclone.models.octaver`) to one continuous dry/wet stream.

A candidate circuit (tracking filter corners, comparator threshold, DC-block corner) is run
over the first ``fit_seconds`` of the stream and the three gains are solved by least
squares against the wet signal. The divider's parity is what makes this hard: a candidate
that toggles once where the effect does not (or misses a toggle) inverts its octave-down for
as long as nothing toggles it back. So the search has two scores:

* a forgiving one: the down path's sign free per 50-ms window (three rounds of least
  squares and signs, on per-window inner products), each window's residual over its own
  energy, averaged over the windows that are not silent;
* a sharp one: one sign for the whole stretch (plain least squares), zero only where the
  candidate's divider toggles exactly where the effect's does.

Steps: the tracking filter's corners on a log grid (threshold -50 dBFS and DC block 20 Hz,
where pedals put them), the threshold on a 10-dB grid, the DC block on a log grid, and all
four refined by coordinate search, on the forgiving score. Then the tracking filter alone:
the divider only flips the tracked signal's sign, so what the dry and up paths leave,
rectified, is the rectified tracked signal whatever the parity; a simplex search in log
frequency fits the two corners to it (twice, with the DC block refined after each). Then the
threshold, on the sharp score in finer and finer steps. The final gains take the forgiving
score's per-window signs, so that a circuit the model cannot match exactly (a real pedal)
still gets its octave-down's level right; the model keeps the sign that most of the down
path's energy has.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import numpy as np
import torch
from scipy import optimize, signal

from fxclone.models.octaver import OctaverModel

_WINDOW_S = 0.05  # the down path's sign is free per window this long
_HP_GRID = np.geomspace(10.0, 200.0, 9)
_LP_GRID = np.geomspace(100.0, 4000.0, 13)
_THRESHOLD_DB = np.arange(-80.0, -10.0, 10.0)
_DC_GRID = np.geomspace(2.0, 200.0, 9)


class _Scorer:
    """Residual of the best gains for a candidate circuit, on one stream."""

    def __init__(self, model: OctaverModel, dry: np.ndarray, wet: np.ndarray) -> None:
        self.model, self.sr = model, model.sample_rate
        window = max(1, int(_WINDOW_S * self.sr))
        n = max(window, dry.size // window * window)
        self.window = window
        self.dry, self.wet = dry[:n], wet[:n]
        # the last candidate's paths (a scan changes one value at a time)
        self._down: tuple[tuple[float, float, float], np.ndarray] | None = None
        self._up: tuple[float, np.ndarray] | None = None

    def _paths(self, point: list[float]) -> tuple[np.ndarray, ...]:
        """The down and up paths of a candidate ``(hp, lp, threshold, dc)``."""
        hp, lp, threshold, dc = point
        key = (hp, lp, threshold)
        if self._down is None or self._down[0] != key or self._up is None or self._up[0] != dc:
            model = self.model
            model.track_hz.copy_(torch.tensor([hp, lp], dtype=torch.float64))
            model.threshold.fill_(threshold)
            model.dc_hz.fill_(dc)
            down, up, _ = model.paths(self.dry[None], model.init_state(1))
            self._down, self._up = (key, down[0]), (dc, up[0])
        return self._down[1], self._up[1]

    def rectified(self, left: np.ndarray, hp: float, lp: float) -> float:
        """How far ``left`` is from the magnitude of the signal a tracking filter at
        ``hp``/``lp`` gives (with the best gain), relative to its energy."""
        track, _ = OctaverModel.design(self.sr, hp, lp, 20.0)
        tracked = np.abs(signal.sosfilt(track, self.dry))
        gain = float(tracked @ left) / max(float(tracked @ tracked), 1e-30)
        return float(np.sum((left - gain * tracked) ** 2)) / max(float(left @ left), 1e-30)

    def solve(self, point: list[float], free: bool = True) -> tuple[float, np.ndarray]:
        """``(score, gains (dry, down, up))`` of a candidate circuit: the down path's sign
        is free per window (three rounds of least squares and signs, on per-window inner
        products), and the score is the mean over windows that are not silent of each
        window's residual energy over its target energy. The down gain carries the sign most
        of the down path's energy has."""
        down, up = self._paths(point)
        w = self.window
        sig = [v.reshape(-1, w) for v in (self.dry, down, up, self.wet)]
        dots = np.einsum("iwn,jwn->wij", np.stack(sig), np.stack(sig))  # (windows, 4, 4)
        flip = np.ones((4, 4))
        flip[1, :] = flip[:, 1] = -1.0
        flip[1, 1] = 1.0  # the down path against itself keeps its sign
        signs = np.ones(dots.shape[0])
        for _ in range(3 if free else 1):
            signed = np.where(signs[:, None, None] < 0, dots * flip, dots)
            total = signed.sum(0)
            gains = np.linalg.lstsq(total[:3, :3], total[:3, 3], rcond=None)[0]
            # what the dry and up paths leave, against the down path, per window
            along = dots[:, 1, 3] - gains[0] * dots[:, 0, 1] - gains[2] * dots[:, 1, 2]
            if free:
                signs = np.where(along * np.sign(gains[1] or 1.0) < 0, -1.0, 1.0)
        signed = np.where(signs[:, None, None] < 0, dots * flip, dots)
        g = np.array([*gains, -1.0])
        residual = np.einsum("i,wij,j->w", g, signed, g)
        target = dots[:, 3, 3]
        heard = target > 1e-4 * max(float(target.mean()), 1e-30)
        if not free:  # one sign throughout: the ESR of the whole stretch
            return float(residual.sum() / max(float(target.sum()), 1e-30)), gains
        score = float(np.mean(residual[heard] / target[heard])) if heard.any() else 0.0
        energy = dots[:, 1, 1]
        if np.sum(energy[signs < 0]) > np.sum(energy[signs > 0]):
            gains = gains * np.array([1.0, -1.0, 1.0])
        return score, gains


def _descend(
    point: list[float], score: Callable[[list[float]], float], steps: np.ndarray
) -> list[float]:
    """Coordinate search: each value multiplied and divided by each step in turn (with two
    or more values, the first, a high-pass corner, kept below the second), moves kept where
    the score drops."""
    best, error = list(point), score(point)
    for step in steps:
        for i in range(len(best)):
            for factor in (step, 1.0 / step):
                trial = list(best)
                trial[i] *= factor
                ordered = len(trial) < 2 or trial[0] < trial[1]
                if ordered and (trial_error := score(trial)) < error:
                    best, error = trial, trial_error
    return best


def _plateau_middle(scores: np.ndarray) -> int:
    """The index in the middle of the run of lowest scores that holds the lowest one."""
    best = int(np.argmin(scores))
    low = scores <= scores[best] + 1e-9 * max(float(np.max(scores)), 1e-30)
    start, stop = best, best
    while start > 0 and low[start - 1]:
        start -= 1
    while stop < scores.size - 1 and low[stop + 1]:
        stop += 1
    return (start + stop) // 2


@torch.no_grad()
def fit_octaver(model: OctaverModel, dry: np.ndarray, wet: np.ndarray) -> float:
    """Fit ``model`` in place to mono ``dry``/``wet`` streams; returns the fitted circuit's
    score (mean per-window ESR, down signs free per window) on the stretch it was fitted on."""
    span = min(dry.size, int(model.config.fit_seconds * model.sample_rate))
    scorer = _Scorer(model, dry[:span].astype(np.float64), wet[:span].astype(np.float64))
    point = [40.0, 600.0, 10.0 ** (-50.0 / 20.0), 20.0]  # hp, lp, threshold, dc

    def score(p: list[float], free: bool = True) -> float:
        return scorer.solve(p, free)[0]

    best = min(
        ([hp, lp, *point[2:]] for hp, lp in itertools.product(_HP_GRID, _LP_GRID) if hp < lp),
        key=score,
    )
    best = min(([*best[:2], 10.0 ** (db / 20.0), best[3]] for db in _THRESHOLD_DB), key=score)
    best = min(([*best[:3], dc] for dc in _DC_GRID), key=score)
    best = _descend(best, score, 2.0 ** (2.0 ** -np.arange(1.0, 5.0)))  # x1.41 .. x1.04
    # The tracking filter from what the dry and up paths leave: the divider only flips
    # its sign, so its magnitude is the tracked signal's, parity or not.
    # Its two corners trade off along a narrow valley: a simplex search in log frequency.
    for _ in range(2):
        _, gains = scorer.solve(best)
        _, up = scorer._paths(best)
        left = np.abs(scorer.wet - gains[0] * scorer.dry - gains[2] * up)
        found = optimize.minimize(
            lambda v, left=left: scorer.rectified(left, *np.exp(v)) if v[0] < v[1] else np.inf,
            np.log(best[:2]),
            method="Nelder-Mead",
            options={"xatol": 1e-6, "fatol": 1e-14, "maxiter": 300},
        )
        best[:2] = [float(v) for v in np.exp(found.x)]
        best[3:] = _descend(best[3:], lambda p: score([*best[:3], *p]),
                            2.0 ** (2.0 ** -np.arange(1.0, 9.0)))  # fmt: skip

    # The threshold decides which crossings toggle: 0.5-dB steps +-12 dB, then 0.02-dB
    # steps +-1 dB and 0.001-dB steps +-0.03 dB on the sharper score (one sign throughout).
    # With the tracking filter right, the divider toggles where the effect's does for any
    # threshold between the same two peak levels, and the score is flat (zero) there; slow
    # decays put many peaks near any threshold, so that stretch is narrow (hundredths of a
    # dB), and its middle is the value most likely to toggle as the effect does elsewhere.
    def thresholds(around: list[float], db: np.ndarray) -> list[list[float]]:
        return [[*around[:2], around[2] * 10.0 ** (d / 20.0), around[3]] for d in db]

    best = min(thresholds(best, np.arange(-12.0, 12.25, 0.5)), key=score)
    for half, step in ((1.0, 0.02), (0.03, 0.001)):
        fine = thresholds(best, np.arange(-half, half + step / 2, step))
        best = fine[_plateau_middle(np.array([score(p, False) for p in fine]))]
    error, gains = scorer.solve(best)
    model.track_hz.copy_(torch.tensor(best[:2], dtype=torch.float64))
    model.threshold.fill_(best[2])
    model.dc_hz.fill_(best[3])
    model.dry_gain.fill_(float(gains[0]))
    model.down_gain.fill_(float(gains[1]))
    model.up_gain.fill_(float(gains[2]))
    return error
