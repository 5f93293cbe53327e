"""The compressor model's start: its settings and knob map fitted by Levenberg-Marquardt.

The model's output is a smooth (piecewise, at the attack/release branch) function of six
raw parameters per setting, and a capture of a compressor of the same design has a zero
residual: the case where Gauss-Newton steps converge fastest and first-order methods crawl
along the weakly pinned directions (the knee, a time constant the material hardly
exercises). So the fit solves the least-squares problem directly, with the Jacobian of each
item's output by central differences (twelve runs of the item, batched), in three steps:

1. each of up to ``fit_items`` items (whole: a compressor's state starts at its item's
   start) gets its own settings, from two starting thresholds (one well below the
   material's peaks, so the curve acts; one near them), keeping the better;
2. the knob map ``raw = B [1, knobs - 0.5]`` is the curvature-weighted regression of those
   settings on the knobs, the joint loss to second order about each item's optimum;
3. Levenberg-Marquardt on the map itself, over all the picked items: the mean of their own
   ESRs (a quiet setting counts as much as a loud one).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from fxclone.models.compressor import _INIT, _SCALE, Compressor, canonical

# Starting points of the per-item fits in raw units (offsets from the model's initial
# settings over their scales): threshold -40 dB and -12 dB, the rest at the defaults.
STARTS = ((-0.8, 0.0, 0.0, 0.0, 0.0, 0.0), (0.6, 0.0, 0.0, 0.0, 0.0, 0.0))
_STEP = 1e-6  # central-difference step in raw units
_TINY_LOSS = 1e-20

Item = tuple[Tensor, Tensor, float]  # dry, wet (1, channels, samples) float64, wet energy


def fit_compressor(
    model: Compressor, items: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]]
) -> float:
    """Set ``model.bias`` and ``model.weight`` from ``(dry, wet, knobs)`` items; returns the
    final mean ESR over the picked items."""
    picked = spread(items, model.config.fit_items)
    data: list[Item] = []
    for dry, wet, _ in picked:
        w = torch.from_numpy(np.asarray(wet, np.float64))[None]
        energy = max(float((w**2).sum()), 1e-12)
        data.append((torch.from_numpy(np.asarray(dry, np.float64))[None], w, energy))
    knobs = torch.tensor(np.array([np.asarray(k, np.float64) for *_, k in picked]))
    z = torch.cat([torch.ones(len(picked), 1, dtype=torch.float64),
                   knobs.reshape(len(picked), model.n_knobs) - 0.5], dim=1)  # fmt: skip
    iterations = model.config.fit_iterations
    raws, curvatures = [], []
    one = torch.ones(1, 1, dtype=torch.float64)
    for item in data:
        fits = [levenberg_marquardt(model, [item], one, torch.tensor(s, dtype=torch.float64)
                                    [:, None], iterations) for s in STARTS]  # fmt: skip
        b, _, curvature = min(fits, key=lambda f: f[1])
        raws.append(_sane(canonical(b[:, 0])))
        curvatures.append(curvature)
    b = weighted_map(torch.stack(raws), torch.stack(curvatures), z[:, 1:])
    b, loss, _ = levenberg_marquardt(model, data, z, b, iterations)
    with torch.no_grad():
        model.bias.copy_(b[:, 0])
        model.weight.copy_(b[:, 1:])
    return loss


@torch.no_grad()
def levenberg_marquardt(
    model: Compressor, data: list[Item], z: Tensor, b: Tensor, iterations: int
) -> tuple[Tensor, float, Tensor]:
    """Minimise the mean ESR of ``data`` over the map ``b`` (``(p, q)``; item ``i`` runs with
    raw parameters ``b @ z[i]``).

    Returns:
        ``(b, loss, curvature)``: the map, its mean ESR and, for a single item, the
        Gauss-Newton curvature ``J^T J / |wet|^2`` of its raw parameters there.
    """
    loss, hess, grad, curvature = _normal_equations(model, data, z, b)
    mu = 1e-3
    for _ in range(iterations):
        if loss < _TINY_LOSS:
            break
        diag = hess.diagonal().clamp(min=1e-12 * float(hess.diagonal().max()) + 1e-300)
        for _ in range(12):
            step = torch.linalg.solve(hess + mu * torch.diag(diag), -grad)
            trial = b + step.reshape(b.shape[1], b.shape[0]).T
            trial_loss = _loss(model, data, z, trial)
            if trial_loss < loss:
                break
            mu *= 4.0
        else:
            break  # no step lowers the loss: converged to the precision the runs allow
        gain = (loss - trial_loss) / loss
        b = trial
        mu = max(mu / 3.0, 1e-12)
        loss, hess, grad, curvature = _normal_equations(model, data, z, b)
        if gain < 1e-9:
            break
    return b, loss, curvature


def _loss(model: Compressor, data: list[Item], z: Tensor, b: Tensor) -> float:
    total = 0.0
    for i, (dry, wet, energy) in enumerate(data):
        y, _ = model._run(dry, (b @ z[i])[None], dry.new_zeros(dry.shape[:2]))
        total += float(((y - wet) ** 2).sum()) / energy
    return total / len(data)


def _normal_equations(
    model: Compressor, data: list[Item], z: Tensor, b: Tensor
) -> tuple[float, Tensor, Tensor, Tensor]:
    """Loss, Gauss-Newton Hessian and gradient of the mean ESR in the map's entries (laid
    out ``(q, p)``, z index first), and the last item's own curvature ``(p, p)``."""
    p, q = b.shape
    hess = torch.zeros(q, p, q, p, dtype=torch.float64)
    grad = torch.zeros(q, p, dtype=torch.float64)
    total = 0.0
    curvature = torch.zeros(p, p, dtype=torch.float64)
    for i, (dry, wet, energy) in enumerate(data):
        raw = b @ z[i]
        shifts = torch.cat([torch.eye(p), -torch.eye(p)]).to(torch.float64) * _STEP
        batch = torch.cat([raw[None], raw + shifts])
        y, _ = model._run(dry, batch, dry.new_zeros(batch.shape[0], dry.shape[1]))
        resid = (y[0] - wet[0]).reshape(-1)
        jac = ((y[1 : p + 1] - y[p + 1 :]) / (2.0 * _STEP)).reshape(p, -1)  # (p, samples)
        curvature = jac @ jac.T / energy
        total += float(resid @ resid) / energy
        grad += z[i][:, None] * (jac @ resid / energy)[None, :]
        hess += torch.einsum("a,b,qr->aqbr", z[i], z[i], curvature)
    m = len(data)
    return total / m, hess.reshape(q * p, q * p) / m, grad.reshape(-1) / m, curvature


