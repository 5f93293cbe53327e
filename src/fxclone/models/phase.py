"""Re-fitting a free-running model's oscillator phase to a recording that starts anywhere.

A model holding an oscillator (:mod:`fxclone.models.lfo`, :mod:`fxclone.models.phaser`)
starts it at its fitted phase on the first sample. A recording that starts at another point
of the cycle is matched by setting that phase alone on its first seconds.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from fxclone.models.base import EffectModel


@torch.no_grad()
def refit_phase(
    model: EffectModel, dry: np.ndarray, wet: np.ndarray, seconds: float = 2.0
) -> float:
    """Set ``model.phase`` alone for the lowest error on the first ``seconds`` of a mono
    stream (a grid over the cycle, then finer grids around the best point); returns it (rad).
    A model with several oscillators (a phase each: a rotary speaker's two rotors) has each
    phase set in turn, twice round; the first is returned."""
    phase = getattr(model, "phase", None)
    if not isinstance(phase, torch.Tensor):
        raise TypeError(f"{model.family} models hold no oscillator phase to fit")
    n = min(dry.size, int(seconds * model.sample_rate))
    x = torch.from_numpy(dry[:n].astype(np.float32))[None, None]
    target = torch.from_numpy(wet[:n].astype(np.float32))
    energy = torch.sum(target**2).clamp_min(1e-12)
    entries = phase.view(-1)
    for _ in range(1 if entries.numel() == 1 else 2):
        for j in range(entries.numel()):
            # 72 points round the cycle, then three grids of 13 over two steps of the one before
            grid = np.linspace(-math.pi, math.pi, 73)[:-1]
            for _ in range(4):
                errors = []
                for value in grid:
                    entries[j] = float(value)
                    errors.append(float(torch.sum((model(x)[0, 0] - target) ** 2) / energy))
                centre, step = float(grid[int(np.argmin(errors))]), float(grid[1] - grid[0])
                grid = centre + np.linspace(-step, step, 13)
            entries[j] = float(math.remainder(centre, 2.0 * math.pi))
    return float(entries[0])
