"""Latency and clock drift of a recording against its dry signal, by cross-correlation.

Up to 16 windows of 1-4 s of the dry are cross-correlated (FFT) with the wet. Integer lags come
from a partly whitened correlation (GCC-PHAT, exponent 0.8), so onsets decide where a held
tone alone would peak once per period; the line most windows agree with decides whether the
files belong together and drops windows on a wrong peak. Each lag is refined by Newton's
method on the band-limited (sinc) plain correlation of the Hann-windowed signals. A robust
line through the refined lags against time gives the clock drift in ppm (positive: the
recording has more samples per second than the dry). Drift is corrected (soxr) only when it
moves the wet by 0.2 sample or more over the file and lies eight standard errors from zero,
which noise and material-dependent scatter do not reach. The latency is then one estimate
pooled over all agreeing windows.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import fft as sp_fft

from fxclone.errors import FxcloneError

MIN_CORRELATION = 0.1  # |normalised correlation| a window needs to count as a match
MAX_WINDOWS = 16
WINDOW_S = (1.0, 4.0)  # window length: an eighth of the dry, clipped to this range
COARSE_TOL_MS = 0.25  # windows whose integer lags lie this close to one line agree ...
FINE_TOL = 2.0  # ... and refined lags within this many samples of one line
MAX_DRIFT_PPM = 1000.0
DRIFT_MIN_SAMPLES = 0.2  # drift moving the wet less than this over the file is ignored ...
DRIFT_MIN_T = 8.0  # ... and so is a slope within this many standard errors of zero
SILENT_PEAK = 1e-4  # -80 dBFS


@dataclass(frozen=True)
class DriftEstimate:
    """Clock drift of the wet against the dry.

    ``ppm`` is 0 unless ``detected``; ``fitted_ppm`` is the fitted slope whatever its size;
    ``times_s`` and ``latencies`` (samples) are the window estimates the fit kept.
    """

    ppm: float
    detected: bool
    fitted_ppm: float
    residual_samples: float
    times_s: tuple[float, ...]
    latencies: tuple[float, ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return dataclasses.asdict(self)


def fractional_delay(x: np.ndarray, delay: float) -> np.ndarray:
    """Delay ``(channels, n)`` or ``(n,)`` audio by ``delay`` samples (any sign), same length.

    The integer part is an exact shift; the fraction a band-limited FFT phase shift with zero
    padding, so nothing wraps around. Samples shifted in from outside are zeros. float32 out.
    """
    arr = np.asarray(x)
    arr = arr.astype(np.float32 if arr.dtype == np.float32 else np.float64)  # FFT precision
    n, k = arr.shape[-1], int(round(delay))
    frac = float(delay) - k
    if frac != 0.0 and n:
        size = sp_fft.next_fast_len(n + 8192, real=True)
        spectrum = sp_fft.rfft(arr, size, axis=-1)
        phase = np.exp(-2j * np.pi * frac * np.arange(spectrum.shape[-1]) / size)
        if size % 2 == 0:
            phase[-1] = np.cos(np.pi * frac)  # the Nyquist bin stays real
        spectrum *= phase.astype(spectrum.dtype)
        arr = sp_fft.irfft(spectrum, size, axis=-1)[..., :n]
    out = np.zeros_like(arr)
    if 0 <= k < n:
        out[..., k:] = arr[..., : n - k]
    elif -n < k < 0:
        out[..., :k] = arr[..., -k:]
    return out.astype(np.float32)


def estimate_latency(
    dry: np.ndarray, wet: np.ndarray, sample_rate: int, max_latency_s: float = 1.0
) -> float:
    """The wet's delay behind the dry in samples (fractional; negative if the wet leads).

    With clock drift, the latency at the dry's first sample. Raises :class:`FxcloneError`
    when either is silent, they do not belong together, or the latency exceeds the limit.
    """
    return analyse(as_mono(dry, "dry"), as_mono(wet, "wet"), int(sample_rate), max_latency_s)[0]


def estimate_drift(
    dry: np.ndarray, wet: np.ndarray, sample_rate: int, max_latency_s: float = 1.0
) -> DriftEstimate:
    """Clock drift of the wet against the dry, from latencies measured across the file."""
    return analyse(as_mono(dry, "dry"), as_mono(wet, "wet"), int(sample_rate), max_latency_s)[3]


def correct_drift(wet: np.ndarray, ppm: float) -> np.ndarray:
    """Resample ``(channels, n)`` or ``(n,)`` audio recorded ``ppm`` fast onto the dry's clock.

    The output has about ``n / (1 + ppm * 1e-6)`` samples (soxr, very high quality), float32.
    """
    arr = np.asarray(wet, dtype=np.float64)
    if ppm == 0.0:
        return arr.astype(np.float32)
    import soxr

    two_d = np.atleast_2d(arr)
    out = soxr.resample(two_d.T, 1e6 * (1.0 + ppm * 1e-6), 1e6, quality="VHQ")
    out = np.ascontiguousarray(np.asarray(out, dtype=np.float32).reshape(-1, two_d.shape[0]).T)
    return out[0] if arr.ndim == 1 else out


# --- analysis -------------------------------------------------------------------------------


def as_two_d(x: np.ndarray, name: str) -> np.ndarray:
    arr = np.asarray(x, dtype=np.float64)
    arr = arr[None, :] if arr.ndim == 1 else arr
    if arr.ndim != 2 or arr.shape[1] < 2 or not np.all(np.isfinite(arr)):
        raise FxcloneError(
            f"the {name} signal must be finite (channels, samples) audio of 2 samples or more "
            f"(got shape {np.shape(x)}); pass decoded audio"
        )
    return arr


def as_mono(x: np.ndarray, name: str) -> np.ndarray:
    mono = as_two_d(x, name).mean(axis=0)
    mono -= mono.mean()
    peak = float(np.max(np.abs(mono)))
    if peak < SILENT_PEAK:
        raise FxcloneError(
            f"the {name} signal is silent (peak {20 * math.log10(max(peak, 1e-12)):.0f} dBFS "
            "after removing DC); check the routing and level of the recording"
        )
    return mono


def _take(x: np.ndarray, start: int, length: int) -> np.ndarray:
    """``x[start : start + length]`` with zeros outside ``x``."""
    out = np.zeros(length)
    lo, hi = max(start, 0), min(start + length, x.size)
    if hi > lo:
        out[lo - start : hi - start] = x[lo:hi]
    return out


def analyse(
    d: np.ndarray, w: np.ndarray, sr: int, max_latency_s: float
) -> tuple[float, float, bool, DriftEstimate, tuple[list[int], int, float]]:
    """``(latency at the first sample, correlation, polarity inverted, drift, windows)``;
    ``windows`` is ``(starts, size, sign)`` of those that agreed."""
    max_lag = max_latency_s * sr
    reach = round(max_lag + max(max_lag, sr))  # beyond the limit, to say by how much it is
    size = int(min(d.size, max(WINDOW_S[0] * sr, min(WINDOW_S[1] * sr, d.size / 8))))
    starts = np.round(np.linspace(0, d.size - size, int(np.clip(d.size // size, 1, MAX_WINDOWS))))
    starts = starts.astype(np.int64)
    level = np.array([np.sqrt(np.mean(d[s : s + size] ** 2)) for s in starts])
    sounding = level > 0.01 * level.max()  # within 40 dB of the loudest window
    lag, ncc = np.array([_coarse(d, w, int(s), size, reach) for s in starts]).T
    good = sounding & (np.abs(ncc) >= MIN_CORRELATION)
    inliers = _consensus(starts + size / 2, lag, good, max(4.0, COARSE_TOL_MS * sr / 1000))
    if np.sum(inliers) < max(1, min(3, math.ceil(0.25 * int(np.sum(sounding))))):
        best = float(np.max(np.abs(ncc[sounding]))) if np.any(sounding) else 0.0
        raise FxcloneError(
            f"no consistent correlation peak between the dry and the wet (best normalised "
            f"correlation {best:.3f}; it must reach {MIN_CORRELATION} at consistent lags): the "
            "files do not belong together; pass the recording made from this dry signal, or "
            f"raise the latency limit --max-latency (now {max_latency_s:g} s) if it starts later"
        )
    sign = 1.0 if np.sum(ncc[inliers]) >= 0 else -1.0
    inliers &= np.sign(ncc) == sign
    chosen = [int(v) for v in starts[inliers]]
    fine, corr, times = np.array(
        [refine(d, w, [s], size, int(k), sign) for s, k in zip(chosen, lag[inliers], strict=True)]
    ).T
    drift = _drift(times, fine, d.size, sr)
    kept_t, kept = np.asarray(drift.times_s) * sr, np.asarray(drift.latencies)
    if drift.detected:
        latency = float(np.mean(kept - drift.ppm * 1e-6 * kept_t))
    else:  # one estimate from all agreeing windows together
        latency = refine(d, w, chosen, size, round(float(np.median(kept))), sign)[0]
    if abs(latency) > max_lag:
        raise FxcloneError(
            f"the latency is {latency:.1f} samples ({1000 * latency / sr:.1f} ms), beyond the "
            f"limit of {max_latency_s:g} s; pass --max-latency "
            f"{math.ceil(abs(latency) / sr * 10) / 10 + 0.1:g} or trim the recording's start"
        )
    return latency, float(np.median(np.abs(corr))), sign < 0, drift, (chosen, size, sign)


def _coarse(d: np.ndarray, w: np.ndarray, start: int, size: int, reach: int) -> tuple[int, float]:
    """Integer lag within +-``reach`` of the largest |GCC-PHAT^0.8| and the plain normalised
    correlation there."""
    lo, hi = -reach, reach
    seg_d = d[start : start + size]
    seg_w = _take(w, start + lo, size + hi - lo)
    n = sp_fft.next_fast_len(seg_w.size + size, real=True)
    cross = np.conj(sp_fft.rfft(seg_d, n)) * sp_fft.rfft(seg_w, n)
    magnitude = np.abs(cross)
    cross /= (magnitude + 1e-12 * float(magnitude.max()) + 1e-300) ** 0.8
    m = int(np.argmax(np.abs(sp_fft.irfft(cross, n)[: hi - lo + 1])))
    match = seg_w[m : m + size]
    energy = float(np.sum(match**2) * np.sum(seg_d**2))
    return lo + m, float(np.dot(seg_d, match) / math.sqrt(energy)) if energy > 0 else 0.0


def refine(
    d: np.ndarray, w: np.ndarray, starts: list[int], size: int, lag: int, sign: float
) -> tuple[float, float, float]:
    """Sub-sample lag near ``lag``, the normalised correlation there, and the time it holds at.

    The correlation of the Hann-windowed signals, summed over the windows at ``starts``, peaks
    at a whole lag within 8 of ``lag``; from the parabola through it and its neighbours,
    Newton's method finds the peak of its band-limited (sinc) interpolation.
    """
    window = np.hanning(size)
    n = sp_fft.next_fast_len(size + 64, real=True)  # circular: the windows' ends are ~0
    cross = np.zeros(n // 2 + 1, dtype=np.complex128)
    energy_d = energy_w = 0.0
    for s in starts:
        a, b = d[s : s + size] * window, _take(w, s + lag, size) * window
        cross += sign * np.conj(sp_fft.rfft(a, n)) * sp_fft.rfft(b, n)
        energy_d, energy_w = energy_d + float(np.dot(a, a)), energy_w + float(np.dot(b, b))
    near = np.roll(sp_fft.irfft(cross, n), 9)[:19]  # lags -9 .. 9
    k = int(np.argmax(near[1:-1])) + 1
    rm, r0, rp = near[k - 1 : k + 2]
    k -= 9
    tau = k + (
        float(np.clip(0.5 * (rm - rp) / (rm - 2 * r0 + rp), -1, 1)) if rm + rp < 2 * r0 else 0
    )
    cross[1 : (n + 1) // 2] *= 2.0  # the one-sided spectrum stands for both signs of frequency
    omega = 2 * np.pi * np.arange(cross.size) / n
    peak = r0 * n
    for _ in range(6):
        z = cross * np.exp(1j * omega * tau)
        peak, first, second = z.real.sum(), -(omega * z.imag).sum(), -(omega**2 * z.real).sum()
        if second >= 0:
            break
        tau = float(np.clip(tau - first / second, k - 1.5, k + 1.5))
        if abs(first / second) < 1e-4:
            break
    energy = energy_d * energy_w
    # The peak averages the lag over a window weighted by the signal's slope energy, so with
    # drift it measures the lag at this centroid, not at the window's middle.
    slope = np.diff(d[starts[0] : starts[0] + size] * window) ** 2
    centroid = starts[0] + 0.5 + float(np.sum(np.arange(slope.size) * slope) / np.sum(slope))
    return lag + tau, sign * peak / n / math.sqrt(energy) if energy > 0 else 0.0, centroid


def _consensus(x: np.ndarray, y: np.ndarray, good: np.ndarray, tol: float) -> np.ndarray:
    """Mask of the good points within ``tol`` of the line (flat through one point, or through
    two, at most :data:`MAX_DRIFT_PPM` steep) that most of them agree with."""
    idx = np.flatnonzero(good)
    lines = [(0.0, float(y[i])) for i in idx]
    for a in idx:
        for b in idx[idx > a]:
            slope = (y[b] - y[a]) / (x[b] - x[a])
            if abs(slope) <= MAX_DRIFT_PPM * 1e-6:
                lines.append((float(slope), float(y[a] - slope * x[a])))
    best, best_score = np.zeros(x.size, dtype=bool), (0, -np.inf)
    for slope, icpt in lines:
        error = np.abs(y - (icpt + slope * x))
        mask = good & (error <= tol)
        score = (int(mask.sum()), -float(error[mask].sum()))
        if score > best_score:
            best, best_score = mask, score
    return best


def _drift(t: np.ndarray, lat: np.ndarray, n: int, sr: int) -> DriftEstimate:
    """Least-squares line of latency against time through the windows that agree within
    :data:`FINE_TOL` samples, dropping those 4 robust deviations off it; slope in ppm."""
    keep = _consensus(t, lat, np.ones(t.size, dtype=bool), FINE_TOL)
    slope, resid, stderr = 0.0, 0.0, math.inf
    for _ in range(3):
        tc = t[keep] - t[keep].mean()
        sxx = float(np.sum(tc**2))
        if keep.sum() < 3 or sxx <= 0:
            break
        slope = float(np.sum(tc * lat[keep]) / sxx)
        res = lat - lat[keep].mean() - slope * (t - t[keep].mean())
        resid = float(np.sqrt(np.sum(res[keep] ** 2) / (int(keep.sum()) - 2)))
        stderr = resid / math.sqrt(sxx)
        tighter = keep & (
            np.abs(res) <= max(4 * 1.4826 * float(np.median(np.abs(res[keep]))), 0.05)
        )
        if tighter.sum() == keep.sum() or tighter.sum() < 3:
            break
        keep = tighter
    detected = (
        keep.sum() >= 4
        and abs(slope) * n >= DRIFT_MIN_SAMPLES
        and abs(slope) >= DRIFT_MIN_T * stderr
    )
    return DriftEstimate(
        ppm=slope * 1e6 if detected else 0.0,
        detected=bool(detected),
        fitted_ppm=slope * 1e6,
        residual_samples=resid,
        times_s=tuple(float(v) / sr for v in t[keep]),
        latencies=tuple(float(v) for v in lat[keep]),
    )
