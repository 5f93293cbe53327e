"""Two reference fits that put a model's ESR in context: the best linear filter and the best
memoryless waveshaper for the same training data.

If a neural model scores no better than :func:`fit_linear_fir`, the effect is (nearly) linear
and an impulse response would do; if it scores no better than :func:`fit_static`, the effect is
(nearly) a static curve. Both are exact least-squares fits, computed in well under a second
for minutes of audio, and ``fxclone evaluate`` reports them beside every model.

Pairs are ``(dry, wet)`` float arrays of shape ``(channels, samples)`` (usually ``(1, N)``) or
``(samples,)``. Several pairs may be given; each channel of each pair counts as one more
stretch of training data for the same single-channel fit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.fft
import scipy.linalg
import scipy.signal

from fxclone.errors import FxcloneError
from fxclone.metrics import esr

Pair = tuple[np.ndarray, np.ndarray]


def _stretches(
    dry_list: Sequence[np.ndarray], wet_list: Sequence[np.ndarray], max_samples: int | None
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Check the pairs and return them as float64 1-D (dry, wet) stretches, one per channel.

    Stops once ``max_samples`` samples in all have been collected (the last one is truncated).
    """
    if len(dry_list) != len(wet_list):
        raise FxcloneError(
            f"got {len(dry_list)} dry signal(s) but {len(wet_list)} wet signal(s); "
            "give one wet signal per dry signal"
        )
    if not dry_list:
        raise FxcloneError("no training audio given; pass at least one (dry, wet) pair")
    out: list[tuple[np.ndarray, np.ndarray]] = []
    budget = max_samples if max_samples is not None else np.inf
    for i, (dry, wet) in enumerate(zip(dry_list, wet_list, strict=True)):
        d = np.atleast_2d(np.asarray(dry, dtype=np.float64))
        w = np.atleast_2d(np.asarray(wet, dtype=np.float64))
        if d.shape != w.shape or d.ndim != 2:
            raise FxcloneError(
                f"pair {i}: dry has shape {np.shape(dry)} but wet has shape {np.shape(wet)}; "
                "align and trim the pair to the same (channels, samples)"
            )
        for ch in range(d.shape[0]):
            n = int(min(d.shape[1], budget))
            if n > 0:
                out.append((d[ch, :n], w[ch, :n]))
                budget -= n
    if not out:
        raise FxcloneError("the training pairs hold no samples; give audio at least 1 s long")
    return out


def fit_linear_fir(
    dry_list: Sequence[np.ndarray],
    wet_list: Sequence[np.ndarray],
    taps: int = 1024,
    max_samples: int = 2_000_000,
    ridge: float = 1e-6,
) -> np.ndarray:
    """Best causal FIR filter ``h`` with ``wet[n] ~ sum_k h[k] dry[n-k]``, by least squares.

    The normal equations ``R h = p`` are built from FFT auto- and cross-correlations (no design
    matrix), with ``R`` corrected at the signal ends so the fit is the exact least-squares
    solution for :func:`apply_fir`'s output (dry taken as zero before each stretch starts), then
    solved by Cholesky. Several stretches add their equations.

    Args:
        dry_list: dry signals, each ``(channels, samples)`` or ``(samples,)``.
        wet_list: the matching wet signals, same shapes.
        taps: filter length in samples (1024 is 21 ms at 48 kHz).
        max_samples: use at most this many samples in all (the first ones), to bound time.
        ridge: Tikhonov weight relative to the dry signal's mean power; keeps the solve stable
            when the dry audio leaves some frequencies empty.

    Returns:
        ``h``, float64 of shape ``(taps,)``.
    """
    if taps < 1:
        raise FxcloneError(f"taps={taps} is not a filter length; use a positive number of samples")
    r = np.zeros(taps)
    p = np.zeros(taps)
    edge = np.zeros((taps, taps))
    for d, w in _stretches(dry_list, wet_list, max_samples):
        n = d.size
        nfft = scipy.fft.next_fast_len(n + taps, real=True)
        spec_d = scipy.fft.rfft(d, nfft)
        # Zero padding to n + taps makes these exact linear (not circular) correlations.
        r += scipy.fft.irfft(spec_d * spec_d.conj(), nfft)[:taps]
        p += scipy.fft.irfft(spec_d.conj() * scipy.fft.rfft(w, nfft), nfft)[:taps]
        edge += _end_correction(d, taps)
    gram = scipy.linalg.toeplitz(r) - edge
    gram[np.diag_indices(taps)] += ridge * max(r[0], 1e-30) + 1e-30
    try:
        return scipy.linalg.cho_solve(scipy.linalg.cho_factor(gram), p)
    except np.linalg.LinAlgError:
        raise FxcloneError(
            f"the linear baseline could not be fitted with {taps} taps (the dry audio is too "
            "short or silent); use longer, non-silent training audio or fewer taps"
        ) from None


