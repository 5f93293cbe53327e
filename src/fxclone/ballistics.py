"""A dynamics processor's attack/release smoother and its adjoint, compiled with numba.

The smoother is the one-pole recursion ``y[n] = a[n] y[n-1] + (1 - a[n]) t[n]`` whose
coefficient switches between an attack and a release value: ``a[n] = attack`` while the
target falls below the running value (``t[n] < y[n-1]``: more gain reduction), ``release``
otherwise. The branch makes it sequential, so it runs as a compiled loop per row (about 3 ns
a sample), and its gradient runs the same loop backwards in time (the adjoint recursion),
so a model holding it trains on long windows at the cost of two passes.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def _smooth(target, attack, release, y0, out, use_attack):  # pragma: no cover - compiled
    rows, n = target.shape
    for r in range(rows):
        y = y0[r]
        a_att = attack[r]
        a_rel = release[r]
        for i in range(n):
            t = target[r, i]
            if t < y:
                a = a_att
                use_attack[r, i] = True
            else:
                a = a_rel
                use_attack[r, i] = False
            y = a * y + (1.0 - a) * t
            out[r, i] = y


@njit(cache=True)
def _adjoint(
    grad, target, out, y0, attack, release, use_attack, grad_target, grad_coef, grad_y0
):  # pragma: no cover - compiled
    rows, n = target.shape
    for r in range(rows):
        carry = 0.0  # a[n+1] * lambda[n+1]
        g_att = 0.0
        g_rel = 0.0
        for i in range(n - 1, -1, -1):
            a = attack[r] if use_attack[r, i] else release[r]
            lam = grad[r, i] + carry
            grad_target[r, i] = (1.0 - a) * lam
            prev = out[r, i - 1] if i > 0 else y0[r]
            d = lam * (prev - target[r, i])
            if use_attack[r, i]:
                g_att += d
            else:
                g_rel += d
            carry = a * lam
        grad_coef[r, 0] = g_att
        grad_coef[r, 1] = g_rel
        grad_y0[r] = carry


def smooth(
    target: np.ndarray, attack: np.ndarray, release: np.ndarray, y0: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Run the attack/release smoother over each row.

    Args:
        target: float64 ``(rows, samples)``, the value to follow (a gain change in dB).
        attack: float64 ``(rows,)``, the coefficient while the target is below the value.
        release: float64 ``(rows,)``, the coefficient otherwise.
        y0: float64 ``(rows,)``, the value before the first sample.

    Returns:
        ``(out, use_attack)``: the smoothed float64 ``(rows, samples)`` and which branch each
        sample took (what :func:`adjoint` needs).
    """
    out = np.empty_like(target)
    use_attack = np.empty(target.shape, dtype=np.bool_)
    _smooth(target, attack, release, y0, out, use_attack)
    return out, use_attack


def adjoint(
    grad: np.ndarray,
    target: np.ndarray,
    out: np.ndarray,
    y0: np.ndarray,
    attack: np.ndarray,
    release: np.ndarray,
    use_attack: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Gradients of a loss through :func:`smooth`, given ``grad = dL/d out``.

    With ``lambda[n] = grad[n] + a[n+1] lambda[n+1]`` (the loss's total derivative by
    ``out[n]``): ``dL/dt[n] = (1 - a[n]) lambda[n]``, ``dL/da[n] = lambda[n] (out[n-1] -
    t[n])`` summed over the samples of each branch, and ``dL/dy0 = a[0] lambda[0]``. The
    branches are held where the forward pass chose them (the map is piecewise smooth).

    Returns:
        ``(d target, d attack, d release, d y0)`` shaped like the inputs.
    """
    grad_target = np.empty_like(target)
    grad_coef = np.empty((target.shape[0], 2))
    grad_y0 = np.empty(target.shape[0])
    _adjoint(grad, target, out, y0, attack, release, use_attack, grad_target, grad_coef, grad_y0)
    return grad_target, grad_coef[:, 0], grad_coef[:, 1], grad_y0


__all__ = ["adjoint", "smooth"]
