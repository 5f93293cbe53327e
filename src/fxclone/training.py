"""Training: a Lightning module around any registered model, with checkpoints and resume.

The loss is ESR on pre-emphasised audio (plus an optional multi-resolution STFT term);
validation ESR on whole validation files drives checkpoint selection and early stopping.
Training windows carry a warm-up prefix (the model's receptive field, or a burn-in for
recurrent models) that is excluded from the loss, so every scored sample sees its full past.

Checkpoints survive a kill at any moment: ``last.ckpt`` is written at least every
``checkpoint_minutes`` and at every epoch end, each write atomic (temporary file, fsync,
rename). An epoch's windows depend only on the seed and the epoch number, and the learning rate
only on the epoch, so a run resumed from a mid-epoch checkpoint trains on exactly the batches
an uninterrupted run would have.
"""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import math
import os
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Sampler, TensorDataset

from fxclone.audio import atomic_path
from fxclone.errors import FxcloneError
from fxclone.losses import TrainingLoss
from fxclone.models.base import EffectModel, config_from_dict
from fxclone.models.registry import DEFAULT_MODEL

RECURRENT_BURN_IN = 2048
# Settings that may change between sittings of one run (they decide when to stop or save, or
# where to compute, not what is learned): left out of the run signature.
_STOPPING: tuple[str, ...] = ("max_epochs", "max_minutes", "patience", "checkpoint_minutes")
_STOPPING += ("accelerator", "devices")


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
    max_epochs: int = 1000
    max_minutes: float | None = None
    patience: int = 20  # epochs without a better validation ESR before stopping
    checkpoint_minutes: float = 2.0  # last.ckpt at least this often (and at every epoch end)
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
        if not self.checkpoint_minutes > 0:
            raise ValueError("checkpoint_minutes must be positive")

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
    the model does at the start of a file. Window starts lie on a half-window grid; an index is
    a draw ``(window, jitter)`` from :class:`WindowSampler`.
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

    def __getitem__(self, draw: tuple[int, int]) -> tuple[Tensor, Tensor, Tensor]:
        k, jitter = draw
        item, start = self.index[k]
        n = self.dry[item].shape[1] - self.warmup
        start = min(start + jitter, n - self.segment)
        sl = slice(start, start + self.warmup + self.segment)
        return self.dry[item][:, sl], self.wet[item][:, sl], self.knobs[item]


class WindowSampler(Sampler[tuple[int, int]]):
    """An epoch's window draws ``(window, jitter)``, a function of the seed and epoch alone.

    With as many draws per epoch as grid windows, an epoch is a permutation of the grid;
    otherwise windows are drawn with replacement. ``done()``, read when the epoch's first
    batch is drawn, is how many draws a run resumed mid-epoch already trained on: skipped."""

    def __init__(self, data: WindowDataset, seed: int) -> None:
        self.n, self.length, self.max_jitter = len(data.index), data.length, data.segment // 2
        self.seed, self.epoch = seed, 0
        self.done: Callable[[], int] = lambda: 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.length

    def __iter__(self) -> Iterator[tuple[int, int]]:
        g = torch.Generator().manual_seed((self.seed * 1_000_003 + self.epoch) % 2**63)
        if self.length == self.n:
            windows = torch.randperm(self.n, generator=g)
        else:
            windows = torch.randint(self.n, (self.length,), generator=g)
        jitters = torch.randint(self.max_jitter + 1, (self.length,), generator=g)
        for i in range(min(self.done(), self.length), self.length):
            yield int(windows[i]), int(jitters[i])


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

        def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
            # The rate follows the epoch number rather than a stepped scheduler's state, so a
            # run resumed mid-epoch or at an epoch end stays on schedule.
            lr = config.learning_rate * config.lr_decay**self.current_epoch
            for group in self.trainer.optimizers[0].param_groups:
                group["lr"] = lr

        def configure_optimizers(self) -> Any:
            return torch.optim.Adam(self.model.parameters(), lr=config.learning_rate)

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
    steps: int = 0  # optimiser steps over all sittings
    resumed_from_step: int = 0  # the step of the checkpoint this sitting started from

    def summary(self) -> dict[str, Any]:
        keys = ("best_val_esr", "epochs", "steps", "resumed", "resumed_from_step")
        return {k: getattr(self, k) for k in keys} | {"train_seconds": round(self.train_seconds, 1)}


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
    from lightning.pytorch.loggers import CSVLogger

    run = Path(run_dir)
    ckpt_dir = run / "checkpoints"
    # Stopping rules may change between sittings (train longer); anything else may not.
    recipe = {k: v for k, v in dataclasses.asdict(config).items() if k not in _STOPPING}
    signature = json.dumps({"train": recipe, "model": model.describe()}, sort_keys=True)
    last = ckpt_dir / "last.ckpt"
    resumed, resumed_from_step = False, 0
    if last.exists() and resume:
        sig_file = run / "signature.json"
        if sig_file.exists() and sig_file.read_text() == signature:
            resumed, (resumed_from_step, done) = True, _checkpoint_progress(last)
            if done > config.max_epochs:
                raise FxcloneError(
                    f"{run} has already trained {done} epochs, more than the {config.max_epochs}"
                    f" asked for; pass --epochs {done} or more to continue, or --fresh"
                )
        else:
            raise FxcloneError(
                f"{run} holds a run with another configuration; pass --fresh to start over "
                "or choose another --run-dir"
            )
    elif not resume and ckpt_dir.exists():
        for f in ckpt_dir.glob("*.ckpt"):
            f.unlink()
    for f in ckpt_dir.glob(".*.part"):  # temporary files of writes that a kill interrupted
        f.unlink(missing_ok=True)
    with atomic_path(run / "signature.json") as tmp:
        tmp.write_text(signature)

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
    sampler = WindowSampler(data, config.seed)
    loader = DataLoader(data, batch_size=config.batch_size, sampler=sampler, num_workers=0)
    best = ModelCheckpoint(
        dirpath=ckpt_dir,
        filename="best",
        monitor="val_esr",
        mode="min",
        save_top_k=1,
        enable_version_counter=False,
    )
    callbacks: list[Any] = [
        EarlyStopping(monitor="val_esr", mode="min", patience=config.patience),
        best,  # checkpoint callbacks run last, in this order: best, then last
        _last_checkpoint(last, config.checkpoint_minutes * 60),
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
        plugins=[checkpoint_io()],
        logger=CSVLogger(str(run), name="logs", version=0),
        deterministic=True,
        enable_progress_bar=progress,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        default_root_dir=str(run),
    )
    if config.devices == 1:  # (a distributed sampler would re-deal the draws)
        batches = trainer.fit_loop.epoch_loop.batch_progress.current
        sampler.done = lambda: batches.ready * config.batch_size
    t0 = time.time()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            trainer.fit(
                module,
                train_dataloaders=loader,
                # one item: validation runs over whole files inside ``validation_step``
                val_dataloaders=DataLoader(TensorDataset(torch.zeros(1)), batch_size=None),
                ckpt_path=str(last) if resumed else None,
                weights_only=True if resumed else None,
            )
        except SystemExit:  # Lightning answers Ctrl-C with sys.exit(1): pass the Ctrl-C on
            if trainer.interrupted:
                raise KeyboardInterrupt from None
            raise
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
        steps=int(trainer.global_step),
        resumed_from_step=resumed_from_step,
    )


