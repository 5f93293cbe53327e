"""Testing a knob-conditioned model at settings it never heard (``fxclone sweep``).

The settings come from a grid of ``levels`` values per knob (normalised to [0, 1] with the
model's own knob ranges, both ends included): those closer than ``min_distance`` (Euclidean,
normalised) to any training or validation setting of the dataset are dropped; of the rest,
first points that put each knob at its minimum and its maximum, then the farthest from those
already chosen (farthest-point sampling), up to ``count``. At each setting the dataset's test
dry audio is rendered through the dataset's own effect (each test item from silence) and
through the model, and the two are compared (ESR, MRSTFT). The result is a table, a JSON
file and, for every pair of knobs, a heatmap of the test ESR.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fxclone.audio import atomic_path
from fxclone.dataset import DatasetInfo, load_dataset, read_item
from fxclone.errors import FxcloneError
from fxclone.models.base import EffectModel, KnobSpec
from fxclone.renderers import Renderer

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class SweepRow:
    """One tested setting: knob values in units, normalised, and the scores."""

    setting: dict[str, float]
    normalised: list[float]
    nearest_training_distance: float
    esr: float
    mrstft: float


def denormalise(spec: KnobSpec, u: float) -> float:
    """Inverse of :meth:`KnobSpec.normalise`."""
    if spec.log_scale:
        lo, hi = math.log(spec.minimum), math.log(spec.maximum)
        value = math.exp(lo + u * (hi - lo))
    else:
        value = spec.minimum + u * (spec.maximum - spec.minimum)
    low, high = sorted((spec.minimum, spec.maximum))
    return float(min(max(value, low), high))  # no rounding past an end of the range


def training_points(info: DatasetInfo, specs: Sequence[KnobSpec]) -> np.ndarray:
    """``(n, knobs)`` normalised settings of the train and validation items."""
    rows = []
    for item in info.items:
        knobs = item.get("knobs") or {}
        if item["split"] in ("train", "val") and all(s.name in knobs for s in specs):
            rows.append([s.normalise(float(knobs[s.name])) for s in specs])
    return np.array(rows, dtype=np.float64).reshape(-1, len(specs))


def choose_settings(
    specs: Sequence[KnobSpec],
    training: np.ndarray,
    count: int = 24,
    min_distance: float = 0.1,
    levels: int = 5,
    seed: int = 0,
) -> list[tuple[np.ndarray, float]]:
    """Normalised settings at least ``min_distance`` from every training point, with each
    knob's extremes, then spread out; each with its distance to the nearest training point."""
    grid = np.array(list(itertools.product(np.linspace(0, 1, levels), repeat=len(specs))))
    if len(training):
        dist = np.sqrt(((grid[:, None, :] - training[None]) ** 2).sum(-1)).min(1)
    else:
        dist = np.full(len(grid), np.inf)
    keep = dist >= min_distance
    grid, dist = grid[keep], dist[keep]
    if not len(grid):
        raise FxcloneError(
            f"no grid setting is {min_distance:g} away from every training setting; "
            "use a smaller --min-distance or more --levels"
        )
    order = np.random.default_rng(seed).permutation(len(grid))
    grid, dist = grid[order], dist[order]
    chosen: list[int] = []
    for k, end in itertools.product(range(len(specs)), (0.0, 1.0)):
        if len(chosen) >= count or any(grid[i, k] == end for i in chosen):
            continue
        hits = np.flatnonzero(grid[:, k] == end)
        if len(hits):
            chosen.append(int(hits[0]))
    while len(chosen) < min(count, len(grid)):
        gap = np.sqrt(((grid[:, None, :] - grid[chosen][None]) ** 2).sum(-1)).min(1)
        gap[chosen] = -1.0
        chosen.append(int(np.argmax(gap)))
    return [(grid[i], float(dist[i])) for i in chosen]