def _end_correction(dry: np.ndarray, taps: int) -> np.ndarray:
    """The part of the Toeplitz autocorrelation matrix that falls past the end of ``dry``.

    The least-squares Gram matrix is ``G[i, j] = sum_{n<N} dry[n-i] dry[n-j]``, while the
    autocorrelation counts products up to ``n = N - 1 + min(i, j)``. The difference ``D``
    obeys ``D[i+1, j+1] = D[i, j] + u[i] u[j]`` with ``u = dry[N-1], dry[N-2], ...``: a taps x
    taps fill, cheap next to the FFTs. Returns ``D``, ``(taps, taps)``.
    """
    u = np.zeros(taps)
    tail = dry[::-1][:taps]
    u[: tail.size] = tail
    d = np.zeros((taps, taps))
    for i in range(taps - 1):
        d[i + 1, 1:] = d[i, :-1] + u[i] * u[:-1]
    return d


def apply_fir(h: np.ndarray, dry: np.ndarray) -> np.ndarray:
    """Filter ``dry`` with the causal FIR ``h``, keeping the input's length.

    Args:
        h: filter taps, shape ``(taps,)``.
        dry: ``(channels, samples)`` or ``(samples,)``; each channel is filtered alike.

    Returns:
        float32 array of ``dry``'s shape (the convolution tail past the end is dropped).
    """
    x = np.asarray(dry, dtype=np.float64)
    kernel = np.asarray(h, dtype=np.float64).reshape((1,) * (x.ndim - 1) + (-1,))
    n = x.shape[-1]
    y = scipy.signal.oaconvolve(x, kernel, axes=-1)[..., :n]
    return y.astype(np.float32)


