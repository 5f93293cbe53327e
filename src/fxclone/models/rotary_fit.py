"""Fitting the rotary-speaker model to a dry/wet stream.

1. Each band's level (wet over dry, in 11-ms frames) rises and falls as its rotor turns: the
   strongest line of its modulation spectrum in the stream's second half (the rotor at
   speed) gives the rotor's rate.
2. Demodulated at that rate in windows of two turns, the level's phase drifts where the
   rate is not quite right (a line) and, early on, while the rotor spins up (the drift
   ``2 pi rate spin (1 - exp(-t / spin))``): the rate's correction, the spin-up's time
   constant and the phase are read from that drift.
3. The Doppler tap's swing: frames of the band folded by the rotor's angle
   (:func:`fxclone.models.lfo_frames.folded_response`) show the delayed path at each angle;
   a harmonic series through its lags.
4. With the rotors' angles known the output is linear in the gains: least squares on windows
   spread over the stream, inside a coordinate search over the crossover's pole and each
   rotor's Doppler sweep.
"""

from __future__ import annotations

import logging
import math

import numpy as np
import scipy.signal
import torch

from fxclone.errors import FxcloneError
from fxclone.models.closed_form import coordinate_search
from fxclone.models.lfo_frames import folded_response
from fxclone.models.rotary import TAPS, RotaryModel, harmonic_basis

log = logging.getLogger(__name__)

_FRAME = 512  # samples per level frame (hop half of it)
_BINS = 48  # angles the Doppler tap is read at
_SWEEP = 3  # harmonics of the Doppler sweep fitted (a horn's cubed cosine has 1 and 3)