def renderer_at(effect: Mapping[str, Any], setting: Mapping[str, float]) -> Renderer:
    """The dataset's effect (its manifest description) at ``setting``."""
    from fxclone import renderers
    from fxclone.rendering import BuiltinRenderer

    knobs = {**(effect.get("knobs") or {}), **setting}
    kind = effect.get("kind")
    if kind == "builtin":
        from fxclone.effects import get_effect

        return BuiltinRenderer(get_effect(effect["name"]), knobs)
    if kind == "command":
        return renderers.CommandRenderer(
            effect["command"], knobs, in_channels=int(effect.get("in_channels", 1)),
            out_channel=str(effect.get("out_channel", "mix")),
        )  # fmt: skip
    if kind == "plugin":
        hosted = renderers.PluginRenderer(
            effect["path"], effect.get("knobs") or {}, preset=effect.get("preset"),
            in_channels=int(effect.get("in_channels", 1)),
            out_channel=str(effect.get("out_channel", "mix")),
        )  # fmt: skip
        return hosted.at(setting)
    raise FxcloneError(
        f"the dataset's effect ({kind}) cannot be rendered again at new settings; sweep a "
        "dataset rendered with --effect, --command or --plugin"
    )


def sweep(
    model: EffectModel,
    dataset_dir: str | os.PathLike[str],
    count: int = 24,
    min_distance: float = 0.1,
    levels: int = 5,
    seed: int = 0,
    progress: Progress | None = None,
) -> tuple[list[SweepRow], np.ndarray]:
    """Score ``model`` at unseen settings; returns the rows and the ``(n, knobs)`` normalised
    training and validation settings they were kept away from."""
    from fxclone.metrics import esr, mrstft
    from fxclone.streaming import process_array

    if not model.knobs:
        raise FxcloneError(
            "sweep needs a knob-conditioned model: train on a dataset rendered across knob "
            "settings (fxclone render --knob NAME=LOW:HIGH; docs/capture.md)"
        )
    info = load_dataset(dataset_dir)
    if info.effect is None:
        raise FxcloneError(f"{info.path} is not rendered; render it first")
    tests = info.split_items("test")
    if not tests:
        raise FxcloneError(f"{info.path} has no test split; generate it with --test-seconds")
    specs = list(model.knobs)
    points = training_points(info, specs)
    chosen = choose_settings(specs, points, count, min_distance, levels, seed)
    dry = [read_item(info.path / item["dry"], info.sample_rate)[0] for item in tests]
    rows = []
    for done, (u, distance) in enumerate(chosen, start=1):
        setting = {s.name: denormalise(s, float(x)) for s, x in zip(specs, u, strict=True)}
        renderer = renderer_at(info.effect, setting)
        target = np.concatenate([renderer.render(d, info.sample_rate) for d in dry], axis=1)
        estimate = np.concatenate([process_array(model, d, setting) for d in dry], axis=1)
        rows.append(SweepRow(setting, [float(x) for x in u], distance, esr(target, estimate),
                             mrstft(target, estimate, info.sample_rate)))  # fmt: skip
        if progress is not None:
            progress(done, len(chosen))
    return rows, points


