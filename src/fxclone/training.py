"""Training: a Lightning module around any registered model, with checkpoints and resume.

The loss is ESR plus ESR on pre-emphasised audio (plus an optional multi-resolution STFT
term), or a model's own loss; validation ESR on whole validation files drives checkpoint
selection and early stopping. Training windows (fxclone.windows) carry a warm-up prefix that
is excluded from the loss, so every scored sample sees its full past. Models with a protocol
of several stages (pretraining, supervised training, fine-tuning) train them in turn.

Checkpoints survive a kill at any moment: ``last.ckpt`` is written at least every
``checkpoint_minutes`` and at every epoch end, each write atomic (temporary file, fsync,
rename). An epoch's windows depend only on the seed and the epoch number, and the learning rate
only on the epoch, so a run resumed from a mid-epoch checkpoint trains on exactly the batches
an uninterrupted run would have.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import logging
import os
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from fxclone.audio import atomic_path
from fxclone.checkpoints import checkpoint_io, checkpoint_progress, last_checkpoint
from fxclone.errors import FxcloneError, FxcloneNotice
from fxclone.losses import esr_score
from fxclone.models.base import EffectModel, Items, Stage
from fxclone.polish import polish
from fxclone.progress import progress_callback
from fxclone.stage_module import lightning_module, monitor
from fxclone.training_config import TrainConfig, TrainResult, train_config
from fxclone.windows import WindowDataset, WindowSampler, warmup_samples

# Settings that may change between sittings of one run (they decide when to stop or save, or
# where to compute, not what is learned): left out of the run signature.
_STOPPING: tuple[str, ...] = ("max_epochs", "max_minutes", "patience", "checkpoint_minutes")
_STOPPING += ("accelerator", "devices")
# The polish follows gradient training and changes nothing in its checkpoints.
_STOPPING += ("polish",)


def fit(
    model: EffectModel,
    train_items: Items,
    val_items: Items,
    config: TrainConfig,
    run_dir: str | os.PathLike[str],
    *,
    resume: bool = True,
    progress: bool = True,
    closed_form: bool = True,
    keep_start: bool = False,
) -> TrainResult:
    """Train ``model`` in place, stage by stage; checkpoints go to ``run_dir/checkpoints``.

    A model with a closed-form estimate (``fit_closed_form(train_items)``, e.g. the linear
    impulse-response model) starts from it when ``closed_form`` is set (the caller clears it
    when the weights come from ``--init``), and training never returns weights that score
    worse on validation than that start; ``keep_start`` gives the same guarantee for the
    weights the model comes with (fine-tuning from ``--init``).

    ``*_items`` are ``(dry, wet, knobs)``: float32 ``(channels, samples)`` audio and a
    normalised knob vector ``(n_knobs,)``. If ``run_dir`` holds a checkpoint of the same
    configuration and ``resume`` is set, training continues from it. A model with several
    training stages (``model.training_stages()``, e.g. pretraining, then supervised training,
    then fine-tuning) trains each in ``run_dir/stageN-NAME`` on its share of the epochs and
    minutes; a re-run skips the stages already finished.
    With ``config.polish``, gradient training gets the rest of the time budget and a
    Levenberg-Marquardt polish (fxclone.polish) that share; its weights are kept if they
    validate better.
    Returns the model loaded with the weights of the best validation ESR.
    """
    if config.polish > 0:
        minutes = config.max_minutes
        gradient = dataclasses.replace(
            config, polish=0.0, max_minutes=minutes and minutes * (1.0 - config.polish)
        )
        result = fit(model, train_items, val_items, gradient, run_dir, resume=resume,
                     progress=progress, closed_form=closed_form, keep_start=keep_start)  # fmt: skip
        done = polish(
            model,
            train_items,
            val_items,
            config,
            seconds=minutes and minutes * config.polish * 60.0,
            progress=progress_callback("polishing") if progress else None,
        )
        result.polish = done.summary()
        if done.kept:
            result.best_val_esr = done.val_esr
        result.train_seconds += done.seconds
        return result
    fit_closed_form = getattr(model, "fit_closed_form", None) if closed_form else None
    solved = callable(fit_closed_form)
    if not (solved or keep_start):
        return _fit_stages(model, train_items, val_items, config, run_dir, resume, progress)
    if fit_closed_form is not None:
        fit_closed_form(train_items)
    start_esr = validation_esr(model, val_items)
    start = copy.deepcopy(model.state_dict())
    result = _fit_stages(model, train_items, val_items, config, run_dir, resume, progress)
    if not result.best_val_esr <= start_esr:
        model.load_state_dict(start)
        model.eval()
        result.best_val_esr = start_esr
        if not solved:
            warnings.warn(
                FxcloneNotice(
                    f"training did not beat the starting weights on validation (ESR "
                    f"{start_esr:.4g}); the model keeps them. Try a lower --lr or more data"
                ),
                stacklevel=2,
            )
    if solved:
        result.closed_form_val_esr = start_esr
    else:
        result.start_val_esr = start_esr
    return result


def _fit_stages(
    model: EffectModel,
    train_items: Items,
    val_items: Items,
    config: TrainConfig,
    run_dir: str | os.PathLike[str],
    resume: bool,
    progress: bool,
) -> TrainResult:
    stages = model.training_stages()
    if config.val_seconds is not None:  # (models too slow to validate on whole files)
        n = max(1, int(config.val_seconds * model.sample_rate))
        val_items = [(d[:, :n], w[:, :n], k) for d, w, k in val_items]
    if not stages:  # fitted whole by its closed form (e.g. the oscillator model)
        esr = validation_esr(model, val_items)
        return TrainResult(model.eval(), esr, 0, 0.0, resumed=False, run_dir=Path(run_dir))
    if len(stages) == 1:
        only = _fit_stage(model, stages[0], train_items, val_items, config, Path(run_dir),
                          resume, progress, signed_stage=False)  # fmt: skip
        if monitor(stages[0]) != "val_esr":  # kept by its own loss: report the ESR too
            only.best_val_esr = validation_esr(model, val_items)
        return only
    run = Path(run_dir)
    done: list[dict[str, Any]] = []
    result: TrainResult | None = None
    for i, stage in enumerate(stages):
        sub = run / f"stage{i + 1}-{stage.name}"
        share = dataclasses.replace(
            config,
            max_epochs=max(1, round(config.max_epochs * stage.budget)),
            max_minutes=None if config.max_minutes is None else config.max_minutes * stage.budget,
        )
        finished = sub / "finished.json"
        if resume and finished.exists() and (sub / "checkpoints" / "best.ckpt").exists():
            _load_best(model, sub / "checkpoints" / "best.ckpt")
            done.append(json.loads(finished.read_text()))
            continue
        result = _fit_stage(model, stage, train_items, val_items, share, sub, resume, progress,
                            signed_stage=True)  # fmt: skip
        record = {"stage": stage.name, **result.summary()}
        with atomic_path(finished) as tmp:
            tmp.write_text(json.dumps(record))
        done.append(record)
        resume = resume and result.resumed  # a stage trained afresh invalidates those after it
    last = stages[-1]
    best = (
        done[-1]["best_val_esr"] if monitor(last) == "val_esr" else validation_esr(model, val_items)
    )
    model.eval()
    return TrainResult(
        model=model,
        best_val_esr=float(best),
        epochs=sum(int(d["epochs"]) for d in done),
        train_seconds=sum(float(d["train_seconds"]) for d in done),
        resumed=any(d["resumed"] for d in done) or result is None,
        run_dir=run,
        steps=sum(int(d["steps"]) for d in done),
        resumed_from_step=result.resumed_from_step if result else 0,
        stages=done,
    )


@torch.no_grad()
def validation_esr(
    model: EffectModel,
    items: Items,
    per_item: bool = False,
) -> float:
    """ESR of ``model`` over whole (dry, wet, knobs) items, latency compensated: pooled, or
    each item's own averaged (``per_item``, as training on per-window ESR scores them)."""
    model.eval()
    lat = model.latency_samples
    errors, energies = [], []
    if model.free_running and items:  # the split is one stream: its oscillator runs on
        dry_all = np.concatenate([d for d, _, _ in items], axis=1)
        wet_all = np.concatenate([w for _, w, _ in items], axis=1)
        items = [(dry_all, wet_all, items[0][2])]
    for dry, wet, knobs in items:
        x = F.pad(torch.from_numpy(dry)[None], (0, lat))
        y = model(x, torch.as_tensor(knobs)[None].float())[..., lat:]
        errors.append(float(torch.sum((y - torch.from_numpy(wet)[None]) ** 2)))
        energies.append(float(np.sum(wet.astype(np.float64) ** 2)))
    return esr_score(errors, energies, per_item)


