"""Scoring models on a dataset's test split: metrics, baselines, plots, measurements, report.

``fxclone evaluate`` is :func:`evaluate_models`: every model streams the same test audio, is
scored against the target with the same metrics, and (with ``report``) lands in one
self-contained HTML page next to the target effect's measurements.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fxclone.errors import FxcloneError
from fxclone.models.base import EffectModel

Progress = Callable[[int, int], None]
PathLike = str | os.PathLike[str]
MEASURE_SECONDS_CAP = 60.0


@dataclass
class ModelRun:
    """One model's pass over the test split."""

    name: str
    path: Path
    model: EffectModel
    estimate: np.ndarray
    seconds: float
    scores: dict[str, float] = field(default_factory=dict)  # metric name -> value

    @property
    def metrics(self) -> dict[str, Any]:
        """The scores plus facts about the model, as written to ``metrics.json``."""
        return {
            **self.scores,
            "family": self.model.family,
            "parameters": self.model.num_parameters(),
            "realtime_factor_offline": self.realtime_factor,
        }

    @property
    def realtime_factor(self) -> float:
        seconds = self.estimate.shape[1] / self.model.sample_rate
        return round(seconds / max(self.seconds, 1e-9), 1)

    def card(self) -> dict[str, Any]:
        m = self.model
        return {
            "file": str(self.path),
            "family": m.family,
            "parameters": m.num_parameters(),
            "receptive_field": m.receptive_field or "unbounded",
            "latency_samples": m.latency_samples,
            "sample_rate": m.sample_rate,
            "knobs": ", ".join(k.name for k in m.knobs) or "none",
            "size_kb": round(self.path.stat().st_size / 1024, 1),
            "realtime_factor_offline": self.realtime_factor,
        }


def _names(paths: Sequence[Path]) -> list[str]:
    names: list[str] = []
    for p in paths:
        base = p.name.removesuffix(".safetensors")
        name, k = base, 2
        while name in names:
            name, k = f"{base}-{k}", k + 1
        names.append(name)
    return names


