"""Training: a Lightning module around any registered model, with checkpoints and resume.

The loss is ESR on pre-emphasised audio (plus an optional multi-resolution STFT term);
validation ESR on whole validation files drives checkpoint selection and early stopping.
Training windows carry a warm-up prefix (the model's receptive field, or a burn-in for
recurrent models) that is excluded from the loss, so every scored sample sees its full past.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from fxclone.errors import FxcloneError
from fxclone.losses import TrainingLoss
from fxclone.models.base import EffectModel, config_from_dict
from fxclone.models.registry import DEFAULT_MODEL

RECURRENT_BURN_IN = 2048
_STOPPING = ("max_epochs", "max_minutes", "patience", "accelerator", "devices")


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides the trained weights (with the dataset)."""

    model: str = DEFAULT_MODEL
    batch_size: int = 8
    segment_samples: int = 16384
    learning_rate: float = 3e-3
    lr_decay: float = 0.993  # ExponentialLR gamma, per epoch
    esr_weight: float = 1.0  # loss = esr_weight * ESR + pre_emph_weight * ESR(pre-emphasised)
    pre_emph_weight: float = 1.0
    pre_emphasis: float = 0.95  # first-order pre-emphasis coefficient
    mrstft_weight: float = 0.0  # + mrstft_weight * multi-resolution STFT distance
    max_epochs: int = 1000
    max_minutes: float | None = None
    patience: int = 20  # epochs without a better validation ESR before stopping
    seed: int = 0
    windows_per_epoch: int | None = None  # default: the training split covered once
    accelerator: str = "cpu"
    devices: int = 1

    def __post_init__(self) -> None:
        if self.batch_size < 1 or self.segment_samples < 16:
            raise ValueError("batch_size must be >= 1 and segment_samples >= 16")
        if self.learning_rate <= 0:
            raise ValueError("learning_rate must be positive")
        if self.max_minutes is not None and self.max_minutes <= 0:
            raise ValueError("max_minutes must be positive")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrainConfig:
        return config_from_dict(cls, data, "training config")


def warmup_samples(model: EffectModel) -> int:
    """Samples of context before each scored window: receptive field, or a burn-in."""
    if model.receptive_field <= 0:
        return RECURRENT_BURN_IN
    return model.receptive_field - 1


class WindowDataset(Dataset):
    """Windows of ``warmup + segment`` samples from (dry, wet, knobs) items.

    Items are left-padded with ``warmup`` zeros so windows at the very start see silence, as
    the model does at the start of a file. Window starts lie on a half-window grid jittered per
    draw with torch's seeded global generator, so the same seed gives the same batches.
    """

    def __init__(
        self,
        items: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]],
        warmup: int,
        segment: int,
        windows_per_epoch: int | None = None,
    ) -> None:
        self.warmup, self.segment = warmup, segment
        self.dry: list[Tensor] = []
        self.wet: list[Tensor] = []
        self.knobs: list[Tensor] = []
        self.index: list[tuple[int, int]] = []
        hop = max(1, segment // 2)
        for dry, wet, knobs in items:
            if dry.shape[1] < segment:
                continue
            pad = np.zeros((dry.shape[0], warmup), np.float32)
            self.dry.append(torch.from_numpy(np.concatenate([pad, dry], axis=1)))
            self.wet.append(torch.from_numpy(np.concatenate([pad, wet], axis=1)))
            self.knobs.append(torch.as_tensor(knobs, dtype=torch.float32))
            n = dry.shape[1]
            self.index += [(len(self.dry) - 1, s) for s in range(0, n - segment + 1, hop)]
        if not self.index:
            raise FxcloneError(
                f"the training split has no file longer than one training window ({segment} "
                "samples); generate longer material or pass a smaller --segment"
            )
        self.length = windows_per_epoch or max(1, math.ceil(len(self.index) / 2))

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor, Tensor]:
        k = int(torch.randint(len(self.index), ()).item()) if self.length != len(self.index) else i
        item, start = self.index[k]
        n = self.dry[item].shape[1] - self.warmup
        jitter = int(torch.randint(self.segment // 2 + 1, ()).item())
        start = min(start + jitter, n - self.segment)
        sl = slice(start, start + self.warmup + self.segment)
        return self.dry[item][:, sl], self.wet[item][:, sl], self.knobs[item]


def _lightning_module(model: EffectModel, config: TrainConfig, warmup: int, val_items: list) -> Any:
    import lightning as L

    class EffectModule(L.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.model = model
            self.loss = TrainingLoss(
                config.esr_weight,
                config.pre_emph_weight,
                config.pre_emphasis,
                config.mrstft_weight,
            )

        def training_step(self, batch: tuple[Tensor, Tensor, Tensor], _: int) -> Tensor:
            dry, wet, knobs = batch
            y = self.model(dry, knobs)[..., warmup:]
            loss = self.loss(y, wet[..., warmup:])
            self.log("train_loss", loss, prog_bar=True, on_step=True, on_epoch=True)
            return loss

        def validation_step(self, batch: int, _: int) -> None:
            err = energy = 0.0
            for dry, wet, knobs in val_items:
                y = self.model(dry, knobs)
                err += float(torch.sum((y - wet) ** 2))
                energy += float(torch.sum(wet**2))
            self.log("val_esr", err / max(energy, 1e-12), prog_bar=True, batch_size=1)

        def configure_optimizers(self) -> Any:
            opt = torch.optim.Adam(self.model.parameters(), lr=config.learning_rate)
            sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=config.lr_decay)
            return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "epoch"}}

    return EffectModule()


