"""What frame-wise analysis of a dry/wet stream says about an oscillator-driven effect.

Steps 1-3 of fitting the oscillator model (:mod:`fxclone.models.lfo_fit`): the frames' wet/dry
correlation and impulse response, the oscillator's rate from their modulation spectrum, and
the swept delays (voices) their peaks follow.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import numpy as np
import scipy.fft
import scipy.ndimage

_MIN_RATE, _MAX_RATE = 0.03, 15.0  # Hz searched for the oscillator
_LINE = 4.0  # salience (power over the local median) of a modulation line
_SILENT = 1e-6  # frames whose dry power (mean square) is below this are left out


def _frame_starts(samples: int, sample_rate: int, seconds: float) -> tuple[int, np.ndarray]:
    """Frames of ``seconds`` (rounded to a power of two samples) every 1/64 s: ``(frame
    length, first samples)``."""
    frame = 1 << max(6, round(math.log2(seconds * sample_rate)))
    hop = max(1, round(sample_rate / 64))
    return frame, np.arange(0, max(1, samples - frame), hop)


def _spectra(
    dry: np.ndarray, wet: np.ndarray, max_lag: int, frame: int, starts: np.ndarray, size: int
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """Up to 256 frames at a time: ``(indices into starts, dry frames with max_lag samples of
    past, their spectra, cross-spectra with the wet frames)`` (FFTs of ``size``)."""
    padded = np.concatenate([np.zeros(max_lag), dry])
    for chunk in np.array_split(np.arange(starts.size), max(1, starts.size // 256)):
        xs = np.stack([padded[s : s + frame + max_lag] for s in starts[chunk]])
        ws = np.stack([wet[s : s + frame] for s in starts[chunk]])
        spec = scipy.fft.rfft(xs, size)
        yield chunk, xs, spec, spec * np.conj(scipy.fft.rfft(ws, size))


def frame_correlation(
    dry: np.ndarray, wet: np.ndarray, sample_rate: int, max_lag: int, frame_s: float | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(centres_s (F,), R (F, L), P (F, L), valid (F,))`` at lags ``0..max_lag``: each
    frame's wet/dry correlation normalised by the frame's dry energy (``R``, which follows
    gains), and the frame's impulse response (``P``: the cross-spectrum over the regularised
    dry auto-spectrum, so each delayed path is one sharp peak of its own gain whatever the
    material's spectrum). Frames hold ``frame_s``
    seconds (rounded to a power of two; by default the longer of 43 ms and 1.5 ``max_lag``):
    a fast sweep needs short frames to be followed."""
    seconds = frame_s or max(0.043, 1.5 * max_lag / sample_rate)
    frame, starts = _frame_starts(dry.size, sample_rate, seconds)
    size = scipy.fft.next_fast_len(frame + max_lag, real=True)
    rows, paths, energy = [], [], []
    for _, xs, spec, cross in _spectra(dry, wet, max_lag, frame, starts, size):
        # lag l is index max_lag - l of the correlation
        rows.append(scipy.fft.irfft(cross, size)[:, max_lag::-1])
        auto = np.abs(spec) ** 2
        floor = 1e-2 * np.mean(auto, axis=1, keepdims=True) + 1e-30
        paths.append(scipy.fft.irfft(cross / (auto + floor), size)[:, max_lag::-1])
        energy.append(np.sum(xs[:, max_lag:] ** 2, axis=1))
    e = np.concatenate(energy)
    valid = e / frame > _SILENT
    r = np.concatenate(rows) / np.maximum(e, 1e-30)[:, None]
    p = np.concatenate(paths)
    r[~valid] = 0.0
    p[~valid] = 0.0
    return (starts + frame / 2) / sample_rate, r, p, valid


