"""The Lightning module that trains one stage of a model: its loss on the scored part of
each window, validation on whole files, and the learning-rate schedule (per-epoch decay, and
a cosine over the time budget).

Scoring: the first ``warmup`` samples of a window are context; a model with ``latency``
samples of look-ahead outputs at index n its estimate of the target at n - latency.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import Tensor

from fxclone.guard import DivergenceGuard, GradientClipper
from fxclone.losses import TrainingLoss, esr_score
from fxclone.models.base import EffectModel, Stage

if TYPE_CHECKING:
    from fxclone.training_config import TrainConfig


def score_region(
    estimate: Tensor, target: Tensor, warmup: int, latency: int
) -> tuple[Tensor, Tensor]:
    """The scored parts of a model's output and its target, time on the last axis.

    The first ``warmup`` samples are context; a model with ``latency`` samples of look-ahead
    outputs at index n its estimate of the target at n - latency (models/base.py)."""
    n = target.shape[-1]
    return estimate[..., warmup + latency :], target[..., warmup : n - latency]


def lightning_module(
    model: EffectModel, config: TrainConfig, stage: Stage, warmup: int, val_items: list
) -> Any:
    import lightning as L

    latency = model.latency_samples
    default = monitor(stage) == "val_esr"
    per_item = config.scores_per_item

    class EffectModule(L.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.model = model
            self.loss = stage.loss or TrainingLoss(
                config.esr_weight,
                config.pre_emph_weight,
                config.pre_emphasis,
                config.mrstft_weight,
                per_window=bool(config.esr_per_window),
            )
            # One process only: a skipped step in one of several DDP ranks would hang the rest.
            guarded = config.divergence_guard and config.devices == 1
            self.guard = DivergenceGuard() if guarded else None
            clip = config.clip_gradients
            self.clipper = GradientClipper(factor=clip) if clip else None

        def _estimate(self, dry: Tensor, wet: Tensor, knobs: Tensor) -> tuple[Tensor, Tensor]:
            if stage.data == "autoencoder":  # dry and wet pooled, each its own target
                dry, wet, knobs = torch.cat([dry, wet]), torch.cat([dry, wet]), knobs.repeat(2, 1)
            if stage.forward is None:
                return self.model(dry, knobs), wet
            return stage.forward(self.model, dry, knobs, wet), wet

        def training_step(self, batch: tuple[Tensor, Tensor, Tensor], _: int) -> Tensor | None:
            loss = self.loss(*score_region(*self._estimate(*batch), warmup, latency))
            if self.guard is not None:
                action = self.guard.check(float(loss))
                if action == "rollback":
                    state = self.guard.restore(self.global_step)
                    self.model.load_state_dict(state["model"])
                    self.trainer.optimizers[0].load_state_dict(state["optim"])
                if action != "ok":
                    return None  # Lightning skips the backward pass and the step
            self.log("train_loss", loss, prog_bar=True, on_step=True, on_epoch=True)
            return loss

        def configure_gradient_clipping(self, optimizer: Any, *args: Any, **kwargs: Any) -> None:
            if self.clipper is not None:
                self.clipper.clip(p for g in optimizer.param_groups for p in g["params"])

        def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
            if self.guard is not None:
                checkpoint["divergence_guard"] = self.guard.state_dict()
            if self.clipper is not None:
                checkpoint["gradient_clipper"] = self.clipper.state_dict()

        def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
            if self.guard is not None and "divergence_guard" in checkpoint:
                self.guard.load_state_dict(checkpoint["divergence_guard"])
            if self.clipper is not None and "gradient_clipper" in checkpoint:
                self.clipper.load_state_dict(checkpoint["gradient_clipper"])

        def validation_step(self, batch: int, _: int) -> None:
            # Whole files, padded at the end so a look-ahead model reaches their last sample.
            errs, energies, total = [], [], 0.0
            for dry, wet, knobs in val_items:
                pad = (0, latency)
                est, target = self._estimate(F.pad(dry, pad), F.pad(wet, pad), knobs)
                est, target = score_region(est, target, 0, latency)
                if default:
                    errs.append(float(torch.sum((est - target) ** 2)))
                    energies.append(float(torch.sum(target**2)))
                else:
                    total += float(self.loss(est, target))
            # per_item: each file (one knob setting) its own ESR, as the loss will be
            score = esr_score(errs, energies, per_item) if default else total / len(val_items)
            self.log(monitor(stage), score, prog_bar=True, batch_size=1)

        def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
            # The rate follows the epoch number rather than a stepped scheduler's state, so a
            # run resumed mid-epoch or at an epoch end stays on schedule.
            lr = config.learning_rate * stage.lr_scale * config.lr_decay**self.current_epoch
            lr *= budget_factor(self.trainer, config)
            after = config.esr_per_window_after
            if after is not None and isinstance(self.loss, TrainingLoss):
                self.loss.per_window = budget_share(self.trainer, config) >= after
            if self.guard is not None:
                lr *= self.guard.lr_scale
                optimizer = self.trainer.optimizers[0]
                self.guard.maybe_snapshot(
                    self.global_step,
                    lambda: {"model": self.model.state_dict(), "optim": optimizer.state_dict()},
                )
            for group in self.trainer.optimizers[0].param_groups:
                group["lr"] = lr

        def configure_optimizers(self) -> Any:
            params = stage.parameters(self.model) if stage.parameters else self.model.parameters()
            return torch.optim.Adam(params, lr=config.learning_rate * stage.lr_scale)

    return EffectModule()


def budget_factor(trainer: Any, config: TrainConfig) -> float:
    """The cosine annealing factor for the share of the time budget spent (1 without one).

    Lightning's timer counts training time across sittings (it is saved in checkpoints), so
    a resumed run continues the schedule where it stopped."""
    if not config.anneal_to_budget:
        return 1.0
    done = budget_share(trainer, config)
    return 0.01 + 0.99 * 0.5 * (1.0 + math.cos(math.pi * done))


def budget_share(trainer: Any, config: TrainConfig) -> float:
    """The share (0-1) of the time budget spent training, from Lightning's timer; 0 without
    a budget."""
    if config.max_minutes is None:
        return 0.0
    from lightning.pytorch.callbacks import Timer

    timer = next((c for c in trainer.callbacks if isinstance(c, Timer)), None)
    if timer is None:
        return 0.0
    return min(1.0, (timer.time_elapsed("train") or 0.0) / (config.max_minutes * 60))


def monitor(stage: Stage) -> str:
    """The validation figure a stage keeps its best checkpoint by: ESR whenever the stage
    trains the model's audio output with the configured loss, else the stage's own loss."""
    return "val_esr" if stage.loss is None and stage.data == "pairs" else "val_loss"