@dataclass(frozen=True)
class StaticCurve:
    """A memoryless waveshaper ``y = f(x)``: piecewise linear through ``(knots, values)``.

    Attributes:
        knots: increasing input levels, shape ``(bins + 1,)``, in full-scale units.
        values: output level at each knot, same shape.
    """

    knots: np.ndarray
    values: np.ndarray

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Evaluate ``f`` sample by sample; any shape in, float32 of the same shape out.

        Between knots the curve is interpolated linearly; beyond the outer knots it continues
        along the outer segments' slopes, so a louder input than trained on is not clipped.
        """
        xs = np.asarray(x, dtype=np.float64)
        k, v = self.knots, self.values
        y = np.interp(xs, k, v)
        lo, hi = xs < k[0], xs > k[-1]
        y[lo] = v[0] + (xs[lo] - k[0]) * (v[1] - v[0]) / (k[1] - k[0])
        y[hi] = v[-1] + (xs[hi] - k[-1]) * (v[-1] - v[-2]) / (k[-1] - k[-2])
        return y.astype(np.float32)


def fit_static(
    dry_list: Sequence[np.ndarray],
    wet_list: Sequence[np.ndarray],
    bins: int = 256,
    smoothness: float = 1e-6,
    max_samples: int | None = None,
) -> StaticCurve:
    """Best memoryless curve ``wet[n] ~ f(dry[n])``, piecewise linear, by least squares.

    Knots are evenly spaced from the dry audio's minimum to its maximum. Each sample touches
    only the two knots around it (linear-interpolation basis), so the normal equations are
    tridiagonal and built with ``bincount``. A small penalty on second differences of the knot
    values ties down knots that few samples reach (the loud tails) to their neighbours' line.

    Args:
        dry_list: dry signals, each ``(channels, samples)`` or ``(samples,)``.
        wet_list: the matching wet signals, same shapes.
        bins: number of segments between the ``bins + 1`` knots.
        smoothness: weight of the second-difference penalty relative to the average number of
            samples per knot.
        max_samples: use at most this many samples in all (the first ones); None uses all.

    Returns:
        The fitted :class:`StaticCurve`.
    """
    if bins < 2:
        raise FxcloneError(f"bins={bins} is too few for a curve; use at least 2 (e.g. 256)")
    stretches = _stretches(dry_list, wet_list, max_samples)
    lo = min(float(d.min()) for d, _ in stretches)
    hi = max(float(d.max()) for d, _ in stretches)
    if not hi > lo:
        raise FxcloneError(
            f"the dry training audio is constant ({lo:g}); a static curve needs a varying input"
        )
    knots = np.linspace(lo, hi, bins + 1)
    n_knots = bins + 1
    diag = np.zeros(n_knots)
    off = np.zeros(bins)
    rhs = np.zeros(n_knots)
    for d, w in stretches:
        pos = (d - lo) / (hi - lo) * bins
        idx = np.clip(pos.astype(np.int64), 0, bins - 1)
        frac = pos - idx
        left, right = 1.0 - frac, frac
        diag += np.bincount(idx, left * left, n_knots)
        diag += np.bincount(idx + 1, right * right, n_knots)
        off += np.bincount(idx, left * right, bins)
        rhs += np.bincount(idx, left * w, n_knots)
        rhs += np.bincount(idx + 1, right * w, n_knots)
    gram = np.diag(diag) + np.diag(off, 1) + np.diag(off, -1)
    second_diff = np.diff(np.eye(n_knots), n=2, axis=0)
    weight = smoothness * diag.sum() / n_knots
    gram += weight * second_diff.T @ second_diff
    # A tiny identity term keeps the system definite even if every sample sits on one knot.
    gram[np.diag_indices(n_knots)] += 1e-12 * max(weight, 1.0)
    values = scipy.linalg.solve(gram, rhs, assume_a="pos")
    return StaticCurve(knots=knots, values=values)


def baseline_scores(
    train_pairs: Sequence[Pair],
    test_pairs: Sequence[Pair],
    taps: int = 1024,
    bins: int = 256,
) -> dict[str, float]:
    """Fit both baselines on the training pairs and score them on the test pairs.

    Args:
        train_pairs: ``(dry, wet)`` arrays, each ``(channels, samples)``.
        test_pairs: held-out ``(dry, wet)`` arrays, same layout.
        taps: FIR length for the linear baseline, in samples.
        bins: segments of the static curve.

    Returns:
        ``{"esr_linear": ..., "esr_static": ...}``: the ESR (unitless) of each baseline on the
        test pairs taken together, as if concatenated (each pair is filtered on its own).
    """
    if not test_pairs:
        raise FxcloneError("no test audio given; pass at least one held-out (dry, wet) pair")
    h = fit_linear_fir([d for d, _ in train_pairs], [w for _, w in train_pairs], taps=taps)
    curve = fit_static([d for d, _ in train_pairs], [w for _, w in train_pairs], bins=bins)
    test = _stretches([d for d, _ in test_pairs], [w for _, w in test_pairs], None)
    dry = [d for d, _ in test]
    target = np.concatenate([w for _, w in test])
    return {
        "esr_linear": esr(target, np.concatenate([apply_fir(h, d) for d in dry])),
        "esr_static": esr(target, np.concatenate([curve(d) for d in dry])),
    }