def write_sweep(
    rows: Sequence[SweepRow], out_dir: str | os.PathLike[str], extra: Mapping[str, Any]
) -> Path:
    """``sweep.json`` and ``sweep.md`` in ``out_dir``; returns the JSON path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    esrs = [r.esr for r in rows]
    summary = {"median_esr": statistics.median(esrs), "worst_esr": max(esrs),
               "best_esr": min(esrs), "settings": len(rows)}  # fmt: skip
    doc = {**extra, **summary, "rows": [asdict(r) for r in rows]}
    names = list(rows[0].setting)
    lines = [
        "| " + " | ".join([*names, "nearest training (normalised)", "test ESR", "MRSTFT"]) + " |",
        "|" + "---|" * (len(names) + 3),
    ]
    for r in sorted(rows, key=lambda r: r.esr):
        cells = [f"{r.setting[n]:.4g}" for n in names]
        lines.append("| " + " | ".join([*cells, f"{r.nearest_training_distance:.3f}",
                                         f"{r.esr:.4g}", f"{r.mrstft:.4g}"]) + " |")  # fmt: skip
    lines.append(f"\n{len(rows)} settings: median test ESR {summary['median_esr']:.4g}, "
                 f"worst {summary['worst_esr']:.4g}, best {summary['best_esr']:.4g}.")  # fmt: skip
    with atomic_path(out / "sweep.md") as tmp:
        Path(tmp).write_text("\n".join(lines) + "\n")
    with atomic_path(out / "sweep.json") as tmp:
        Path(tmp).write_text(json.dumps(doc, indent=1))
    return out / "sweep.json"


ESR_FLOOR = 1e-16  # the colour scale's floor when every cell is exact


def heatmaps(
    rows: Sequence[SweepRow],
    specs: Sequence[KnobSpec],
    out_dir: Path,
    train_points: np.ndarray | None = None,
) -> list[Path]:
    """One PNG per pair of knobs: mean test ESR per grid cell (other knobs averaged), with
    the training settings (normalised, ``(n, knobs)``) marked where given."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import LogNorm

    paths = []
    values = sorted({round(v, 6) for r in rows for v in r.normalised})
    index = {v: i for i, v in enumerate(values)}
    for a, b in itertools.combinations(range(len(specs)), 2):
        cells: dict[tuple[int, int], list[float]] = {}
        for r in rows:
            key = (index[round(r.normalised[a], 6)], index[round(r.normalised[b], 6)])
            cells.setdefault(key, []).append(r.esr)
        grid = np.full((len(values), len(values)), np.nan)
        for (i, j), e in cells.items():
            grid[j, i] = float(np.mean(e))
        side = max(4.2, 0.75 * len(values))  # room for a label in each cell
        fig, ax = plt.subplots(figsize=(side + 0.8, side))
        # A model can be exact at a setting (ESR 0: a compressor below its threshold): the
        # log colour scale starts at the smallest positive cell, and zeros take its colour.
        finite = grid[np.isfinite(grid)]
        positive = finite[finite > 0]
        low = float(positive.min()) if positive.size else ESR_FLOOR
        norm = LogNorm(vmin=low, vmax=max(float(finite.max()), low * 1.01))
        image = ax.imshow(np.maximum(grid, low), origin="lower", cmap="viridis", norm=norm)
        for (i, j), e in cells.items():
            ax.text(i, j, f"{np.mean(e):.2g}", ha="center", va="center", color="w", fontsize=7)
        if train_points is not None and len(train_points):
            # grid cells sit at the sorted levels; place each training setting between them
            cells_at = np.arange(len(values), dtype=float)
            ax.scatter(np.interp(train_points[:, a], values, cells_at),
                       np.interp(train_points[:, b], values, cells_at), marker="x", s=14,
                       c="tab:red", linewidths=0.8, label="training settings")  # fmt: skip
            ax.legend(loc="upper right", fontsize=7, framealpha=0.6)
        labels_a = [f"{denormalise(specs[a], v):.3g}" for v in values]
        labels_b = [f"{denormalise(specs[b], v):.3g}" for v in values]
        ax.set_xticks(range(len(values)), labels_a)
        ax.set_yticks(range(len(values)), labels_b)
        ax.set_xlabel(f"{specs[a].name} ({specs[a].unit})" if specs[a].unit else specs[a].name)
        ax.set_ylabel(f"{specs[b].name} ({specs[b].unit})" if specs[b].unit else specs[b].name)
        ax.set_title("test ESR at unseen settings")
        fig.colorbar(image, ax=ax, label="test ESR")
        fig.tight_layout()
        path = out_dir / f"heatmap_{specs[a].name}_{specs[b].name}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)
    return paths
