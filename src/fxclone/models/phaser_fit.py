"""Fitting the phaser model (:mod:`fxclone.models.phaser`) to one continuous dry/wet stream.

1. **Frames.** A phaser's sweep is slow against its filter's memory, so over a frame of about
   43 ms it is close to a fixed all-pass cascade. For each stage count and each break
   frequency on a log grid the dry stream is filtered by that fixed cascade (no feedback) and
   every frame of the wet signal is fitted as ``g_d dry + g_w cascade`` by least squares; the
   frequency with the smallest residual (refined between grid points) tracks the sweep.
2. **Oscillator.** Each stage count's track gives its own rate: the peak of a Lomb-Scargle
   periodogram, refined by single-sinusoid least-squares scans around it; then the centre and
   the sweep's harmonics are a linear least-squares fit at that rate. Frames the fixed
   cascades explain badly (quiet or noisy ones) are left out.
3. **Loop.** The model itself (its coefficient held per block, feedback included) is run over
   windows of the stream at known positions, with the gains solved by least squares: a
   coarse feedback scan for each stage count in turn (frames cannot tell the counts apart;
   the loop can), until two counts in a row do worse than the best; then L-BFGS on every
   parameter, for at most ``fit_seconds`` in all.
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch
from scipy import signal

from fxclone.models.phaser import PhaserModel

_FRAME_S = 0.043
_GRID = 72  # break frequencies on the log grid
_STAGE_COUNTS = (2, 4, 6, 8, 10, 12)


def cascade_sections(break_hz: float, stages: int, sample_rate: int) -> np.ndarray:
    """Second-order sections of ``stages`` first-order all-passes at ``break_hz`` (no
    feedback): one section each, as a single polynomial repeated poles near 1 lose precision."""
    t = math.tan(math.pi * break_hz / sample_rate)
    c = (t - 1.0) / (t + 1.0)
    return np.tile([c, 1.0, 0.0, 1.0, c, 0.0], (stages, 1))


def sweep_track(dry: np.ndarray, wet: np.ndarray, sr: int, stages: int, grid: np.ndarray):
    """Per frame: the log break frequency whose fixed cascade fits best and the residual
    share of the wet frame's energy it leaves; ``(times_s, log_f, residual)``."""
    frame = 2 ** round(math.log2(_FRAME_S * sr))
    count = dry.size // frame
    n = count * frame
    xs, ws = dry[:n].reshape(count, frame), wet[:n].reshape(count, frame)
    xx, ww, wx = (xs * xs).sum(1), (ws * ws).sum(1), (ws * xs).sum(1)
    residual = np.empty((grid.size, count))
    lifted = dry + 1e-12  # keeps the filters' states out of denormal range in silences
    for i, log_f in enumerate(grid):
        v = signal.sosfilt(cascade_sections(math.exp(log_f), stages, sr), lifted)[:n]
        vs = v.reshape(count, frame)
        vv, xv = np.einsum("ij,ij->i", vs, vs), np.einsum("ij,ij->i", xs, vs)
        wv = np.einsum("ij,ij->i", ws, vs)
        det = np.maximum(xx * vv - xv**2, 1e-30)
        explained = (vv * wx**2 - 2 * xv * wx * wv + xx * wv**2) / det
        residual[i] = 1.0 - explained / np.maximum(ww, 1e-30)
    best = np.clip(np.argmin(residual, 0), 1, grid.size - 2)
    cols = np.arange(count)
    r0, r1, r2 = residual[best - 1, cols], residual[best, cols], residual[best + 1, cols]
    curve = r0 - 2 * r1 + r2
    shift = np.where(curve > 1e-12, 0.5 * (r0 - r2) / np.maximum(curve, 1e-12), 0.0)
    step = grid[1] - grid[0]
    log_f = grid[best] + np.clip(shift, -1, 1) * step
    times = (np.arange(count) + 0.5) * frame / sr
    loud = ww > 1e-4 * np.median(ww[ww > 0]) if np.any(ww > 0) else ww > 0
    return times, log_f, np.where(loud, residual.min(0), 1.0)


