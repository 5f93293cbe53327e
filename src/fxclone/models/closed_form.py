"""Models fitted whole, in closed form, to a dataset's training split taken as one stream.

They have no window training stage (``training_stages()`` is empty): ``fit_closed_form``
receives the split's items in order, as they were rendered, and estimates every parameter
from the whole stream. They capture one setting of an effect (no knob conditioning).
:class:`OscillatorModel` adds the free-running oscillator (rate and phase) that time-varying
effects hold: a split is then validated and scored as one stream, and
:func:`fxclone.models.phase.refit_phase` sets the phase for a recording that starts anywhere.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor, nn

from fxclone.models.base import EffectModel, Stage


class StreamFitted(EffectModel):
    """A model fitted whole by ``fit_closed_form``; refuses knobs."""

    takes_knobs = False

    def __init__(self, config: Any, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        if self.n_knobs:
            raise ValueError(
                f"the {self.family} model is not knob-conditioned; capture one setting at a time"
            )

    def training_stages(self) -> tuple[Stage, ...]:
        return ()  # fitted on the whole training stream by fit_closed_form

    def forward(self, x: Tensor, knobs: Tensor | None = None) -> Tensor:
        """``step`` from the initial state over the whole input (these models stream
        exactly, whatever the block split)."""
        self.check_inputs(x, knobs)
        return self.step(x, x.new_zeros(x.shape[0], 0), self.init_state(x.shape[0]))[0]

    @staticmethod
    def mono_stream(
        items: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]],
    ) -> tuple[np.ndarray, np.ndarray]:
        """The items' dry and wet audio end to end, channels averaged: ``(dry, wet)``."""
        dry = np.concatenate([d for d, _, _ in items], axis=1).mean(axis=0)
        wet = np.concatenate([w for _, w, _ in items], axis=1).mean(axis=0)
        return dry, wet


class OscillatorModel(StreamFitted):
    """A stream-fitted model holding an oscillator ``theta = phase + 2 pi rate n / fs``
    (``log_rate`` and ``phase`` parameters) that runs on from the start of a stream."""

    free_running: ClassVar[bool] = True
    log_rate: nn.Parameter
    phase: nn.Parameter

    @property
    def rate_hz(self) -> float:
        return float(torch.exp(self.log_rate.detach()))


def coordinate_search(
    params: Sequence[tuple[torch.Tensor, int, float]],
    score: Callable[[], float],
    rounds: int,
    points: int = 17,
) -> None:
    """Maximise ``score`` over entries ``param[j]``, each on a grid of ``+-span`` in turn,
    the spans shrinking fourfold a round (the stream-fitted models' searches)."""
    for _ in range(rounds):
        for param, j, span in params:
            start = float(param[j])
            grid = start + np.linspace(-span, span, points)
            scores = []
            for value in grid:
                param[j] = float(value)
                scores.append(score())
            param[j] = float(grid[int(np.argmax(scores))])
        params = [(p, j, span / 4) for p, j, span in params]


def read(line: np.ndarray, position: np.ndarray) -> np.ndarray:
    """``line (R, N)`` at fractional indices ``position (T,)``, linearly interpolated."""
    i = np.clip(np.floor(position).astype(np.int64), 0, line.shape[1] - 2)
    frac = position - i
    return (1.0 - frac) * line[:, i] + frac * line[:, i + 1]
