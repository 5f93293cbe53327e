"""Differentiable first-order recursions for the block-oriented distortion model.

The one primitive is the recursion ``h[n] = a * h[n-1] + v[n]`` along time, one row per
stream, with a coefficient ``a`` that is constant over a call (knobs change between streaming
blocks, not within one) and a starting value ``h[-1] = h0``. Its adjoint runs backwards in
time: with ``g`` the gradient of the loss with respect to ``h``,

* ``lam[n] = g[n] + a * lam[n+1]`` (``lam[T] = 0``) is the gradient with respect to ``v[n]``,
* ``sum_n lam[n] * h[n-1]`` the gradient with respect to ``a``,
* ``a * lam[0]`` the gradient with respect to ``h0``.

Both directions are sequential loops compiled by numba, so a batch of long training windows
costs a few milliseconds, and a stream cut into blocks gives the very same numbers as one
pass: each output sample is computed by the same arithmetic, in the same order.

From the primitive: :func:`one_pole`, the low-pass ``h = a h[n-1] + (1 - a) x``; and
:func:`causal_fir`, a short FIR that continues from the previous block's inputs.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from numba import njit
from torch import Tensor

SCAN_STEPS = 20  # doublings in the traceable scan: exact for blocks up to 2^20 samples


@njit(cache=True, error_model="numpy")
def _recur_forward(v, a, h0, out):  # pragma: no cover - compiled
    rows, n = v.shape
    for r in range(rows):
        c = a[r]
        h = h0[r]
        for t in range(n):
            h = c * h + v[r, t]
            out[r, t] = h


@njit(cache=True, error_model="numpy")
def _recur_backward(g, a, h0, h, gv, ga, gh0):  # pragma: no cover - compiled
    rows, n = g.shape
    for r in range(rows):
        c = a[r]
        lam = 0.0 * c
        acc = 0.0 * c
        for t in range(n - 1, -1, -1):
            lam = g[r, t] + c * lam
            gv[r, t] = lam
            acc += lam * (h[r, t - 1] if t > 0 else h0[r])
        ga[r] = acc
        gh0[r] = c * lam


def _np(t: Tensor) -> np.ndarray:
    return t.detach().contiguous().cpu().numpy()


class FirstOrderRecursion(torch.autograd.Function):
    """``h[n] = a * h[n-1] + v[n]`` for ``v`` of shape ``(rows, T)``, ``a`` and ``h0`` of
    shape ``(rows,)``; differentiable in all three."""

    @staticmethod
    def forward(ctx: Any, v: Tensor, a: Tensor, h0: Tensor) -> Tensor:
        dtype = v.dtype
        a, h0 = a.to(dtype), h0.to(dtype)
        out = np.empty(tuple(v.shape), dtype=_np(v).dtype)
        _recur_forward(_np(v), _np(a), _np(h0), out)
        h = torch.from_numpy(out).to(v.device)
        ctx.save_for_backward(a, h0, h)
        return h

    @staticmethod
    def backward(ctx: Any, *grads: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        (g,) = grads
        a, h0, h = ctx.saved_tensors
        gn = _np(g.to(h.dtype))
        gv = np.empty_like(gn)
        ga = np.empty(a.shape, dtype=gn.dtype)
        gh0 = np.empty(a.shape, dtype=gn.dtype)
        _recur_backward(gn, _np(a), _np(h0), _np(h), gv, ga, gh0)
        dev = h.device
        return (
            torch.from_numpy(gv).to(dev),
            torch.from_numpy(ga).to(dev),
            torch.from_numpy(gh0).to(dev),
        )


def recursion(v: Tensor, a: Tensor, h0: Tensor) -> Tensor:
    """``h[n] = a * h[n-1] + v[n]`` along the last axis of ``v`` ``(rows, T)``, from ``h0``.

    While tracing (ONNX export) it is :func:`scan`, in PyTorch operations only."""
    if torch.jit.is_tracing():
        return scan(v, a, h0)
    if v.shape[-1] == 0:
        return v
    out: Tensor = FirstOrderRecursion.apply(v, a, h0)
    return out


def scan(v: Tensor, a: Tensor, h0: Tensor) -> Tensor:
    """The recursion as a parallel prefix scan (Hillis-Steele) in float64: after step ``k``
    each sample holds ``sum_j a^j v[n-j]`` over ``j < 2^(k+1)``; ``SCAN_STEPS`` doublings
    cover blocks of up to 2^20 samples (beyond that only terms weighted by ``a^(2^20)``,
    nil for any corner above 0.01 Hz, are left out), then ``a^(n+1) h0`` is added. Fixed
    shapes and PyTorch operations only, so it traces to a graph for any block length."""
    h = v.to(torch.float64)
    power = a.to(torch.float64)[:, None]  # a^(2^k)
    for k in range(SCAN_STEPS):
        shift = 2**k
        h = h + power * F.pad(h, (shift, 0))[:, :-shift]
        power = power * power
    count = torch.cumsum(torch.ones_like(h), dim=1)  # n + 1, for any block length
    h = h + torch.pow(a.to(torch.float64)[:, None], count) * h0.to(torch.float64)[:, None]
    return h.to(v.dtype)


def one_pole(x: Tensor, a: Tensor, h0: Tensor) -> Tensor:
    """One-pole low-pass ``h[n] = a h[n-1] + (1 - a) x[n]`` (unity gain at DC); ``x`` is
    ``(rows, T)``, ``a`` and the previous output ``h0`` are ``(rows,)``."""
    return recursion((1.0 - a)[:, None] * x, a, h0)


def causal_fir(x: Tensor, taps: Tensor, history: Tensor) -> tuple[Tensor, Tensor]:
    """Causal FIR ``y[n] = sum_k taps[k] x[n - k]`` over rows ``(rows, T)``, continuing from
    ``history`` ``(rows, len(taps) - 1)`` (the latest inputs, oldest first); returns the
    output and the new history."""
    keep = taps.shape[0] - 1
    full = torch.cat([history, x], dim=1)
    if torch.jit.is_tracing():  # a convolution, which ONNX has (unfold it has not)
        y = F.conv1d(full[:, None], taps.flip(0)[None, None])[:, 0]
        return y, full[:, full.shape[1] - keep :]
    # Each output is one dot product of a window with the reversed taps (a view, then a
    # matrix-vector product: cheaper than conv1d for the short blocks of streaming).
    y = full.unfold(1, taps.shape[0], 1) @ taps.flip(0)
    return y, full[:, full.shape[1] - keep :]


__all__ = ["SCAN_STEPS", "FirstOrderRecursion", "causal_fir", "one_pole", "recursion", "scan"]