def folded_response(
    dry: np.ndarray,
    wet: np.ndarray,
    sample_rate: int,
    max_lag: int,
    rate: float,
    frame_s: float,
    bins: int = 64,
    cycles_at: Callable[[np.ndarray], np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """``(times_s (bins,), P (bins, L))``: the impulse response at each of ``bins`` phases of
    an oscillator at ``rate``, from every frame at that phase. The frames' cross- and
    auto-spectra are summed per phase bin before the division (epoch folding), so the
    response at a phase is estimated from all the material played there: one frame of a
    sine or a chord shows a delayed path only as a ripple at its partials (every lag a
    period away looks alike), while a hundred frames of different notes pin it to one lag.
    At a wrong rate the bins mix every phase and the swept paths blur away. ``times_s`` are
    the bins' centres as times within the first cycle (for :func:`find_voices`). An oscillator
    whose speed changes is folded by ``cycles_at``, its cycles turned at times (s)."""
    frame, starts = _frame_starts(dry.size, sample_rate, frame_s)
    size = scipy.fft.next_fast_len(frame + max_lag, real=True)
    centres = (starts + frame / 2) / sample_rate
    cycles = cycles_at(centres) if cycles_at is not None else rate * centres
    which = np.floor((cycles % 1.0) * bins).astype(np.int64) % bins
    cross = np.zeros((bins, size // 2 + 1), np.complex128)
    auto = np.zeros((bins, size // 2 + 1))
    for chunk, _, spec, product in _spectra(dry, wet, max_lag, frame, starts, size):
        for k, rows in _groups(which[chunk]):
            cross[k] += product[rows].sum(axis=0)
            auto[k] += (np.abs(spec[rows]) ** 2).sum(axis=0)
    floor = 1e-3 * np.mean(auto, axis=1, keepdims=True) + 1e-30
    p = scipy.fft.irfft(cross / (auto + floor), size)[:, max_lag::-1]
    return (np.arange(bins) + 0.5) / bins / rate, p


def _groups(labels: np.ndarray) -> list[tuple[int, np.ndarray]]:
    """``(label, indices)`` for each distinct label."""
    order = np.argsort(labels, kind="stable")
    values, first = np.unique(labels[order], return_index=True)
    return list(zip(values.tolist(), np.split(order, first[1:]), strict=True))


def _salience(times: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Power of the columns of ``z`` over frames (summed), over its local median: lines stand
    out, the material's broad changes do not. ``(log-spaced frequencies, salience)``."""
    step = float(np.median(np.diff(times)))
    size = scipy.fft.next_fast_len(8 * times.size)
    power = np.sum(np.abs(scipy.fft.rfft(z, size, axis=0)) ** 2, axis=1)
    freqs = np.fft.rfftfreq(size, step)
    grid = np.geomspace(_MIN_RATE, min(_MAX_RATE, 0.45 / step), 4000)
    on_grid = np.interp(grid, freqs, power)
    width = int(round(math.log(1.25) / math.log(grid[1] / grid[0])))
    return grid, on_grid / (scipy.ndimage.median_filter(on_grid, 2 * width + 1) + 1e-30)


def _tracks(x: np.ndarray, valid: np.ndarray, always: list[int]) -> np.ndarray:
    """The 64 lag columns of ``x`` (with ``always``) that vary most, each standardised."""
    varied = (x - x.mean(axis=0, where=valid[:, None], keepdims=True)) * valid[:, None]
    most = np.argsort(varied.var(axis=0))[-max(0, min(x.shape[1], 64) - len(always)) :]
    lags = np.union1d(np.asarray(always, dtype=np.int64), most)
    return varied[:, lags] / (varied[:, lags].std(axis=0) + 1e-12)


def rate_candidates(
    times: np.ndarray,
    r: np.ndarray,
    p: np.ndarray,
    valid: np.ndarray,
    own: np.ndarray,
    transfer: tuple[np.ndarray, np.ndarray] | None = None,
) -> list[float]:
    """Candidates for the oscillator's rate (Hz): the strongest modulation line of the gain
    (``R`` at lag 0), of the lags of ``R`` that vary most, of the delayed paths (``P``) and
    of the ``transfer`` tracks (``(times, tracks)`` from :func:`transfer_tracks`), each with
    the subharmonics it may be (the fit decides).

    ``own`` is ``R`` of the dry signal against itself: the material's own modulation (a
    note's vibrato moves its autocorrelation), whose lines are discounted."""
    _, material = _salience(times, _tracks(own, valid, []))
    discount = np.maximum(material, 1.0)
    # the gain alone (lag 0: clean, but one track), the lags of R that vary most (the
    # material's own changes discounted), the delayed paths of P
    inner = p.copy()  # the deconvolution's edges (lag 0's sidelobes, the last lags) left out
    inner[:, :2] = 0.0
    inner[:, int(0.95 * (p.shape[1] - 1)) :] = 0.0
    features = [(times, _tracks(r[:, :1], valid, [0])), (times, _tracks(r, valid, [0])),
                (times, _tracks(inner, valid, [])), *([transfer] if transfer else [])]  # fmt: skip
    scored = [_salience(t, z) for t, z in features]
    scored = [(grid, sal / discount) if i < 2 else (grid, sal)
              for i, (grid, sal) in enumerate(scored)]  # fmt: skip
    candidates: list[float] = []
    for (t, z), (grid_s, sal) in zip(features, scored, strict=True):
        if z.size == 0 or float(np.max(sal)) < _LINE:
            continue
        span = t[-1] - t[0] + float(np.median(np.diff(t)))
        peak = _refine_peak(t, z, float(grid_s[np.argmax(sal)]), 2.0 / span)
        # The strongest line may be a harmonic: a sweep's peak passes a lag twice a cycle
        # (many harmonics), two voices in antiphase repeat every half cycle. The fundamental
        # with the most salient harmonics (the sum of their log salience, up to the tenth)
        # names the divisor; the line, that fundamental and half of each are candidates.
        log_sal = np.log(np.maximum(sal, 1.0))
        harmonic_sum = sum(np.interp(k * grid_s, grid_s, log_sal, right=0.0) for k in range(1, 11))
        divisor = max(1, round(peak / float(grid_s[np.argmax(harmonic_sum)])))
        for k in sorted({1, 2, divisor, 2 * divisor}):
            rate = peak / k
            if rate >= _MIN_RATE and all(abs(rate / c - 1) > 0.01 for c in candidates):
                candidates.append(rate)
    return candidates


def transfer_tracks(
    dry: np.ndarray, wet: np.ndarray, sample_rate: int
) -> tuple[np.ndarray, np.ndarray]:
    """``(centres_s (F,), tracks (F, B))``: how the wet/dry transfer's magnitude at each
    partial moves. In frames of about 85 ms (long enough to resolve the partials of notes;
    hop as :func:`frame_correlation`), ``|W / X|`` at every bin from 50 Hz to 2 kHz where the
    dry frame has energy (power over a millionth of the stream's strongest bin), less the
    bin's mean, and zero where it has none; bins with energy in under 5 % of the frames are
    left out, the rest standardised. A swept delay moves its comb across the partials, so
    each bin's magnitude rises and falls at the oscillator's rate (twice it for two voices
    in antiphase) even where the material is too narrowband for the impulse response ``P``
    to show a peak."""
    frame, starts = _frame_starts(dry.size, sample_rate, 0.085)
    freqs = np.fft.rfftfreq(frame, 1.0 / sample_rate)
    band = (freqs >= 50.0) & (freqs <= 2000.0)
    window = np.hanning(frame)
    power, ratio = [], []
    for chunk in np.array_split(starts, max(1, starts.size // 256)):
        xs = scipy.fft.rfft(np.stack([dry[s : s + frame] for s in chunk]) * window)[:, band]
        ws = scipy.fft.rfft(np.stack([wet[s : s + frame] for s in chunk]) * window)[:, band]
        power.append(np.abs(xs) ** 2)
        ratio.append(np.abs(ws) / np.maximum(np.abs(xs), 1e-30))
    auto, z = np.concatenate(power), np.concatenate(ratio)
    heard = auto > 1e-6 * max(float(auto.max(initial=0.0)), 1e-30)
    keep = heard.mean(axis=0) >= 0.05
    heard, z = heard[:, keep], z[:, keep]
    mean = np.sum(z * heard, axis=0) / np.maximum(heard.sum(axis=0), 1)
    z = (z - mean) * heard
    return (starts + frame / 2) / sample_rate, z / (z.std(axis=0) + 1e-12)


def _refine_peak(times: np.ndarray, z: np.ndarray, peak: float, width: float) -> float:
    """The maximum of the exact transform of ``z``'s columns (power summed) near ``peak``."""

    def exact(f: np.ndarray) -> np.ndarray:
        basis = np.exp(-2j * math.pi * np.outer(f, times))  # (grid, F)
        return np.sum(np.abs(basis @ z) ** 2, axis=1)

    for _ in range(4):  # zoom in on the peak
        grid = np.linspace(peak - width, peak + width, 41)
        peak = float(grid[np.argmax(exact(grid))])
        width /= 10.0
    return peak


def find_voices(
    times: np.ndarray, r: np.ndarray, valid: np.ndarray, rate: float, count: int, sample_rate: int
) -> list[tuple[float, float, float, float]]:
    """Up to ``count`` swept delays ``(centre, depth, phase, votes)`` (samples, samples, rad,
    share of frames) that the frames' correlation peaks follow at ``rate``."""
    if count == 0:
        return []
    _, lag, when, weight = _frame_peaks(times, r, valid)
    th = 2.0 * math.pi * rate * when
    max_lag = r.shape[1] - 1
    depth_step = max(1.0, 1e-4 * sample_rate)
    depths = np.arange(0.0, min(max_lag / 2, 6e-3 * sample_rate), depth_step)
    phases = np.linspace(0.0, 2.0 * math.pi, 181)[:-1]
    centre_bin = 2.0
    bins = int(max_lag / centre_bin) + 2
    sines = np.sin(th[:, None] + phases[None])  # (votes, phases)
    weights = np.repeat(weight[:, None], phases.size, axis=1)
    flat = np.zeros(depths.size * phases.size * bins)
    for di, depth in enumerate(depths):
        centre = lag[:, None] - depth * sines
        b = np.rint(centre / centre_bin).astype(np.int64)
        ok = (b >= 0) & (b < bins)
        index = (di * phases.size + np.arange(phases.size)[None]) * bins + b
        flat += np.bincount(index[ok], weights=weights[ok], minlength=flat.size)
    acc = flat.reshape(depths.size, phases.size, bins)
    acc[0] = 0.0  # a peak that does not move is no swept voice (e.g. the dry path's edge)
    total = float(np.sum(weight)) + 1e-12
    voices: list[tuple[float, float, float, float]] = []
    for _ in range(count):
        di, pi, bi = (int(i) for i in np.unravel_index(int(np.argmax(acc)), acc.shape))
        votes = float(acc[di, pi, bi]) / total
        if votes <= 0 or (voices and votes < 0.25 * voices[0][3]):
            break
        centre, depth, phase = bi * centre_bin, float(depths[di]), float(phases[pi])
        centre, depth, phase = _refine_sweep(lag, th, centre, depth, phase, depth_step)
        voices.append((centre, depth, phase, votes))
        # the same sweep at neighbouring settings (a second voice may share the centre
        # and depth at another phase, as a chorus's voices do)
        near_phase = np.arange(pi - 9, pi + 10) % phases.size
        acc[max(0, di - 2) : di + 3][:, near_phase, max(0, bi - 3) : bi + 4] = 0.0
    return voices


def _frame_peaks(
    times: np.ndarray, r: np.ndarray, valid: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Up to three local maxima of ``|r|`` per frame (about 800 frames spread over the
    stream; lags 2 to 95 % of the largest; each at least a fifth of its frame's strongest):
    ``(frames, lags, times_s, strengths)``, one entry per peak."""
    frames = np.flatnonzero(valid)[:: max(1, int(valid.sum()) // 800)]
    mag = np.abs(r[frames])
    local = np.zeros_like(mag)  # local maxima only: one lag per peak
    inner = (mag[:, 1:-1] >= mag[:, :-2]) & (mag[:, 1:-1] > mag[:, 2:])
    local[:, 1:-1] = np.where(inner, mag[:, 1:-1], 0.0)
    local[:, :2] = 0.0  # lag 0's own edge
    local[:, int(0.95 * (mag.shape[1] - 1)) :] = 0.0  # the deconvolution's edge
    top = np.argsort(local, axis=1)[:, -3:]  # (F, 3)
    strength = np.take_along_axis(local, top, axis=1)
    keep = strength >= 0.2 * strength.max(axis=1, keepdims=True)
    f_idx, p_idx = np.nonzero(keep)
    lag = top[f_idx, p_idx].astype(np.float64)
    return frames, lag, times[frames][f_idx], strength[f_idx, p_idx]


def sharpen_rate(
    times: np.ndarray,
    r: np.ndarray,
    valid: np.ndarray,
    rate: float,
    voice: tuple[float, float, float, float],
    sample_rate: int,
) -> float:
    """The rate within +-1 % of ``rate`` at which the frames' peaks best follow ``voice``'s
    sweep (most peaks within a sample or two once the sweep is refitted), the sweep's phase
    held at the middle of the stream. The modulation spectrum places a line to a fraction of
    its width (1 / the stream's length); this follows the sweep itself over the stream."""
    _, lag, when, _ = _frame_peaks(times, r, valid)
    centre, depth, phase, _ = voice
    middle = float(np.median(when))
    tol = max(1.0, 1e-4 * sample_rate)

    def followed(candidate: float) -> int:
        turned = phase + 2.0 * math.pi * (rate - candidate) * middle
        th = 2.0 * math.pi * candidate * when
        c, d, ph = _refine_sweep(lag, th, centre, depth, turned, tol)
        return int(np.sum(np.abs(lag - c - d * np.sin(th + ph)) <= tol))

    counts = [(followed(float(c)), float(c)) for c in rate * (1.0 + np.linspace(-0.01, 0.01, 401))]
    count, best = max(counts)
    # Over a few cycles every rate in the band follows the peaks about as well: move only
    # where the sweep is followed clearly better (a tenth more peaks) than at the line.
    return best if count > 1.1 * followed(rate) else rate


def _refine_sweep(
    lag: np.ndarray, theta: np.ndarray, centre: float, depth: float, phase: float, tol: float
) -> tuple[float, float, float]:
    """Least squares of ``centre + a cos theta + b sin theta`` on the peaks near a sweep."""
    for width in (4.0 * tol, 2.0 * tol, tol):
        near = np.abs(lag - centre - depth * np.sin(theta + phase)) <= max(width, 1.5)
        if near.sum() < 8:
            break
        basis = np.stack([np.ones(near.sum()), np.cos(theta[near]), np.sin(theta[near])], 1)
        (c, a, b), *_ = np.linalg.lstsq(basis, lag[near], rcond=None)
        # a cos t + b sin t = depth sin(t + phase): depth cos phase = b, depth sin phase = a
        centre, depth, phase = float(c), float(math.hypot(a, b)), float(math.atan2(a, b))
    return centre, depth, phase


def _sweep_shape(u: np.ndarray, power: float) -> np.ndarray:
    """A sine (``power`` 0) or the cusped sawtooth ``1 - 2 |saw|^power`` at angles ``u``."""
    if not power:
        return np.sin(u)
    return 1.0 - 2.0 * np.abs(np.mod(u / math.pi + 1.0, 2.0) - 1.0) ** power


def _inliers(t: np.ndarray, k: np.ndarray, rate: float, sweep: tuple[float, ...]) -> np.ndarray:
    centre, depth, phase, power = sweep
    return np.abs(centre + depth * _sweep_shape(2 * math.pi * rate * t + phase, power) - k) < 3.0


def _refit(
    t: np.ndarray, k: np.ndarray, rate: float, sweep: tuple[float, ...], tolerance: float
) -> tuple[float, float, float, float]:
    """Centre and depth by least squares on the points within ``tolerance`` samples of
    ``sweep``, shrinking the tolerance to 3 samples."""
    centre, depth, phase, power = sweep
    shape = _sweep_shape(2 * math.pi * rate * t + phase, power)
    while True:
        inliers = np.abs(centre + depth * shape - k) < tolerance
        if inliers.sum() < 2:
            break
        basis = np.stack([np.ones(int(inliers.sum())), shape[inliers]], axis=1)
        (centre, depth), *_ = np.linalg.lstsq(basis, k[inliers], rcond=None)
        if tolerance <= 3.0:
            break
        tolerance = max(3.0, tolerance / 2)
    return float(centre), float(depth), float(phase), float(power)


def cusp_sweep(
    times: np.ndarray, p: np.ndarray, valid: np.ndarray, rate: float
) -> tuple[float, float, float, float, float] | None:
    """``(centre, depth, phase, power, rate)`` (samples, samples, rad, 1 or 2, Hz: within
    1 % of ``rate``, where it is followed best) of a sweep along
    ``1 - 2 |saw|^power`` (a triangle, or a thru-zero flanger's folded parabola with its cusp
    at the lowest delay) that the frames' strongest paths follow clearly better than any
    sine at ``rate`` (a tenth more of them within 3 samples, and a tenth of all); ``None``
    where none does.

    Each frame's strongest path (lags from 2, standing 8 times over the frame's median) is a
    point. Tonal frames' peaks are aliases and a sweep through zero hides among the direct
    path's lags for part of its cycle, so the sweeps vote (a Hough transform: for each shape,
    128 phases and 129 depths, the centre each point implies, in bins of 8 samples); the
    best-voted per shape is refitted by least squares on the points near it and its phase
    searched within a step."""
    lags = np.abs(p[:, 2:])
    if lags.shape[1] < 16:
        return None
    peak = np.argmax(lags, axis=1)
    strong = lags[np.arange(peak.size), peak] > 8.0 * (np.median(lags, axis=1) + 1e-30)
    use = valid & strong
    if use.sum() < 16:
        return None
    t, k = times[use], peak[use] + 2.0
    # paths at the ends of the lags searched are the direct path's smear and the
    # deconvolution's edge, the same lag in every frame: they would outvote any sweep
    inside = (k > 4) & (k < lags.shape[1] - 2)
    t, k = t[inside], k[inside]
    if t.size < 16:
        return None
    span = float(lags.shape[1] + 2)
    depths = np.linspace(-0.5 * span, 0.5 * span, 129)
    step, bins = 8.0, int(span // 8.0) + 1
    phases = np.linspace(0.0, 2.0 * math.pi, 128, endpoint=False)
    best: dict[float, tuple[int, tuple[tuple[float, float, float, float], float]]] = {}
    for power in (0.0, 1.0, 2.0):
        votes = []
        for phase in phases:
            shape = _sweep_shape(2 * math.pi * rate * t + phase, power)
            implied = k[None] - depths[:, None] * shape[None]  # each point's centre
            where = np.floor(implied / step).astype(np.int64)
            inside = (where >= 0) & (where < bins)
            cells = (np.arange(depths.size)[:, None] * bins + where)[inside]
            counts = np.bincount(cells, minlength=depths.size * bins)
            cell = int(np.argmax(counts))
            votes.append(
                (int(counts[cell]), phase, depths[cell // bins], (cell % bins + 0.5) * step)
            )
        _, phase, depth, centre = max(votes)
        sweep = _refit(t, k, rate, (centre, depth, phase, power), 2 * step)
        best[power] = _polish_sweep(t, k, rate, sweep, phases[1] - phases[0], 0.0)
    sine = best[0.0][0]
    count, (found, _) = max(best[1.0], best[2.0])
    if count < max(1.1 * sine, 0.1 * t.size):
        return None
    # the rate within +-1 %: ten cycles at a rate 0.3 % off drift by a tenth of a sample...
    # a hundred samples where a thru-zero sweep is steep
    _, (found, rate) = _polish_sweep(t, k, rate, found, phases[1] - phases[0], 0.01)
    return (*found, rate)


def _polish_sweep(
    t: np.ndarray, k: np.ndarray, rate: float, sweep: tuple, step: float, spread: float
) -> tuple[int, tuple[tuple[float, float, float, float], float]]:
    """The sweep's phase within a step (and its rate within ``+-spread``) for the most
    points within 3 samples, centre and depth refitted: ``(count, (sweep, rate))``."""
    best = (int(_inliers(t, k, rate, sweep).sum()), (sweep, rate))
    for at in rate * (1.0 + np.linspace(-spread, spread, 41 if spread else 1)):
        for phase in sweep[2] + np.linspace(-1, 1, 17) * step:
            trial = _refit(t, k, at, (sweep[0], sweep[1], float(phase), sweep[3]), 16.0)
            count = int(_inliers(t, k, at, trial).sum())
            if count > best[0]:
                best = (count, (trial, float(at)))
    return best
