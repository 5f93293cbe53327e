"""``fxclone demo``: the whole journey (generate, render, train, evaluate, apply) on the built-in
distortion, on CPU, in minutes."""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fxclone.audio import write_json

PathLike = str | os.PathLike[str]
Progress = Callable[[int, int], None]

DEMO_EFFECT = "distortion"


def demo(
    out_dir: PathLike,
    *,
    epochs: int = 12,
    minutes: float = 10.0,
    seed: int = 0,
    model: str | None = None,
    progress: bool = True,
    announce: Callable[[str], None] = lambda _msg: None,
) -> dict[str, Any]:
    """The whole journey on the built-in distortion: generate, render, train, evaluate, apply.

    Writes ``out_dir/{data, model.safetensors, eval, applied.wav, metrics.json}`` and returns the
    metrics. Training runs ``epochs`` epochs; ``minutes`` caps its wall time.
    """
    from fxclone.dataset import GenerateConfig
    from fxclone.journey import apply, evaluate, generate, render, train
    from fxclone.training import TrainConfig

    out = Path(out_dir)
    data = out / "data"
    announce(f"1/5 generate: synthetic dry signals -> {data}")
    generate(data, GenerateConfig(seed=seed), progress=_bar(progress, "generate"))
    announce(f"2/5 render: built-in '{DEMO_EFFECT}' with its default knobs")
    render(data, DEMO_EFFECT, None, progress=_bar(progress, "render"))
    # A fixed epoch count keeps the demo reproducible; the learning rate anneals over it
    # (x0.8 per epoch), and the time cap only matters on a machine much slower than 2 cores.
    config = TrainConfig(seed=seed, max_epochs=epochs, lr_decay=0.8, max_minutes=minutes)
    if model:
        config = dataclasses.replace(config, model=model)
    announce(f"3/5 train: {config.model}, {epochs} epochs (at most {minutes:g} min) on CPU")
    t0 = time.time()
    summary = train(data, out / "model.safetensors", config, fresh=True, progress=progress)
    train_seconds = time.time() - t0
    announce("4/5 evaluate: test split (unseen material) against linear and static baselines")
    metrics = evaluate(
        out / "model.safetensors",
        data,
        out / "eval",
        report=True,
        progress=_bar(progress, "evaluate"),
    )
    announce("5/5 apply: stream the test dry signal through the model")
    test_dry = out / "eval" / "test_dry.wav"
    t1 = time.time()
    apply(
        out / "model.safetensors", test_dry, out / "applied.wav", progress=_bar(progress, "apply")
    )
    apply_seconds = time.time() - t1
    metrics = {
        **metrics,
        "train_seconds": round(train_seconds, 1),
        "epochs": summary["epochs"],
        "best_val_esr": summary["best_val_esr"],
        "apply_realtime_factor": round(metrics["test_seconds"] / max(apply_seconds, 1e-9), 1),
    }
    write_json(out / "metrics.json", metrics)
    return metrics


def _bar(enabled: bool, label: str) -> Progress | None:
    """A rich progress callback, or None when progress display is off."""
    if not enabled:
        return None
    from fxclone.progress import progress_callback

    return progress_callback(label)