def band_levels(
    model: RotaryModel, dry: np.ndarray, wet: np.ndarray
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per band (low, high): ``(times_s, level, weight)``: the wet/dry level ratio in frames
    and where the dry band has energy enough to read it (weight 1, else 0). The bands are
    read an octave clear of the crossover's corner (4th-order Butterworth filters), where
    the other rotor's share is small."""
    sr = model.sample_rate
    corner = -math.log(float(model.pole)) * sr / (2 * math.pi)
    hop = _FRAME // 2
    edges = np.arange(0, dry.size, hop)
    full = np.add.reduceat(dry**2, edges)
    loud = max(float(np.percentile(full[:-1] + full[1:], 99)), 1e-12)
    out = []
    for kind, edge in (("lowpass", 0.5 * corner), ("highpass", min(2.0 * corner, 0.4 * sr))):
        sos = scipy.signal.butter(4, edge, kind, fs=sr, output="sos")
        x, w = (scipy.signal.sosfilt(sos, s) for s in (dry, wet))
        ex, ew = (np.add.reduceat(s**2, edges) for s in (x, w))
        ex, ew = ex[:-1] + ex[1:], ew[:-1] + ew[1:]  # frames of two hops
        heard = ex > 1e-6 * loud  # the band within 60 dB of the loudest full-band frames
        level = np.sqrt(ew / np.maximum(ex, 1e-30)) * heard
        times = (edges[:-1] + hop) / sr
        out.append((times, level, heard.astype(np.float64)))
    return out


def strongest_line(
    times: np.ndarray, level: np.ndarray, weight: np.ndarray, avoid: float | None = None
) -> float:
    """The strongest modulation line (Hz, 0.2-15 Hz) of the level where it is heard; with
    ``avoid``, away from that rate's first three multiples (+-5 %: the other rotor's line
    and its side lobes), unless nothing there is a quarter as strong (both rotors turn at
    about the same speed: ``avoid`` is returned)."""
    z = (level - np.sum(level * weight) / max(weight.sum(), 1.0)) * weight
    step = float(times[1] - times[0])
    size = 1 << int(math.ceil(math.log2(z.size * 16)))
    spectrum = np.abs(np.fft.rfft(z * np.hanning(z.size), size))
    freqs = np.fft.rfftfreq(size, step)
    band = (freqs >= 0.2) & (freqs <= 15.0)
    strongest = float(spectrum[band].max())
    if avoid is not None:
        for k in (1, 2, 3):
            band &= np.abs(freqs - k * avoid) > 0.05 * k * avoid
        if not band.any() or spectrum[band].max() < 0.25 * strongest:
            return avoid
    k = int(np.flatnonzero(band)[np.argmax(spectrum[band])])
    a, b, c = np.log(spectrum[k - 1 : k + 2] + 1e-30)
    bend = a - 2 * b + c
    return float((k + (0.5 * (a - c) / bend if bend < 0 else 0.0)) / size / step)


def without(
    model: RotaryModel, rotor: int, times: np.ndarray, level: np.ndarray, weight: np.ndarray
) -> np.ndarray:
    """``level`` less what a harmonic series in ``rotor``'s angle explains of it (weighted
    least squares): the other band's share of a rotor's swing, before the line search."""
    basis = harmonic_basis(model.theta(rotor, times * model.sample_rate), model.config.harmonics)
    coeffs = np.linalg.lstsq((basis * weight).T, level * weight, rcond=None)[0]
    return (level - (coeffs[1:] @ basis[1:])) * weight


def demodulate(
    times: np.ndarray, level: np.ndarray, weight: np.ndarray, rate: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(centres_s, drift, confidence)``: the level's phase against ``rate`` in windows of
    two turns (hop half a turn), and how much of the window's swing is at that rate."""
    step = float(times[1] - times[0])
    width = max(4, int(round(2.0 / rate / step)))
    hop = max(1, width // 4)
    mean = np.sum(level * weight) / max(weight.sum(), 1.0)
    z = (level - mean) * weight
    carrier = z * np.exp(-2j * math.pi * rate * times)
    starts = np.arange(0, z.size - width, hop)
    window = np.hanning(width)
    sums = np.stack([carrier[s : s + width] @ window for s in starts])
    swing = np.stack([np.abs(z[s : s + width]) @ window for s in starts])
    centres = times[starts + width // 2]
    return centres, np.angle(sums), np.abs(sums) / np.maximum(swing, 1e-30)


def track_rotor(
    times: np.ndarray, level: np.ndarray, weight: np.ndarray, rate: float
) -> tuple[float, float, float]:
    """``(rate, spin, phase)`` from the level's phase drift (step 2 of the module)."""
    t, drift, confidence = demodulate(times, level, weight, rate)
    late = t >= 0.5 * t[-1]
    unit = confidence * np.exp(1j * drift)

    def best_offset(u: np.ndarray, tt: np.ndarray) -> float:
        """The rate's correction (Hz, within 2 %) that best lines up the phases ``u``."""
        centre, span = 0.0, 0.02 * rate
        for _ in range(3):  # coarse to fine: each grid spans four steps of the one before
            grid = centre + np.linspace(-span, span, 801)
            power = np.abs(np.exp(-2j * math.pi * np.outer(grid, tt)) @ u)
            centre = float(grid[int(np.argmax(power))])
            span = 4 * span / 800
        return centre

    spins = np.concatenate([[0.0], np.geomspace(0.02, 20.0, 600)])
    spin = 0.0
    for _ in range(2):  # the rate's correction and the spin-up, in turn
        ramp = _spin_lag(rate, spin, t)
        offset = best_offset((unit * np.exp(2j * math.pi * ramp))[late], t[late])
        rate = rate + offset
        unit = unit * np.exp(-2j * math.pi * offset * t)
        spin = _best_spin(spins, rate, t, unit)
        if spin > 0:  # and finer, between the grid's neighbours
            spin = _best_spin(np.linspace(spin / 1.012, spin * 1.012, 201), rate, t, unit)
    ramp = _spin_lag(rate, spin, t)
    phase = float(np.angle(np.sum(unit * np.exp(2j * math.pi * ramp))))
    return rate, spin, phase


def _spin_lag(rate: float, spin: float, t: np.ndarray) -> np.ndarray:
    """Turns a rotor spinning up with time constant ``spin`` has fallen behind one at
    ``rate`` all along, at times ``t`` (s): ``rate spin (1 - exp(-t / spin))``."""
    return rate * spin * -np.expm1(-t / spin) if spin > 0 else np.zeros_like(t)


def _best_spin(spins: np.ndarray, rate: float, t: np.ndarray, unit: np.ndarray) -> float:
    """The spin-up time constant among ``spins`` that best explains the phase drift."""
    ramps = np.stack([_spin_lag(rate, s, t) for s in spins])
    return float(spins[int(np.argmax(np.abs(np.exp(2j * math.pi * ramps) @ unit)))])


def doppler_from_folds(model: RotaryModel, rotor: int, dry: np.ndarray, wet: np.ndarray) -> None:
    """Step 3: set ``delay[rotor]`` and ``sweep[rotor]`` from the delayed path's lag at each
    angle of the rotor, where it stands out; none (delay 0, no swing) where it does not."""
    sr = model.sample_rate
    max_lag = int(model.max_delay) + 2

    def cycles_at(seconds: np.ndarray) -> np.ndarray:
        return model.theta(rotor, seconds * sr) / (2 * math.pi)

    h = model.crossover()
    band = [scipy.signal.oaconvolve(s, h)[: s.size] for s in (dry, wet)]
    if rotor == 1:
        band = [dry - band[0], wet - band[1]]
    _, p = folded_response(band[0], band[1], sr, max_lag, 1.0, 0.008, _BINS, cycles_at)
    lags = np.abs(p[:, 2:])
    peak = np.argmax(lags, axis=1)
    # a path of its own: a peak inside the lags searched, well above the bin's median (a
    # band's smooth impulse response falls from lag 0 and peaks at the first lag searched)
    inside = (peak > 0) & (peak < lags.shape[1] - 1)
    salient = inside & (lags[np.arange(_BINS), peak] > 4.0 * np.median(lags, axis=1))
    model.delay[rotor] = 0.0
    model.sweep[rotor] = 0.0
    if salient.sum() < _BINS // 3:
        return
    k = peak + 2.0
    inner = (peak > 0) & (peak < lags.shape[1] - 1)
    rows = np.flatnonzero(inner)
    a, b, c = (lags[rows, peak[rows] + j] for j in (-1, 0, 1))
    k[rows] += 0.5 * (a - c) / np.minimum(a - 2 * b + c, -1e-12)
    # the probe's angles are the model's; bin centres are turns of it
    angle = 2 * math.pi * (np.arange(_BINS) + 0.5) / _BINS
    basis = harmonic_basis(angle, min(_SWEEP, model.config.harmonics))
    keep = salient.copy()
    for _ in range(3):  # bins far off the curve (a path too close to the direct one) left out
        coeffs = np.linalg.lstsq(basis[:, keep].T, k[keep], rcond=None)[0]
        keep = salient & (np.abs(coeffs @ basis - k) < 3.0)
        if keep.sum() < _BINS // 3:
            return
    curve = coeffs @ basis
    if np.sqrt(np.mean((curve[keep] - k[keep]) ** 2)) > 2.0 or np.ptp(curve) < 1.0:
        # the lags do not follow the angle (or stand still: the other rotor's Doppler tap
        # seen through the crossover's overlap): no Doppler tap on this rotor
        return
    model.delay[rotor] = float(coeffs[0])
    model.sweep[rotor, 1 : coeffs.size] = torch.from_numpy(coeffs[1:])


class _Windows:
    """Windows of the stream at known positions, for least squares on the gains: 40 % of
    them in the first 15 s (a rotor spinning up), the rest spread over the stream."""

    def __init__(self, model: RotaryModel, dry: np.ndarray, wet: np.ndarray, seconds: float):
        sr, n = model.sample_rate, dry.size
        length = min(n, int(0.5 * sr))
        count = max(2, int(seconds * sr) // length)
        early = np.linspace(0, min(15 * sr, n) - length, int(0.4 * count))
        spread = np.linspace(0, n - length, count - early.size)
        starts = np.unique(np.concatenate([early, spread]).astype(np.int64))
        padded = np.concatenate([np.zeros(model.history), dry])
        self.lines = [padded[None, s : s + model.history + length] for s in starts]
        self.times = [np.arange(s, s + length, dtype=np.float64) for s in starts]
        self.targets = np.concatenate([wet[s : s + length] for s in starts])
        self.model = model

    def solve(self) -> float:
        """Least-squares gains (set on the model; a rotor without a Doppler tap gets none);
        returns the windows' ESR."""
        model = self.model
        used = [True, model.has_doppler(0), True, model.has_doppler(1)]  # rotor-major, as columns()
        blocks = []
        for line, t in zip(self.lines, self.times, strict=True):
            cols = [b * s for (b, s), u in zip(model.columns(line, t), used, strict=True) if u]
            blocks.append(np.concatenate(cols).T)
        x = np.concatenate(blocks)
        gram = x.T @ x
        gram += 1e-9 * np.trace(gram) / gram.shape[0] * np.eye(gram.shape[0])
        g = np.linalg.solve(gram, x.T @ self.targets)
        gains = np.zeros((len(used), model.gains.shape[-1]))
        gains[np.flatnonzero(used)] = g.reshape(-1, gains.shape[1])
        model.gains.copy_(torch.from_numpy(gains.reshape(2, TAPS, -1)))
        residual = self.targets - x @ g
        return float(residual @ residual / max(float(self.targets @ self.targets), 1e-30))


def fit_rotary(model: RotaryModel, dry: np.ndarray, wet: np.ndarray, seed: int = 0) -> float:
    """Fit every part of ``model`` to mono float streams ``dry``/``wet``; returns the ESR on
    the fit's windows."""
    del seed  # deterministic
    dry, wet = dry.astype(np.float64), wet.astype(np.float64)
    sr = model.sample_rate
    if dry.size < 4 * sr:
        raise FxcloneError(
            f"the rotary model needs at least 4 s of training audio, got {dry.size / sr:.1f} s;"
            " render a longer training split"
        )
    model.level.data.fill_(1.0)
    levels = band_levels(model, dry, wet)
    for _, _, weight in levels:
        if weight.sum() < 0.1 * weight.size:
            raise FxcloneError(
                "the training split is nearly silent below or above the crossover; the rotary"
                " model needs material across the spectrum (the default dataset has it)"
            )
    times, level, weight = levels[1]  # the horn first: its band is its own
    rate, spin, phase = track_rotor(times, level, weight, strongest_line(times, level, weight))
    model.rate[1], model.spin[1], model.phase[1] = rate, spin, phase
    times, level, weight = levels[0]
    level = without(model, 1, times, level, weight)
    found = strongest_line(times, level, weight, avoid=rate)
    rate, spin, phase = track_rotor(times, level, weight, found)
    model.rate[0], model.spin[0], model.phase[0] = rate, spin, phase
    log.info("rotors: %.4f and %.4f Hz, spin-up %.2f and %.2f s", *model.rate, *model.spin)
    windows = _Windows(model, dry, wet, model.config.fit_seconds)
    for r in range(2):
        doppler_from_folds(model, r, dry, wet)
    # the crossover, then each Doppler tap's centre and swing (its first three harmonics)
    search = [(model.pole.view(1), 0, 0.02)]
    width = model.sweep.shape[1]
    for r in range(2):
        if model.has_doppler(r):
            search.append((model.delay, r, 2.0))
            search += [(model.sweep[r], j, 2.0) for j in range(1, 1 + 2 * _SWEEP) if j < width]
    coordinate_search(search, lambda: -windows.solve(), rounds=4, points=9)
    best = windows.solve()
    log.info("rotary fit: ESR %.4g on the fit windows", best)
    return best
