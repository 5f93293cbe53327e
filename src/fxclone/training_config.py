"""The training settings (every one that decides the trained weights) and a run's result."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fxclone.models.base import EffectModel, config_from_dict
from fxclone.models.registry import DEFAULT_MODEL, get_preset


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides the trained weights (with the dataset)."""

    model: str = DEFAULT_MODEL
    batch_size: int = 8
    segment_samples: int = 16384
    learning_rate: float = 3e-3
    lr_decay: float = 0.993  # learning rate x lr_decay per epoch
    esr_weight: float = 1.0  # loss = esr_weight * ESR + pre_emph_weight * ESR(pre-emphasised)
    pre_emph_weight: float = 1.0
    pre_emphasis: float = 0.95  # first-order pre-emphasis coefficient
    mrstft_weight: float = 0.0  # + mrstft_weight * multi-resolution STFT distance
    # ESR per training window, averaged (True: quiet knob settings weigh as much as loud
    # ones), or pooled over the batch (False or None, the default; see docs/design.md).
    esr_per_window: bool | None = None
    # Switch to the per-window ESR once this share of the time budget (max_minutes) is spent:
    # the pooled loss first moves a conditioned model off the all-zero output it would stay at
    # under per-window scores from the start. None: the switch is never made (nor is it
    # without max_minutes).
    esr_per_window_after: float | None = None
    max_epochs: int = 1000
    max_minutes: float | None = None
    patience: int = 20  # epochs without a better validation ESR before stopping
    # With max_minutes, also scale the rate by a cosine from 1 to 0.01 over the time budget,
    # so a run that is stopped by the clock ends annealed rather than mid-stride.
    anneal_to_budget: bool = True
    # Skip steps whose loss spikes far above the recent median; on a run of them restore the
    # weights from a few steps back and halve the rate (fxclone.guard).
    divergence_guard: bool = True
    # Hold each step's gradient norm to this many times the median of the recent ones
    # (adaptive clipping; fxclone.guard.GradientClipper); None: no clipping.
    clip_gradients: float | None = None
    checkpoint_minutes: float = 2.0  # last.ckpt at least this often (and at every epoch end)
    # Finish with a Levenberg-Marquardt polish in float64 (fxclone.polish), given this share
    # of the time budget (max_minutes; without one, to convergence or polish.MAX_ITERATIONS
    # iterations); 0: no polish. For small, identifiable models that can match their effect
    # almost exactly (grey-box families).
    polish: float = 0.0
    seed: int = 0
    windows_per_epoch: int | None = None  # default: the training split covered once
    val_seconds: float | None = None  # validate on this much of each file (default: all)
    accelerator: str = "cpu"
    devices: int = 1

    def __post_init__(self) -> None:
        if self.batch_size < 1 or self.segment_samples < 16:
            raise ValueError("batch_size must be >= 1 and segment_samples >= 16")
        if self.learning_rate <= 0:
            raise ValueError("learning_rate must be positive")
        if self.max_minutes is not None and self.max_minutes <= 0:
            raise ValueError("max_minutes must be positive")
        if not self.checkpoint_minutes > 0:
            raise ValueError("checkpoint_minutes must be positive")
        if self.val_seconds is not None and not self.val_seconds > 0:
            raise ValueError("val_seconds must be positive")
        if not 0.0 <= self.polish < 1.0:
            raise ValueError(f"polish must be in [0, 1), not {self.polish}")
        after = self.esr_per_window_after
        if after is not None and not 0.0 <= after <= 1.0:
            raise ValueError(f"esr_per_window_after must be in [0, 1], not {after}")

    @property
    def scores_per_item(self) -> bool:
        """Whether validation scores each file (one knob setting) by its own ESR: a run that
        trains on per-window ESR, now or later, keeps its best by the same measure."""
        return bool(self.esr_per_window) or self.esr_per_window_after is not None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrainConfig:
        return config_from_dict(cls, data, "training config")


def train_config(settings: Mapping[str, Any]) -> TrainConfig:
    """The training config for ``settings``, the chosen model's own defaults (its authors'
    window length, batch size, learning rate) filling what the settings leave out."""
    preset = get_preset(settings.get("model", DEFAULT_MODEL))
    return TrainConfig.from_dict({**preset.train_defaults, **settings})


@dataclass
class TrainResult:
    """What a training run produced."""

    model: EffectModel
    best_val_esr: float
    epochs: int
    train_seconds: float
    resumed: bool
    run_dir: Path
    steps: int = 0  # optimiser steps over all sittings
    resumed_from_step: int = 0  # the step of the checkpoint this sitting started from
    stages: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    polish: dict[str, Any] | None = None  # what the polish did (PolishResult.summary)
    closed_form_val_esr: float | None = None  # validation ESR of a closed-form start
    start_val_esr: float | None = None  # validation ESR of the given starting weights

    def summary(self) -> dict[str, Any]:
        keys = ("best_val_esr", "epochs", "steps", "resumed", "resumed_from_step")
        out = {k: getattr(self, k) for k in keys} | {"train_seconds": round(self.train_seconds, 1)}
        for key in ("closed_form_val_esr", "start_val_esr"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        out |= {"polish": self.polish} if self.polish is not None else {}
        return out | ({"stages": self.stages} if self.stages else {})


__all__ = ["TrainConfig", "TrainResult", "train_config"]