def _checkpoint_progress(path: Path) -> tuple[int, int]:
    """(optimiser step, epochs run) of a checkpoint; refuses an unreadable one."""
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
        done = ckpt["loops"]["fit_loop"]["epoch_progress"]["current"]["processed"]
        return int(ckpt["global_step"]), int(done)
    except Exception as exc:  # any failure to unpickle means the same thing to the user
        detail = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:100]
        raise FxcloneError(
            f"{path} cannot be read ({detail}); pass --fresh to start over"
        ) from None


def checkpoint_io() -> Any:
    """A Lightning checkpoint writer: temporary file, fsync, rename (see ``atomic_path``), so
    a kill, a full disk or a crash during a write leaves the previous checkpoint intact."""
    from lightning.fabric.plugins import TorchCheckpointIO

    class AtomicCheckpointIO(TorchCheckpointIO):
        def save_checkpoint(
            self, checkpoint: dict[str, Any], path: Any, storage_options: Any = None
        ) -> None:
            buffer = io.BytesIO()  # serialised first: a failed write then fails cleanly
            torch.save(checkpoint, buffer)
            with atomic_path(path, durable=True) as tmp:
                tmp.write_bytes(buffer.getbuffer())

    return AtomicCheckpointIO()


def _last_checkpoint(path: Path, interval_s: float) -> Any:
    """A callback writing ``path`` every ``interval_s`` of training and at every epoch end.

    Mid-epoch writes skip an epoch's final batch: the epoch-end write (after validation, early
    stopping and the best checkpoint) follows at once, and a checkpoint taken between the last
    batch and validation would make a resumed run skip that validation."""
    from lightning.pytorch.callbacks import Checkpoint

    class LastCheckpoint(Checkpoint):
        saved_at, step = time.monotonic(), -1

        def on_train_batch_end(
            self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int
        ) -> None:
            final = trainer.fit_loop.epoch_loop.batch_progress.is_last_batch
            if not final and time.monotonic() - self.saved_at >= interval_s:
                self._save(trainer)

        def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
            self._save(trainer)

        def on_train_end(self, trainer: Any, pl_module: Any) -> None:
            self._save(trainer)  # stopped by the time limit mid-epoch

        def _save(self, trainer: Any) -> None:
            if trainer.global_step != self.step:
                trainer.save_checkpoint(path)
                self.step = trainer.global_step
            self.saved_at = time.monotonic()

    return LastCheckpoint()


def _quiet_lightning() -> None:
    for name in ("lightning", "lightning.pytorch", "lightning.fabric", "pytorch_lightning"):
        logging.getLogger(name).setLevel(logging.ERROR)
    os.environ.setdefault("POSSIBLE_USER_WARNING", "off")
