"""A second-order finish for small models: Levenberg-Marquardt in double precision.

Adam moves every parameter by about its learning rate per step, so a model of a few dozen
parameters that can match its effect almost exactly (the grey-box families: a Hammerstein
chain, a compressor's curve and smoothers) ends gradient training at the noise floor of its
annealed rate, its knob maps still a little off. There the fit is a least-squares problem
with a residual near zero, which Gauss-Newton steps solve quadratically: on mda Overdrive,
conditioned on its two knobs, 11 iterations (75 seconds) of this polish took the validation
ESR from 4.2e-7 (where 3.75 minutes of Adam left it) to 2.2e-12 (docs/benchmarks.md).

The batch is one excerpt of every training item (the loudest of a few random starts, with
the model's warm-up before it), ``POLISH_SAMPLES`` scored samples in all. The residuals are
weighted so that their squares sum to the ESR terms of the training loss
(``TrainingLoss.terms``; a multi-resolution STFT term, not a sum of squares, is left out).
The Jacobian is taken by central differences on the model in float64; each step solves the
damped normal equations in Marquardt's scaling through one eigendecomposition, the damping
raised until a step lowers the loss. The polished weights, cast back, are kept only if they
score better on validation (in float32, whole files) than the weights the model came with.
That is all it can check: a model whose parameters the data do not pin down (several offset
tanh curves standing in for one) can fit the training settings better and some unseen ones
worse, so it is for identifiable models (models/presets.py).
"""

from __future__ import annotations

import copy
import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor
from torch.nn.utils import parameters_to_vector, vector_to_parameters

from fxclone.errors import FxcloneNotice
from fxclone.losses import TrainingLoss, pre_emphasis
from fxclone.models.base import EffectModel, Items
from fxclone.stage_module import score_region
from fxclone.windows import warmup_samples

if TYPE_CHECKING:
    from fxclone.training_config import TrainConfig

POLISH_SAMPLES = 1 << 18  # scored samples in the batch, over all items (6 s at 44.1 kHz)
MIN_EXCERPT = 4096  # scored samples per item at least (or the whole item)
CANDIDATES = 8  # random starts per item; the loudest is kept
MAX_ITERATIONS = 30  # Levenberg-Marquardt iterations at most
MAX_DAMPING = 1e6  # no step that lowers the loss even this damped: converged
DEAD = 1e-12  # Jacobian columns this much weaker (squared) than the strongest count as 0
CONVERGED = 1e-3  # an iteration lowering the loss by less (relative) ends the polish
CHUNK_SAMPLES = 1 << 16  # residuals per Jacobian block (rows x samples, float64)
FD_STEP = 1e-6  # central differences' step, relative to the parameter (at least 1)
MAX_PARAMETERS = 2000  # a Jacobian column each, per iteration


@dataclass
class PolishResult:
    """What a polish did: the validation ESR before and after, and whether it was kept."""

    start_val_esr: float
    val_esr: float
    kept: bool
    iterations: int
    seconds: float
    start_loss: float
    loss: float

    def summary(self) -> dict[str, float | int | bool]:
        return {
            "start_val_esr": self.start_val_esr,
            "val_esr": self.val_esr,
            "kept": self.kept,
            "iterations": self.iterations,
            "seconds": round(self.seconds, 1),
            "start_loss": self.start_loss,
            "loss": self.loss,
        }


