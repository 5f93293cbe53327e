"""A guard against loss explosions during training.

A learning rate that suits most of a run can still throw the weights off a cliff in one
step: the loss jumps by orders of magnitude, the network saturates and never recovers. The
guard watches each step's training loss against the median of the recent healthy ones:

* a non-finite loss, or one more than ``factor`` times that median, is not stepped on (the
  batch is skipped: a lone outlier, such as a nearly silent batch, costs one step);
* ``patience`` such losses in a row mean the weights themselves have gone bad: the model and
  optimiser are restored from a snapshot taken at least ``snapshot_every`` healthy steps
  before, and the learning rate is halved for the rest of the run.

Its counters and the rate factor are saved in checkpoints, so a resumed run keeps them.
"""

from __future__ import annotations

import copy
import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class Rollback:
    """One restore: the step it happened at, the step restored to, the new rate factor."""

    step: int
    restored_step: int
    lr_scale: float


@dataclass
class DivergenceGuard:
    factor: float = 50.0
    patience: int = 3
    window: int = 50
    min_history: int = 10
    snapshot_every: int = 20
    lr_scale: float = 1.0
    skipped: int = 0
    rollbacks: list[Rollback] = field(default_factory=list)
    _history: deque[float] = field(default_factory=deque, repr=False)
    _bad_run: int = 0
    _snapshots: deque[tuple[int, Any]] = field(default_factory=lambda: deque(maxlen=2))
    _since_snapshot: int = 0

    def __post_init__(self) -> None:
        self._history = deque(self._history, maxlen=self.window)

    def check(self, loss: float) -> str:
        """``"ok"`` to step on this loss, ``"skip"`` to skip the batch, ``"rollback"`` to
        restore the weights (see :meth:`restore`)."""
        healthy = math.isfinite(loss) and (
            len(self._history) < self.min_history
            or loss <= self.factor * float(np.median(self._history))
        )
        if healthy:
            self._bad_run = 0
            self._history.append(loss)
            return "ok"
        self._bad_run += 1
        self.skipped += 1
        if self._bad_run >= self.patience and self._snapshots:
            return "rollback"
        return "skip"

    def maybe_snapshot(self, step: int, state: Any) -> None:
        """Before a step: keep a copy of ``state`` (weights and optimiser) every
        ``snapshot_every`` healthy steps. ``state`` is a zero-argument callable."""
        if self._bad_run:
            return
        if self._snapshots and self._since_snapshot < self.snapshot_every:
            self._since_snapshot += 1
            return
        self._snapshots.append((step, copy.deepcopy(state())))
        self._since_snapshot = 1

    def restore(self, step: int) -> Any:
        """The oldest kept snapshot's state, halving the rate; records the rollback."""
        restored_step, state = self._snapshots[0]
        self._snapshots.clear()
        self._snapshots.append((restored_step, copy.deepcopy(state)))
        self._since_snapshot = 1
        self._bad_run = 0
        self.lr_scale *= 0.5
        self.rollbacks.append(Rollback(step, restored_step, self.lr_scale))
        return state

    def state_dict(self) -> dict[str, Any]:
        return {
            "lr_scale": self.lr_scale,
            "skipped": self.skipped,
            "history": list(self._history),
            "bad_run": self._bad_run,
            "rollbacks": [[r.step, r.restored_step, r.lr_scale] for r in self.rollbacks],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.lr_scale = float(state.get("lr_scale", 1.0))
        self.skipped = int(state.get("skipped", 0))
        self._history = deque((float(v) for v in state.get("history", ())), maxlen=self.window)
        self._bad_run = int(state.get("bad_run", 0))
        self.rollbacks = [
            Rollback(int(a), int(b), float(c)) for a, b, c in state.get("rollbacks", ())
        ]

    def summary(self) -> str | None:
        """One line for the user when the guard acted, else None."""
        if not self.rollbacks and not self.skipped:
            return None
        text = f"the training loss spiked on {self.skipped} step(s), which were skipped"
        if self.rollbacks:
            steps = ", ".join(f"{r.step} (to {r.restored_step})" for r in self.rollbacks)
            text += (
                f"; it exploded {len(self.rollbacks)} time(s), at step {steps}: the weights were "
                f"restored and the learning rate scaled by {self.lr_scale:g}; a lower --lr "
                "may train better"
            )
        return text


@dataclass
class GradientClipper:
    """Adaptive gradient clipping: the gradient's norm is held to ``factor`` times the median
    of the last ``window`` norms. A sudden large gradient after a quiet stretch would
    otherwise make Adam take a step several times its rate on every weight."""

    factor: float = 3.0
    window: int = 200
    min_history: int = 20
    clipped: int = 0
    _norms: deque[float] = field(default_factory=deque, repr=False)

    def __post_init__(self) -> None:
        self._norms = deque(self._norms, maxlen=self.window)

    def clip(self, parameters: Any) -> float:
        """Clip the gradients of ``parameters`` in place; returns their norm before."""
        import torch

        params = [p for p in parameters if p.grad is not None]
        limit = (
            self.factor * float(np.median(self._norms))
            if len(self._norms) >= self.min_history
            else math.inf
        )
        norm = float(torch.nn.utils.clip_grad_norm_(params, limit))
        if math.isfinite(norm):
            self._norms.append(norm)
            self.clipped += norm > limit
        return norm

    def state_dict(self) -> dict[str, Any]:
        return {"norms": list(self._norms), "clipped": self.clipped}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._norms = deque((float(v) for v in state.get("norms", ())), maxlen=self.window)
        self.clipped = int(state.get("clipped", 0))