def _design(times: np.ndarray, rate: float, harmonics: int) -> np.ndarray:
    w = 2 * math.pi * rate * times
    cols = [np.ones_like(times)]
    for h in range(1, harmonics + 1):
        cols += [np.cos(h * w), np.sin(h * w)]
    return np.stack(cols, 1)


def _explained(times: np.ndarray, track: np.ndarray, rate: float) -> float:
    basis = _design(times, rate, 1)
    coef = np.linalg.lstsq(basis, track, rcond=None)[0]
    return float(np.sum((basis @ coef - track.mean()) ** 2))


def fit_rate(times: np.ndarray, track: np.ndarray, low_hz: float = 0.02,
             high_hz: float = 12.0) -> float:  # fmt: skip
    """The rate (Hz) of the sinusoid best explaining ``track`` (log Hz at ``times``): a
    Lomb-Scargle periodogram on a grid fine enough to land within a tenth of a cycle over the
    stream, then least-squares scans around its peak."""
    span = max(times[-1] - times[0], 1.0)
    high_hz = min(high_hz, 0.45 / float(np.median(np.diff(times))))
    rates = np.exp(np.arange(math.log(low_hz), math.log(high_hz), 0.1 / span / high_hz))
    power = signal.lombscargle(times, track - track.mean(), 2 * math.pi * rates)
    best = float(rates[int(np.argmax(power))])
    step = 0.05 / span
    for _ in range(4):
        grid = best + np.linspace(-2 * step, 2 * step, 21)
        best = float(grid[int(np.argmax([_explained(times, track, r) for r in grid]))])
        step /= 5
    return best


def fit_sweep(times: np.ndarray, track: np.ndarray, rate: float, harmonics: int) -> np.ndarray:
    """``[centre, cos 1, sin 1, cos 2, ...]`` of the sweep at ``rate`` best explaining
    ``track``."""
    basis = _design(times, rate, harmonics)
    return np.linalg.lstsq(basis, track, rcond=None)[0]