def _sane(raw: Tensor) -> Tensor:
    """A fit held to plausible settings (threshold -100..+20 dB, ratio up to 100, knee up to
    48 dB, times 0.01 ms..20 s, makeup +-48 dB): an item that barely exercises a setting
    can send it anywhere, and the map's regression would follow it."""
    s = _INIT + _SCALE * raw
    lo = torch.tensor([-100.0, 1.0, 0.0, math.log(0.01), math.log(0.01), -48.0], dtype=s.dtype)
    hi = torch.tensor([20.0, 100.0, 48.0, math.log(2e4), math.log(2e4), 48.0], dtype=s.dtype)
    return (torch.minimum(torch.maximum(s, lo), hi) - _INIT) / _SCALE


def weighted_map(raws: Tensor, curvatures: Tensor, knobs: Tensor) -> Tensor:
    """The affine map ``raw = B [1, knobs]`` closest to the items' own fits, each weighted
    by its curvature: ``min_B sum_i (raw_i - B z_i)^T H_i (raw_i - B z_i)``, the joint loss
    to second order about each item's optimum. A tiny ridge (relative to the curvature)
    holds directions no item pins down at the plain average.

    Args:
        raws: ``(items, p)`` fitted raw parameters.
        curvatures: ``(items, p, p)``.
        knobs: ``(items, n)`` centred knobs.

    Returns:
        ``B``: ``(p, 1 + n)``.
    """
    items, p = raws.shape
    z = torch.cat([torch.ones(items, 1, dtype=raws.dtype), knobs], dim=1)
    ridge = 1e-9 * float(curvatures.diagonal(dim1=1, dim2=2).mean()) + 1e-300
    h = curvatures + ridge * torch.eye(p, dtype=raws.dtype)
    lhs = torch.einsum("ia,ib,ipq->apbq", z, z, h).reshape(z.shape[1] * p, z.shape[1] * p)
    rhs = torch.einsum("ia,ipq,iq->ap", z, h, raws).reshape(-1)
    return torch.linalg.solve(lhs, rhs).reshape(z.shape[1], p).T


def spread(
    items: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]], count: int
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Up to ``count`` items, evenly spaced through ``items``."""
    if len(items) <= count:
        return list(items)
    picks = np.unique(np.linspace(0, len(items) - 1, count).round().astype(int))
    return [items[i] for i in picks]


__all__ = ["STARTS", "fit_compressor", "levenberg_marquardt", "spread",
           "weighted_map"]  # fmt: skip
