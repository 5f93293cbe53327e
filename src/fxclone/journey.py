"""The user's journey as plain functions: generate, render, train, evaluate, apply.

The demo, all of them in a row on the built-in distortion, is :mod:`fxclone.demo`.

The CLI is a thin layer over these; each can be called from Python with the same arguments.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fxclone.errors import FxcloneError
from fxclone.models.base import KnobSpec

Progress = Callable[[int, int], None]
PathLike = str | os.PathLike[str]


def generate(out_dir: PathLike, config: Any = None, progress: Progress | None = None) -> Path:
    """Write a dataset folder of dry signals; returns the manifest path.

    ``config`` is a :class:`fxclone.dataset.GenerateConfig` (or a mapping of its fields).
    """
    from fxclone.dataset import GenerateConfig, generate_dataset

    if config is None:
        config = GenerateConfig()
    elif isinstance(config, Mapping):
        config = GenerateConfig.from_dict(config)
    return generate_dataset(out_dir, config, progress=progress)


def render(
    dataset_dir: PathLike,
    effect: str | None = None,
    knobs: Mapping[str, float] | None = None,
    out_dir: PathLike | None = None,
    progress: Progress | None = None,
    *,
    command: str | None = None,
    plugin: PathLike | None = None,
    preset: PathLike | None = None,
    in_channels: int | None = None,
    out_channel: str | None = None,
    timeout: float | None = None,
    ranges: Mapping[str, tuple[float, float]] | None = None,
    sampling: str = "lhs",
    segment_seconds: float = 2.0,
    seed: int = 0,
) -> Path:
    """Render every dry file of a dataset; returns the manifest.

    ``ranges`` (knob name -> (low, high) in the knob's unit) renders every segment of
    ``segment_seconds`` at its own setting, sampled by ``sampling`` (lhs, random, grid) with
    ``seed``; see :mod:`fxclone.settings`.

    Exactly one of ``effect`` (a built-in effect's name), ``command`` (a program template
    with ``{dry}``, ``{wet}`` and ``{KNOB}`` placeholders) or ``plugin`` (a VST3/AU file,
    optionally with a ``preset``) says what renders; see :mod:`fxclone.renderers`.
    ``in_channels`` (1 or 2) and ``out_channel`` (left, right, mix) apply to commands and
    plugins, ``timeout`` (seconds per split) to commands.
    """
    from fxclone import renderers
    from fxclone.rendering import render_dataset

    given = (("--effect", effect), ("--command", command), ("--plugin", plugin))
    chosen = [flag for flag, value in given if value is not None]
    if len(chosen) != 1:
        what = "none was given" if not chosen else f"got {' and '.join(chosen)}"
        raise FxcloneError(
            f"give exactly one of --effect NAME, --command TEMPLATE or --plugin FILE ({what})"
        )
    if preset is not None and plugin is None:
        raise FxcloneError(f"--preset {preset} needs --plugin FILE; a preset belongs to a plugin")
    if timeout is not None and command is None:
        raise FxcloneError("--timeout applies to --command only; drop it")
    if effect is not None:
        for flag, value in (("--in-channels", in_channels), ("--out-channel", out_channel)):
            if value is not None:
                raise FxcloneError(f"{flag} applies to --command and --plugin only; drop it")
        if ranges:
            return _render_effect_across(dataset_dir, effect, knobs, ranges, out_dir, progress,
                                         sampling, segment_seconds, seed)  # fmt: skip
        return render_dataset(dataset_dir, effect, knobs, out_dir=out_dir, progress=progress)
    ins = 1 if in_channels is None else in_channels
    pick = "mix" if out_channel is None else out_channel
    renderer: renderers.Renderer
    if command is not None:
        limit = renderers.DEFAULT_TIMEOUT if timeout is None else timeout

        def command_at(setting: Mapping[str, float]) -> renderers.CommandRenderer:
            return renderers.CommandRenderer(
                command, {**(knobs or {}), **setting}, in_channels=ins, out_channel=pick,
                timeout=limit,
            )  # fmt: skip

        if ranges:
            from fxclone.settings import render_across_settings

            command_at({n: lo for n, (lo, _) in ranges.items()})  # checks the template first
            return render_across_settings(dataset_dir, command_at, ranges, method=sampling,
                                          segment_seconds=segment_seconds, seed=seed,
                                          out_dir=out_dir, progress=progress)  # fmt: skip
        renderer = command_at({})
    else:
        assert plugin is not None
        hosted = renderers.PluginRenderer(
            plugin, knobs, preset=preset, in_channels=ins, out_channel=pick
        )
        if ranges:
            from fxclone.settings import render_across_settings

            hosted.at({n: lo for n, (lo, _) in ranges.items()})  # names and ranges first
            hosted.at({n: hi for n, (_, hi) in ranges.items()})
            return render_across_settings(dataset_dir, hosted.at, ranges, method=sampling,
                                          segment_seconds=segment_seconds, seed=seed,
                                          out_dir=out_dir, progress=progress)  # fmt: skip
        renderer = hosted
    return render_dataset(dataset_dir, renderer, None, out_dir=out_dir, progress=progress)


def _render_effect_across(
    dataset_dir: PathLike,
    name: str,
    knobs: Mapping[str, float] | None,
    ranges: Mapping[str, tuple[float, float]],
    out_dir: PathLike | None,
    progress: Progress | None,
    sampling: str,
    segment_seconds: float,
    seed: int,
) -> Path:
    """A built-in effect rendered across knob settings (each range checked against the
    effect's own knob range first)."""
    from fxclone.effects import get_effect
    from fxclone.rendering import BuiltinRenderer
    from fxclone.settings import render_across_settings

    effect = get_effect(name)
    specs = {k.name: k for k in effect.knobs}
    fixed = dict(knobs or {})
    for knob, (lo, hi) in ranges.items():
        if knob in fixed:
            raise FxcloneError(f"knob {knob!r} has both a value and a range; keep one --knob")
        spec = specs.get(knob)
        if spec is None:
            raise FxcloneError(
                f"{name} has no knob {knob!r}; its knobs: {', '.join(specs)} (see fxclone effects)"
            )
        if lo < spec.minimum or hi > spec.maximum:
            raise FxcloneError(
                f"--knob {knob}={lo:g}:{hi:g} leaves {name}'s range "
                f"{spec.minimum:g}..{spec.maximum:g} {spec.unit}; choose a range inside it"
            )
    BuiltinRenderer(effect, fixed)  # the fixed values are checked before any rendering
    log_scale = {k: specs[k].log_scale for k in ranges}
    return render_across_settings(
        dataset_dir, lambda s: BuiltinRenderer(effect, {**fixed, **s}), ranges, method=sampling,
        segment_seconds=segment_seconds, seed=seed, log_scale=log_scale, out_dir=out_dir,
        progress=progress,
    )  # fmt: skip


def _knob_specs(info: Any, pairs: Sequence[Any]) -> tuple[KnobSpec, ...]:
    """Knobs whose value varies across training items become the model's conditioning."""
    names = sorted({k for p in pairs for k in (p.knobs or {})})
    varying = [n for n in names if len({(p.knobs or {}).get(n) for p in pairs}) > 1]
    specs = []
    effect_knobs: dict[str, Any] = {}
    if info.effect and info.effect.get("kind", "builtin") == "builtin":
        from fxclone.effects import get_effect

        effect_knobs = {k.name: k for k in get_effect(info.effect["name"]).knobs}
    for n in varying:
        if n in effect_knobs:
            k = effect_knobs[n]
            specs.append(KnobSpec(n, k.minimum, k.maximum, k.unit, k.log_scale))
        else:
            vals = [float(p.knobs[n]) for p in pairs if n in p.knobs]
            specs.append(KnobSpec(n, min(vals), max(vals)))
    return tuple(specs)


def _items(
    pairs: Sequence[Any], specs: Sequence[KnobSpec]
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    out = []
    for p in pairs:
        # float64: the grey-box fits (the compressor's) read a knob's setting exactly (a
        # ratio rounded through float32 is off by up to 6e-7); training windows cast it.
        vec = np.array([s.normalise(float(p.knobs[s.name])) for s in specs], np.float64)
        out.append((p.dry, p.wet, vec))
    return out


def train(
    dataset_dir: PathLike | Sequence[PathLike],
    out_path: PathLike,
    config: Any = None,
    *,
    run_dir: PathLike | None = None,
    fresh: bool = False,
    progress: bool = True,
    recordings: Any = None,
    notice: Callable[[str], None] | None = None,
    init: PathLike | None = None,
) -> dict[str, Any]:
    """Train a model on a rendered dataset and save it as one ``.safetensors`` file.

    ``dataset_dir`` is a dataset folder, or recordings: a dry file and a wet file, or a
    folder of dry/wet pairs (see :mod:`fxclone.pairs`), which are aligned and imported into
    ``<run_dir>/dataset`` first (``recordings`` is a :class:`fxclone.pairs.ImportConfig`).
    Checkpoints live in ``run_dir`` (default: ``<out_path>.run``); running the same command
    again resumes from the last one unless ``fresh``. ``init`` (a saved fxclone model or a
    ``.nam`` file of the same architecture) sets the starting weights, for fine-tuning; a
    resumed run continues from its checkpoint instead. Returns the training summary.
    """
    from fxclone.dataset import load_dataset, load_pairs
    from fxclone.modelfile import save_model
    from fxclone.models.registry import create_model
    from fxclone.training import TrainConfig, fit

    if config is None:
        config = TrainConfig()
    elif isinstance(config, Mapping):
        config = TrainConfig.from_dict(config)
    out = Path(out_path)
    if out.is_dir():
        raise FxcloneError(
            f"{out} is a folder; give a file name such as {out / 'model.safetensors'}"
        )
    run = Path(run_dir) if run_dir is not None else out.with_name(out.name + ".run")
    info = load_dataset(_training_data(dataset_dir, run, recordings, fresh, notice))
    train_pairs = load_pairs(info, "train")
    val_pairs = load_pairs(info, "val")
    if not train_pairs:
        raise FxcloneError(
            f"{info.path} has no training items; regenerate it with train_seconds > 0"
        )
    specs = _knob_specs(info, train_pairs)
    torch.manual_seed(config.seed)
    model = create_model(
        config.model,
        sample_rate=info.sample_rate,
        knobs=specs,
        channels=train_pairs[0].dry.shape[0],
    )
    if init is not None:
        from fxclone.export import initialise_from

        initialise_from(model, init)
    result = fit(
        model,
        _items(train_pairs, specs),
        _items(val_pairs, specs),
        config,
        run,
        resume=not fresh,
        progress=progress,
        closed_form=init is None,
        keep_start=init is not None,
    )
    summary = {
        "model": config.model,
        "dataset": str(info.path),
        "effect": info.effect,
        **_calibration(info.effect),
        "config": dataclasses.asdict(config),
        **({"init": str(init)} if init is not None else {}),
        **result.summary(),
    }
    save_model(out, result.model, training=summary)
    return summary


def _training_data(
    source: PathLike | Sequence[PathLike],
    run: Path,
    recordings: Any,
    fresh: bool,
    notice: Callable[[str], None] | None,
) -> Path:
    """The dataset folder to train on: ``source`` itself, or recordings imported into the run."""
    from fxclone.pairs import find_pairs, import_pairs, is_pair_source, same_sources

    paths = [source] if isinstance(source, str | os.PathLike) else list(source)
    if not paths:
        raise FxcloneError("give a dataset folder, or a dry file and a wet file")
    if not is_pair_source(paths):
        if len(paths) != 1:
            raise FxcloneError(
                f"{paths[0]} is a dataset folder; give it alone, or give a dry and a wet file"
            )
        return Path(paths[0])
    pairs = find_pairs(paths)
    data = run / "dataset"
    if not fresh and same_sources(data, pairs, recordings):
        if notice:
            notice(f"using the recordings already imported into {data}")
        return data
    _remove_dataset(data)
    import_pairs(pairs, data, recordings, notice=notice)
    if notice:
        notice(f"imported {len(pairs)} recording pair(s) into {data}")
    return data


def _remove_dataset(folder: Path) -> None:
    import shutil

    if folder.is_dir():
        shutil.rmtree(folder)


def _calibration(effect: Mapping[str, Any] | None) -> dict[str, Any]:
    """The rig's calibration levels (dBu), where the recordings gave them."""
    levels = {key: (effect or {}).get(key) for key in ("input_level_dbu", "output_level_dbu")}
    return {"calibration": levels} if any(v is not None for v in levels.values()) else {}


def evaluate(
    model_paths: PathLike | Sequence[PathLike],
    dataset_dir: PathLike,
    out_dir: PathLike,
    *,
    report: bool = False,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Score one or more models on a dataset's test split; writes ``metrics.json`` and plots.

    Also fits two baselines on the training split and scores them on the test split:
    ``esr_linear`` (best linear FIR) and ``esr_static`` (best memoryless waveshaper). With
    ``report``, adds measurements and a self-contained ``report.html`` comparing the models.
    See :func:`fxclone.evaluation.evaluate_models`.
    """
    from fxclone.evaluation import evaluate_models

    return evaluate_models(model_paths, dataset_dir, out_dir, report=report, progress=progress)


def apply(
    model_path: PathLike,
    in_path: PathLike,
    out_path: PathLike,
    knobs: Mapping[str, float] | None = None,
    *,
    block_size: int = 8192,
    progress: Progress | None = None,
    automation: PathLike | None = None,
    ramp_ms: float = 50.0,
) -> Path:
    """Run a saved model over an audio file of any length, streamed from disk to disk.

    ``knobs`` is the starting setting; ``automation`` a CSV of knob changes over time
    (:mod:`fxclone.automation`), each ramped over ``ramp_ms`` milliseconds.
    """
    from fxclone.automation import read_automation
    from fxclone.modelfile import load_model
    from fxclone.streaming import apply_file

    if block_size < 1 or block_size > 1 << 20:
        raise FxcloneError(f"--block-size {block_size} is out of range; use 1..1048576")
    if not 0 <= ramp_ms <= 10_000:
        raise FxcloneError(f"--ramp-ms {ramp_ms:g} is out of range; use 0..10000")
    model = load_model(model_path).model
    changes = read_automation(automation, model) if automation is not None else []
    return apply_file(model, in_path, out_path, knobs, block_size=block_size, progress=progress,
                      automation=changes, ramp_seconds=ramp_ms / 1000)  # fmt: skip