def evaluate_models(
    model_paths: PathLike | Sequence[PathLike],
    dataset_dir: PathLike,
    out_dir: PathLike,
    *,
    report: bool = False,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Score one or more saved models on a dataset's test split.

    Writes into ``out_dir``: ``metrics.json``, ``mel_spectrograms.png``, ``waveforms.png`` (one
    per model when several), the test audio (``test_dry.wav``, ``test_target.wav``,
    ``test_<model>.wav``) and, with ``report``, ``measurements.png`` and ``report.html``.
    With one model ``metrics.json`` is flat (``esr``, ``esr_pre_emph``, ``mae``, ``mrstft``,
    baselines ``esr_linear`` and ``esr_static``, ...); with several, per-model metrics sit under
    ``"models"``. Returns what ``metrics.json`` holds.
    """
    from fxclone.audio import write_audio, write_json
    from fxclone.baselines import baseline_scores
    from fxclone.dataset import load_dataset, load_pairs
    from fxclone.metrics import compute_metrics, esr
    from fxclone.modelfile import load_model
    from fxclone.report.plots import plot_mel_spectrograms, plot_waveform_overlay
    from fxclone.streaming import process_array

    paths = (
        [Path(model_paths)]
        if isinstance(model_paths, (str, os.PathLike))
        else [Path(p) for p in model_paths]
    )
    if not paths:
        raise FxcloneError("no model given; pass one or more .safetensors files")
    info = load_dataset(dataset_dir)
    models = [load_model(p).model for p in paths]
    for path, m in zip(paths, models, strict=True):
        if m.sample_rate != info.sample_rate:
            raise FxcloneError(
                f"{info.path} is at {info.sample_rate} Hz but {path} was trained at "
                f"{m.sample_rate} Hz; evaluate on a dataset at the model's rate"
            )
    test = load_pairs(info, "test")
    if not test:
        raise FxcloneError(f"{info.path} has no test items; regenerate it with test_seconds > 0")
    sr = info.sample_rate
    target = np.concatenate([p.wet for p in test], axis=1)
    dry = np.concatenate([p.dry for p in test], axis=1)
    total = len(models) * dry.shape[1]
    runs: list[ModelRun] = []
    for name, path, model in zip(_names(paths), paths, models, strict=True):
        t0 = time.time()
        parts = []
        # A model with its own oscillator runs over the split as one stream, as the effect did.
        chunks = [(dry, {})] if model.free_running else [(p.dry, p.knobs) for p in test]
        for audio, values in chunks:
            knobs = {k.name: float(values[k.name]) for k in model.knobs if k.name in values}
            parts.append(process_array(model, audio, knobs))
            if progress:
                progress(len(runs) * dry.shape[1] + sum(x.shape[1] for x in parts), total)
        runs.append(ModelRun(name, path, model, np.concatenate(parts, axis=1), time.time() - t0))
    train = load_pairs(info, "train")
    baselines = baseline_scores([(p.dry, p.wet) for p in train], [(p.dry, p.wet) for p in test])
    baselines["esr_dry"] = esr(target, dry)
    floor = (info.effect or {}).get("repeatability_esr")
    if isinstance(floor, int | float):
        # The recording rig's own noise floor: the ESR of a passage recorded twice.
        baselines["repeatability_esr"] = float(floor)
    seconds = target.shape[1] / sr
    for run in runs:
        run.scores = compute_metrics(target, run.estimate, sr, extended=report)

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    n = min(target.shape[1], 10 * sr)
    plot_mel_spectrograms(
        out / "mel_spectrograms.png",
        {"dry": dry[:, :n], "target": target[:, :n], **{r.name: r.estimate[:, :n] for r in runs}},
        sr,
        title="Test audio: dry, target effect, model" + ("s" if len(runs) > 1 else ""),
    )
    for run in runs:
        name = "waveforms.png" if len(runs) == 1 else f"waveforms_{run.name}.png"
        plot_waveform_overlay(out / name, target, run.estimate, sr, dry=dry)
        write_audio(
            out / ("test_model.wav" if len(runs) == 1 else f"test_{run.name}.wav"), run.estimate, sr
        )
    write_audio(out / "test_target.wav", target, sr)
    write_audio(out / "test_dry.wav", dry, sr)

    common = {"dataset": str(info.path), "test_seconds": round(seconds, 2), **baselines}
    if len(runs) == 1:
        result: dict[str, Any] = {**runs[0].metrics, "model": str(paths[0]), **common}
    else:
        result = {"models": {r.name: {**r.metrics, "model": str(r.path)} for r in runs}, **common}
    if report:
        _write_report(out, info, runs, dry, target, baselines)
        result["report"] = str(out / "report.html")
    write_json(out / "metrics.json", result)
    return result


def _write_report(
    out: Path,
    info: Any,
    runs: list[ModelRun],
    dry: np.ndarray,
    target: np.ndarray,
    baselines: dict[str, float],
) -> None:
    from fxclone.report.html import ReportModel, write_report
    from fxclone.report.measure import measure_effect
    from fxclone.report.plots import plot_measurements
    from fxclone.streaming import process_array

    sr = info.sample_rate
    measured = {}
    effect = info.effect or {}
    if effect.get("kind", "builtin") == "builtin" and effect.get("name"):
        from fxclone.effects import get_effect

        fx = get_effect(effect["name"])
        knobs = dict(effect.get("knobs") or {})
        measured["target"] = measure_effect(lambda x: fx.render(x, sr, knobs), sr)
    for run in runs:
        measured[run.name] = measure_effect(
            functools.partial(process_array, run.model, knobs=None, block_size=1 << 16), sr
        )
    plot_measurements(out / "measurements.png", measured, title="Measurements: target and models")
    images = {
        "Mel spectrograms of the test audio": out / "mel_spectrograms.png",
        "Measurements of the target effect and the models": out / "measurements.png",
    }
    for run in runs:
        name = "waveforms.png" if len(runs) == 1 else f"waveforms_{run.name}.png"
        images[f"Waveforms: target vs {run.name}"] = out / name
    effect_text = _describe_effect(effect)
    write_report(
        out / "report.html",
        title=f"fxclone evaluation: {Path(str(info.path)).name}",
        sample_rate=sr,
        dry=dry,
        target=target,
        models=[ReportModel(r.name, r.estimate, r.scores, r.card()) for r in runs],
        images=images,
        baselines={
            "linear FIR": baselines["esr_linear"],
            "static waveshaper": baselines["esr_static"],
            "dry signal": baselines["esr_dry"],
            **(
                {"rig repeatability floor": baselines["repeatability_esr"]}
                if "repeatability_esr" in baselines
                else {}
            ),
        },
        notes=[
            f"Dataset: {info.path}; effect: {effect_text}.",
            "The test split was never used for training or model selection.",
            "ESR = error energy / target energy; baselines are fitted on the training split.",
        ],
    )


def _describe_effect(effect: dict[str, Any]) -> str:
    kind = effect.get("kind", "builtin")
    if kind == "builtin" and effect.get("name"):
        return f"built-in {effect['name']} {effect.get('knobs')}"
    if kind == "recording":
        names = ", ".join(str(p.get("name")) for p in effect.get("pairs", []))
        floor = effect.get("repeatability_esr")
        extra = f"; the rig's repeatability floor is ESR {floor:.3g}" if floor else ""
        return f"recordings ({names}){extra}"
    if kind == "command":
        return f"external command `{effect.get('command')}` {effect.get('knobs')}"
    if kind == "plugin":
        return f"plugin {effect.get('path')} {effect.get('knobs')}"
    return "recorded or external effect"