def _load_best(model: EffectModel, path: Path) -> None:
    state = torch.load(path, map_location="cpu", weights_only=True)["state_dict"]
    model.load_state_dict({k.removeprefix("model."): v for k, v in state.items()})


def _fit_stage(
    model: EffectModel,
    stage: Stage,
    train_items: Items,
    val_items: Items,
    config: TrainConfig,
    run: Path,
    resume: bool,
    progress: bool,
    signed_stage: bool,
) -> TrainResult:
    """One stage of training in ``run`` (see :func:`fit`)."""
    import lightning as L
    from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
    from lightning.pytorch.loggers import CSVLogger

    ckpt_dir = run / "checkpoints"
    # Stopping rules may change between sittings (train longer); anything else may not.
    recipe = {k: v for k, v in dataclasses.asdict(config).items() if k not in _STOPPING}
    sig: dict[str, Any] = {"train": recipe, "model": model.describe()}
    if signed_stage:
        sig["stage"] = {"name": stage.name, "data": stage.data, "lr_scale": stage.lr_scale}
    signature = json.dumps(sig, sort_keys=True)
    last = ckpt_dir / "last.ckpt"
    resumed, resumed_from_step = False, 0
    if last.exists() and resume:
        sig_file = run / "signature.json"
        if sig_file.exists() and sig_file.read_text() == signature:
            resumed, (resumed_from_step, done) = True, checkpoint_progress(last)
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
    if config.segment_samples <= model.latency_samples:
        raise FxcloneError(
            f"training windows of {config.segment_samples} samples are shorter than the model's"
            f" look-ahead ({model.latency_samples} samples); set segment_samples above it"
        )
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
    module = lightning_module(model, config, stage, warm, val)
    sampler = WindowSampler(data, config.seed)
    loader = DataLoader(data, batch_size=config.batch_size, sampler=sampler, num_workers=0)
    best = ModelCheckpoint(
        dirpath=ckpt_dir,
        filename="best",
        monitor=monitor(stage),
        mode="min",
        save_top_k=1,
        enable_version_counter=False,
    )
    callbacks: list[Any] = [
        EarlyStopping(monitor=monitor(stage), mode="min", patience=config.patience),
        best,  # checkpoint callbacks run last, in this order: best, then last
        last_checkpoint(last, config.checkpoint_minutes * 60),
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
    guard_note = module.guard.summary() if module.guard is not None else None
    if guard_note:
        warnings.warn(FxcloneNotice(f"{run}: {guard_note}"), stacklevel=2)
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


def _quiet_lightning() -> None:
    for name in ("lightning", "lightning.pytorch", "lightning.fabric", "pytorch_lightning"):
        logging.getLogger(name).setLevel(logging.ERROR)
    os.environ.setdefault("POSSIBLE_USER_WARNING", "off")


__all__ = ["TrainConfig", "TrainResult", "fit", "train_config", "validation_esr"]
