"""The compressor model's start: its settings and knob map fitted by Levenberg-Marquardt.

The model's output is a smooth (piecewise, at the attack/release branch) function of six
raw parameters per setting, and a capture of a compressor of the same design has a zero
residual: the case where Gauss-Newton steps converge fastest and first-order methods crawl
along the weakly pinned directions (the knee, a time constant the material hardly
exercises). So the fit solves the least-squares problem directly, with the Jacobian of each
item's output by central differences (twelve runs of the item, batched), in three steps:

1. each of up to ``fit_items`` items (its first ``fit_item_seconds``: a compressor's state
   starts at its item's start) gets its own settings, from the three best points of a
   coarse grid of threshold, ratio, attack and release (108 runs), each fitted on the gain
   it applied (in dB, where every level counts alike), then on its output, keeping the best;
2. the knob map ``raw = B [1, knobs - 0.5]`` is the curvature-weighted regression of those
   settings on the knobs (the joint loss to second order about each item's optimum), over
   the items fitted about as well as the typical one;
3. Levenberg-Marquardt on the map itself, over all the picked items: the mean of their own
   ESRs (a quiet setting counts as much as a loud one).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from fxclone.models.compressor import _INIT, _SCALE, Compressor, canonical, settings_of

# The grid each item's fit scans for its starting points (knee 6 dB, no makeup): the loss
# surface has valleys a local method cannot leave (a fast attack taken for a low ratio).
GRID_THRESHOLD_DB = (-50.0, -35.0, -20.0, -8.0)
GRID_RATIO = (2.0, 5.0, 15.0)
GRID_ATTACK_MS = (0.3, 3.0, 30.0)
GRID_RELEASE_MS = (20.0, 150.0, 1000.0)
STARTS = 3  # the best grid points each item's Levenberg-Marquardt starts from
_STEP = 1e-6  # central-difference step in raw units
_TINY_LOSS = 1e-20


@dataclass
class Item:
    """One training item in float64 ``(1, channels, samples)``, with the gain the effect
    applied where it can be read (``20 log10 |wet / dry|`` where the dry is above -80 dBFS)."""

    dry: Tensor
    wet: Tensor
    energy: float
    gain_db: Tensor
    readable: Tensor

    @classmethod
    def of(cls, dry: np.ndarray, wet: np.ndarray) -> Item:
        d = torch.from_numpy(np.asarray(dry, np.float64))[None]
        w = torch.from_numpy(np.asarray(wet, np.float64))[None]
        readable = (d.abs() > 1e-4) & (w.abs() > 1e-12)
        ratio = w.abs().clamp(min=1e-300) / d.abs().clamp(min=1e-300)
        gain_db = torch.where(readable, 20.0 * torch.log10(ratio), torch.zeros_like(d))
        return cls(d, w, max(float((w**2).sum()), 1e-12), gain_db, readable)

    def residuals(self, model: Compressor, raws: Tensor, domain: str) -> Tensor:
        """``(len(raws), samples x channels)`` residuals whose squared sum is the loss: the
        output's error over the wet signal's root energy (``"output"``: the ESR), or the
        gain's error in dB over the root count of readable samples (``"gain"``: every
        level counts alike, which keeps the fit off the valleys the ESR has)."""
        y, gain = model._run(self.dry, raws, self.dry.new_zeros(raws.shape[0], self.dry.shape[1]))
        if domain == "output":
            return ((y - self.wet) / math.sqrt(self.energy)).reshape(raws.shape[0], -1)
        makeup = settings_of(raws)[:, 5, None, None]
        count = max(1, int(self.readable.sum()))
        err = torch.where(self.readable, gain + makeup - self.gain_db, torch.zeros_like(gain))
        return (err / math.sqrt(count)).reshape(raws.shape[0], -1)


def fit_compressor(
    model: Compressor, items: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]]
) -> float:
    """Set ``model.bias`` and ``model.weight`` from ``(dry, wet, knobs)`` items; returns the
    final mean ESR over the picked items."""
    picked = spread(items, model.config.fit_items)
    head = max(1, round(model.config.fit_item_seconds * model.sample_rate))
    data = [Item.of(dry[:, :head], wet[:, :head]) for dry, wet, _ in picked]
    knobs = torch.tensor(np.array([np.asarray(k, np.float64) for *_, k in picked]))
    z = torch.cat([torch.ones(len(picked), 1, dtype=torch.float64),
                   knobs.reshape(len(picked), model.n_knobs) - 0.5], dim=1)  # fmt: skip
    iterations = model.config.fit_iterations
    raws, curvatures, losses = [], [], []
    one = torch.ones(1, 1, dtype=torch.float64)
    for item in data:
        fits = []
        for start in grid_starts(model, item, STARTS):
            b, _, _ = levenberg_marquardt(model, [item], one, start[:, None], iterations, "gain")
            fits.append(levenberg_marquardt(model, [item], one, b, iterations, "output"))
        b, loss, curvature = min(fits, key=lambda f: f[1])
        raws.append(_sane(canonical(b[:, 0])))
        curvatures.append(curvature)
        losses.append(loss)
    # An item whose own fit stopped in a valley far above the others' would pull the map
    # into one: the map is regressed on the items fitted about as well as the typical one.
    kept = [i for i, loss in enumerate(losses) if loss <= 10.0 * float(np.median(losses)) + 1e-12]
    b = weighted_map(torch.stack([raws[i] for i in kept]),
                     torch.stack([curvatures[i] for i in kept]), z[kept, 1:])  # fmt: skip
    b, loss, _ = levenberg_marquardt(model, data, z, b, iterations, "output")
    with torch.no_grad():
        model.bias.copy_(b[:, 0])
        model.weight.copy_(b[:, 1:])
    return loss


@torch.no_grad()
def levenberg_marquardt(
    model: Compressor, data: list[Item], z: Tensor, b: Tensor, iterations: int, domain: str
) -> tuple[Tensor, float, Tensor]:
    """Minimise the mean loss (:meth:`Item.residuals` in ``domain``) of ``data`` over the
    map ``b`` (``(p, q)``; item ``i`` runs with raw parameters ``b @ z[i]``).

    Returns:
        ``(b, loss, curvature)``: the map, its mean ESR and, for a single item, the
        Gauss-Newton curvature ``J^T J / |wet|^2`` of its raw parameters there.
    """
    loss, hess, grad, curvature = _normal_equations(model, data, z, b, domain)
    mu = 1e-3
    for _ in range(iterations):
        if loss < _TINY_LOSS:
            break
        diag = hess.diagonal().clamp(min=1e-12 * float(hess.diagonal().max()) + 1e-300)
        for _ in range(12):
            step = torch.linalg.solve(hess + mu * torch.diag(diag), -grad)
            trial = b + step.reshape(b.shape[1], b.shape[0]).T
            trial_loss = _loss(model, data, z, trial, domain)
            if trial_loss < loss:
                break
            mu *= 4.0
        else:
            break  # no step lowers the loss: converged to the precision the runs allow
        gain = (loss - trial_loss) / loss
        b = trial
        mu = max(mu / 3.0, 1e-12)
        loss, hess, grad, curvature = _normal_equations(model, data, z, b, domain)
        if gain < 1e-9:
            break
    return b, loss, curvature


@torch.no_grad()
def grid_starts(model: Compressor, item: Item, count: int) -> list[Tensor]:
    """The ``count`` raw parameter vectors of the grid with the lowest gain error on ``item``."""
    grid = torch.cartesian_prod(
        *(torch.tensor(v, dtype=torch.float64) for v in
          (GRID_THRESHOLD_DB, GRID_RATIO, GRID_ATTACK_MS, GRID_RELEASE_MS))
    )  # fmt: skip
    settings = torch.zeros(grid.shape[0], 6, dtype=torch.float64)
    settings[:, :2] = grid[:, :2]
    settings[:, 2] = 6.0
    settings[:, 3:5] = grid[:, 2:4].log()
    raws = (settings - _INIT) / _SCALE
    losses = [(item.residuals(model, chunk, "gain") ** 2).sum(dim=1) for chunk in raws.split(27)]
    order = torch.cat(losses).argsort()[:count]
    return [raws[i] for i in order]


def _loss(model: Compressor, data: list[Item], z: Tensor, b: Tensor, domain: str) -> float:
    total = sum(float((item.residuals(model, (b @ z[i])[None], domain) ** 2).sum())
                for i, item in enumerate(data))  # fmt: skip
    return total / len(data)


def _normal_equations(
    model: Compressor, data: list[Item], z: Tensor, b: Tensor, domain: str
) -> tuple[float, Tensor, Tensor, Tensor]:
    """Loss, Gauss-Newton Hessian and gradient of the mean loss in the map's entries (laid
    out ``(q, p)``, z index first), and the last item's own curvature ``(p, p)``."""
    p, q = b.shape
    hess = torch.zeros(q, p, q, p, dtype=torch.float64)
    grad = torch.zeros(q, p, dtype=torch.float64)
    total = 0.0
    curvature = torch.zeros(p, p, dtype=torch.float64)
    shifts = torch.cat([torch.eye(p), -torch.eye(p)]).to(torch.float64) * _STEP
    for i, item in enumerate(data):
        raw = b @ z[i]
        r = item.residuals(model, torch.cat([raw[None], raw + shifts]), domain)
        resid = r[0]
        jac = (r[1 : p + 1] - r[p + 1 :]) / (2.0 * _STEP)  # (p, samples)
        curvature = jac @ jac.T
        total += float(resid @ resid)
        grad += z[i][:, None] * (jac @ resid)[None, :]
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


__all__ = ["fit_compressor", "grid_starts", "levenberg_marquardt", "spread",
           "weighted_map"]  # fmt: skip