def _windows(total: int, hold: int, count: int, length: int, burn: int,
             rng: np.random.Generator) -> np.ndarray:  # fmt: skip
    """Starts of ``count`` windows (``burn + length`` samples, aligned to ``hold``) spread
    over the stream."""
    room = total - burn - length
    starts = np.linspace(0, max(room, 0), count) + rng.uniform(0, max(room, 1) / count, count)
    return (np.minimum(starts, max(room, 0)).astype(np.int64) // hold) * hold


class _Windows:
    """The stream cut into aligned windows; scores the model on their last ``length``
    samples (the first ``burn`` settle the loop)."""

    def __init__(self, model: PhaserModel, dry: np.ndarray, wet: np.ndarray, starts: np.ndarray,
                 length: int, burn: int) -> None:  # fmt: skip
        self.model, self.burn = model, burn
        span = np.arange(burn + length)
        self.dry = torch.from_numpy(dry[starts[:, None] + span])
        self.wet = wet[starts[:, None] + span][:, burn:]
        self.starts = starts

    def cascade(self, grad: bool = False) -> torch.Tensor:
        """Cascade output per window (float64), each from rest at its own start."""
        state = torch.zeros(self.dry.shape[0], self.model.size, dtype=torch.float64)
        starts = torch.from_numpy(self.starts.astype(np.float64))
        with torch.set_grad_enabled(grad):
            return self.model.run(self.dry, state, starts)[0][:, self.burn :]

    def solve(self) -> float:
        """Gains by least squares for the current loop; sets them, returns the ESR."""
        v = self.cascade().numpy()
        x = self.dry[:, self.burn :].numpy()
        basis = np.stack([x.ravel(), v.ravel()], 1)
        gains = np.linalg.lstsq(basis, self.wet.ravel(), rcond=None)[0]
        self.model.dry_gain.data.fill_(float(gains[0]))
        self.model.wet_gain.data.fill_(float(gains[1]))
        error = self.wet.ravel() - basis @ gains
        return float(np.sum(error**2) / max(np.sum(self.wet**2), 1e-30))


def _refine(windows: _Windows, model: PhaserModel, deadline: float) -> None:
    """L-BFGS on every parameter (the ESR of the windows, the loop run with gradients),
    until it stops improving or the deadline passes."""
    opt = torch.optim.LBFGS(
        list(model.parameters()), lr=1.0, max_iter=10, line_search_fn="strong_wolfe"
    )
    x = windows.dry[:, windows.burn :]
    wet = torch.from_numpy(windows.wet)
    energy = torch.sum(wet**2).clamp_min(1e-30)

    def closure() -> torch.Tensor:
        opt.zero_grad()
        v = windows.cascade(grad=True)
        y = model.dry_gain.double() * x + model.wet_gain.double() * v
        loss = torch.sum((y - wet) ** 2) / energy
        loss.backward()
        return loss

    least, best, last = math.inf, model.state_dict(), math.inf
    while time.monotonic() < deadline:
        before = {k: v.clone() for k, v in model.state_dict().items()}
        loss = float(opt.step(closure).detach())  # the loss before this step
        if loss < least:
            least, best = loss, before
        if not loss < last * (1 - 1e-3):
            break
        last = loss
    if not float(closure().detach()) < least:  # the last step made things worse (or not finite)
        model.load_state_dict(best)


def fit_phaser(model: PhaserModel, dry: np.ndarray, wet: np.ndarray, seed: int = 0) -> float:
    """Fit ``model`` in place to mono ``dry``/``wet`` streams; returns its ESR on windows of
    the stream."""
    sr = model.sample_rate
    deadline = time.monotonic() + max(model.config.fit_seconds, 1.0)
    dry64, wet64 = dry.astype(np.float64), wet.astype(np.float64)
    grid = np.linspace(math.log(20.0), math.log(0.45 * sr), _GRID)
    counts = [s for s in _STAGE_COUNTS if s <= model.config.max_stages] or [model.config.max_stages]

    rng = np.random.default_rng(seed)
    burn = 2 ** round(math.log2(0.08 * sr))
    length = 2 ** round(math.log2(0.04 * sr))
    starts = _windows(dry64.size, model.hold, 24, length, burn, rng)
    windows = _Windows(model, dry64, wet64, starts, length, burn)
    harmonics = model.sweep.shape[0]
    fits = []
    with torch.no_grad():
        for stages in counts:
            times, track, residual = sweep_track(dry64, wet64, sr, stages, grid)
            keep = residual < np.quantile(residual, 0.7)
            rate = fit_rate(times[keep], track[keep])  # a poor count's track can mislead it
            coef = fit_sweep(times[keep], track[keep], rate, harmonics)
            model.stages.fill_(stages)
            model.log_rate.fill_(math.log(rate))
            model.phase.zero_()
            model.centre.fill_(float(coef[0]))
            model.sweep.copy_(torch.from_numpy(coef[1:].reshape(harmonics, 2)))
            # the frames were fitted without feedback: scan it with the exact loop
            feedback = np.linspace(-0.8, 0.8, 5)
            errors = []
            for fb in feedback:
                model.feedback.fill_(float(fb))
                errors.append(windows.solve())
            model.feedback.fill_(float(feedback[int(np.argmin(errors))]))
            esr = windows.solve()
            fits.append((esr, {k: v.clone() for k, v in model.state_dict().items()}))
            if len(fits) > 2 and min(f[0] for f in fits[-2:]) > min(f[0] for f in fits):
                break  # two counts in a row worse than the best: more stages will not help
    # Frames cannot tell the stage counts apart (a coloured frame is fitted by more stages
    # lower down about as well); the exact loop on the windows can.
    _, chosen = min(fits, key=lambda f: f[0])
    model.load_state_dict(chosen)
    # the refinement gets at least half the budget, however long the scans took
    _refine(windows, model, max(deadline, time.monotonic() + 0.5 * model.config.fit_seconds))
    return windows.solve()