def excerpts(
    model: EffectModel,
    items: Items,
    seed: int,
    total: int = POLISH_SAMPLES,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, int]:
    """The polish batch: ``(dry, wet, knobs, warmup)`` in float64, one excerpt per item.

    Every excerpt has ``warmup`` samples of context (zeros before an item's start, as in
    training windows) and the same number of scored samples."""
    warm = warmup_samples(model) + model.latency_samples
    shortest = min(d.shape[1] for d, _, _ in items)
    n = min(shortest, max(MIN_EXCERPT, total // len(items)))
    rng = np.random.default_rng(seed)
    xs, ys, ks = [], [], []
    for dry, wet, knobs in items:
        starts = rng.integers(0, dry.shape[1] - n + 1, CANDIDATES)
        s = int(max(starts, key=lambda s: float(np.sum(wet[:, s : s + n].astype(np.float64) ** 2))))
        pad = max(0, warm - s)
        lo = s - warm + pad
        xs.append(np.pad(dry[:, lo : s + n], ((0, 0), (pad, 0))))
        ys.append(np.pad(wet[:, lo : s + n], ((0, 0), (pad, 0))))
        ks.append(knobs)
    as64 = lambda a: torch.from_numpy(np.stack(a).astype(np.float64))  # noqa: E731
    return as64(xs), as64(ys), as64(ks), warm - model.latency_samples


def unpolishable(model: EffectModel) -> str | None:
    """Why ``model`` cannot be polished, or None: the polish fits the output of
    ``model(x, knobs)`` to the wet signal, a Jacobian column per parameter."""
    stages = model.training_stages()
    if len(stages) != 1 or stages[0].forward is not None or stages[0].loss is not None:
        return f"the {model.family} family trains in stages or on its own loss"
    if model.num_parameters() > MAX_PARAMETERS:
        return (
            f"{model.num_parameters()} parameters (the polish is for models of at most "
            f"{MAX_PARAMETERS}); set polish to 0"
        )
    return None


def polish(
    model: EffectModel,
    train_items: Items,
    val_items: Items,
    config: TrainConfig,
    seconds: float | None,
    progress: Callable[[int, int], None] | None = None,
) -> PolishResult:
    """Polish ``model`` in place for ``seconds`` (or up to ``MAX_ITERATIONS`` iterations),
    on ``config``'s ESR terms; validation scores as training's does (see the module's notes).
    ``progress(done, total)`` hears of each Jacobian block, in thousandths of the budget."""
    from fxclone.training import validation_esr

    began = time.monotonic()
    per_item = config.scores_per_item
    start_val = validation_esr(model, val_items, per_item)
    reason = unpolishable(model)
    if reason is not None:
        warnings.warn(FxcloneNotice(f"no polish: {reason}"), stacklevel=2)
        return PolishResult(start_val, start_val, False, 0, time.monotonic() - began, 0.0, 0.0)
    work = copy.deepcopy(model).cpu().double().train()
    x, y, k, warm = excerpts(work, train_items, config.seed)
    latency = work.latency_samples
    target = score_region(y, y, warm, latency)[1]
    loss_fn = TrainingLoss(
        config.esr_weight, config.pre_emph_weight, config.pre_emphasis, per_window=per_item
    )
    terms = loss_fn.terms(target)
    params = [p for p in work.parameters() if p.requires_grad]

    @torch.no_grad()
    def residuals(theta: Tensor, rows: slice = slice(None)) -> Tensor:
        vector_to_parameters(theta, params)
        est = score_region(work(x[rows], k[rows]), y[rows], warm, latency)[0]
        e = est - target[rows]
        return torch.cat(
            [(pre_emphasis(e, c) * w[rows, None, None].sqrt()).flatten() for c, w in terms]
        )

    theta = parameters_to_vector(params).detach().clone()
    r = residuals(theta)
    start_loss = loss = float(r @ r)
    chunk = max(1, CHUNK_SAMPLES // x.shape[-1])
    damping, iterations = 1e-4, 0
    limit = math.inf if seconds is None else began + seconds

    def report(block: float) -> None:  # block: the share of this iteration's Jacobian done
        if progress is not None:
            spent = 0.0 if seconds is None else (time.monotonic() - began) / max(seconds, 1e-9)
            done = max(spent, (iterations + block) / MAX_ITERATIONS)
            progress(min(999, int(1000 * done)), 1000)

    while iterations < MAX_ITERATIONS and math.isfinite(loss):
        normal = _normal_equations(residuals, theta, len(x), chunk, limit, report)
        if normal is None:  # out of time
            break
        # Marquardt's scaling: the damped normal equations in units of each column's norm,
        # solved through one eigendecomposition for every damping tried.
        gram, grad = normal
        # A column under DEAD of the largest (a parameter without effect here, such as the
        # input gain of a model still linear, whose differences are rounding) keeps that floor.
        diag = torch.diagonal(gram)
        if not float(diag.max()) > 0:
            break
        scale = diag.clamp_min(DEAD * float(diag.max())).sqrt()
        values, vectors = torch.linalg.eigh(gram / (scale[:, None] * scale[None]))
        values, along = values.clamp_min(0.0), vectors.T @ (grad / scale)
        iterations += 1
        previous = loss
        while damping < MAX_DAMPING and time.monotonic() < limit:
            step = -(vectors @ (along / (values + damping))) / scale
            trial = residuals(theta + step)
            new = float(trial @ trial)
            if math.isfinite(new) and new < loss:
                theta, loss, damping = theta + step, new, max(damping / 10.0, 1e-15)
                break
            damping *= 10.0
        if not loss < previous * (1.0 - CONVERGED):
            break
    if progress is not None:
        progress(1000, 1000)
    vector_to_parameters(theta, params)
    before = copy.deepcopy(model.state_dict())
    model.load_state_dict({key: v.to(before[key]) for key, v in work.state_dict().items()})
    val = validation_esr(model, val_items, per_item)
    kept = val < start_val
    if not kept:
        model.load_state_dict(before)
    model.eval()
    return PolishResult(
        start_val_esr=start_val,
        val_esr=val if kept else start_val,
        kept=kept,
        iterations=iterations,
        seconds=time.monotonic() - began,
        start_loss=start_loss,
        loss=loss,
    )


def _normal_equations(
    residuals: Callable[[Tensor, slice], Tensor],
    theta: Tensor,
    rows: int,
    chunk: int,
    limit: float,
    report: Callable[[float], None],
) -> tuple[Tensor, Tensor] | None:
    """``J^T J`` and ``J^T r`` of the residuals at ``theta``, the Jacobian by central
    differences in float64, ``chunk`` excerpts at a time (``report``: the share done after
    each); None past the clock's ``limit``."""
    n = len(theta)
    gram = torch.zeros(n, n, dtype=theta.dtype)
    grad = torch.zeros(n, dtype=theta.dtype)
    steps = FD_STEP * theta.abs().clamp_min(1.0)
    for lo in range(0, rows, chunk):
        part = slice(lo, min(rows, lo + chunk))
        r = residuals(theta, part)
        jac = torch.empty(n, len(r), dtype=theta.dtype)
        for i in range(n):
            if time.monotonic() >= limit:
                return None
            d = torch.zeros_like(theta)
            d[i] = steps[i]
            jac[i] = (residuals(theta + d, part) - residuals(theta - d, part)) / (2 * steps[i])
        gram += jac @ jac.T
        grad += jac @ r
        report(part.stop / rows)
    return gram, grad


__all__ = [
    "POLISH_SAMPLES",
    "PolishResult",
    "excerpts",
    "polish",
    "unpolishable",
]