@dataclass
class TrainResult:
    """What a training run produced."""

    model: EffectModel
    best_val_esr: float
    epochs: int
    train_seconds: float
    resumed: bool
    run_dir: Path

    def summary(self) -> dict[str, Any]:
        return {
            "best_val_esr": self.best_val_esr,
            "epochs": self.epochs,
            "train_seconds": round(self.train_seconds, 1),
            "resumed": self.resumed,
        }


def fit(
    model: EffectModel,
    train_items: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]],
    val_items: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]],
    config: TrainConfig,
    run_dir: str | os.PathLike[str],
    *,
    resume: bool = True,
    progress: bool = True,
) -> TrainResult:
    """Train ``model`` in place; checkpoints go to ``run_dir/checkpoints``.

    ``*_items`` are ``(dry, wet, knobs)``: float32 ``(channels, samples)`` audio and a
    normalised knob vector ``(n_knobs,)``. If ``run_dir`` holds a checkpoint of the same
    configuration and ``resume`` is set, training continues from it.
    Returns the model loaded with the weights of the best validation ESR.
    """
    import lightning as L
    from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint

    run = Path(run_dir)
    ckpt_dir = run / "checkpoints"
    # Stopping rules may change between sittings (train longer); anything else may not.
    recipe = {k: v for k, v in dataclasses.asdict(config).items() if k not in _STOPPING}
    signature = json.dumps({"train": recipe, "model": model.describe()}, sort_keys=True)
    last = ckpt_dir / "last.ckpt"
    resumed = False
    if last.exists() and resume:
        sig_file = run / "signature.json"
        if sig_file.exists() and sig_file.read_text() == signature:
            resumed = True
        else:
            raise FxcloneError(
                f"{run} holds a run with another configuration; pass --fresh to start over "
                "or choose another --run-dir"
            )
    elif not resume and ckpt_dir.exists():
        for f in ckpt_dir.glob("*.ckpt"):
            f.unlink()
    try:
        run.mkdir(parents=True, exist_ok=True)
        (run / "signature.json").write_text(signature)
    except OSError as exc:
        raise FxcloneError(f"cannot write the run folder {run} ({exc.strerror})") from None

    warm = warmup_samples(model)
    data = WindowDataset(train_items, warm, config.segment_samples, config.windows_per_epoch)
    val = [
        (torch.from_numpy(d)[None], torch.from_numpy(w)[None], torch.as_tensor(k)[None].float())
        for d, w, k in val_items
    ]
    if not val:
        raise FxcloneError(
            "the dataset has no validation items; regenerate it with val_seconds > 0"
        )

    _quiet_lightning()
    L.seed_everything(config.seed, workers=True, verbose=False)
    module = _lightning_module(model, config, warm, val)
    generator = torch.Generator().manual_seed(config.seed)
    loader = DataLoader(
        data,
        batch_size=config.batch_size,
        shuffle=data.length == len(data.index),
        generator=generator,
        num_workers=0,
        drop_last=False,
    )
    best = ModelCheckpoint(
        dirpath=ckpt_dir,
        filename="best",
        monitor="val_esr",
        mode="min",
        save_top_k=1,
        save_last=True,
        enable_version_counter=False,
    )
    callbacks: list[Any] = [
        best,
        EarlyStopping(monitor="val_esr", mode="min", patience=config.patience),
    ]
    if progress:
        from lightning.pytorch.callbacks import RichProgressBar

        callbacks.append(RichProgressBar(leave=False))
    max_time = None
    if config.max_minutes is not None:
        max_time = {"seconds": int(round(config.max_minutes * 60))}
    trainer = L.Trainer(
        accelerator=config.accelerator,
        devices=config.devices,
        max_epochs=config.max_epochs,
        max_time=max_time,
        callbacks=callbacks,
        logger=_csv_logger(run),
        deterministic=True,
        enable_progress_bar=progress,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        default_root_dir=str(run),
    )
    t0 = time.time()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.fit(
            module,
            train_dataloaders=loader,
            val_dataloaders=_single_batch(),
            ckpt_path=str(last) if resumed else None,
            weights_only=True if resumed else None,
        )
    elapsed = time.time() - t0
    best_path = Path(best.best_model_path) if best.best_model_path else last
    if best_path.exists():
        state = torch.load(best_path, map_location="cpu", weights_only=True)["state_dict"]
        module.load_state_dict(state)
    score = best.best_model_score
    model.eval()
    return TrainResult(
        model=model,
        best_val_esr=float(score) if score is not None else float("nan"),
        epochs=int(trainer.current_epoch),
        train_seconds=elapsed,
        resumed=resumed,
        run_dir=run,
    )


class _One(Dataset):
    def __len__(self) -> int:
        return 1

    def __getitem__(self, i: int) -> int:
        return i


def _single_batch() -> DataLoader:
    """A one-item loader: validation runs over whole files inside ``validation_step``."""
    return DataLoader(_One(), batch_size=None)


def _csv_logger(run: Path) -> Any:
    from lightning.pytorch.loggers import CSVLogger

    return CSVLogger(str(run), name="logs", version=0)


def _quiet_lightning() -> None:
    for name in ("lightning", "lightning.pytorch", "lightning.fabric", "pytorch_lightning"):
        logging.getLogger(name).setLevel(logging.ERROR)
    os.environ.setdefault("POSSIBLE_USER_WARNING", "off")
