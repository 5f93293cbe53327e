"""Rendering a dataset across knob settings: one model for every position of the knobs.

``fxclone render DATA --effect distortion --knob drive=0:40 --knob tone=500:8000 --knob
level=-6`` samples ``drive`` and ``tone`` over their ranges and keeps ``level`` fixed. Every
item of every split is cut into consecutive segments of ``segment_seconds`` (a last piece
shorter than half a second joins the segment before it); each segment gets its own setting
and becomes an item of its own, with its own dry and wet files and its knob values in the
manifest, so ``fxclone train`` conditions the model on the knobs that vary.

Settings are drawn in the normalised space [0, 1]^k (geometric for log-scale knobs of a
built-in effect) by a Latin hypercube (``lhs``: every knob's range is covered evenly over the
segments of a split), uniformly at random (``random``) or from the smallest full grid with at
least one point per segment (``grid``, endpoints included, points in a seeded random order).
Each split has its own seed, so validation and test settings differ from training ones; the
same command twice gives the same files.

Every segment is rendered on its own, from silence, as the model sees it in training: the
dry and wet of a segment are consistent without any history from the segment before.
Silent segments are left out. The manifest's ``effect`` records the ranges and the sampling.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from fxclone.audio import write_audio
from fxclone.dataset import _SILENT_PEAK, load_dataset, prepare_folder, read_item, write_manifest
from fxclone.errors import FxcloneError
from fxclone.renderers import Renderer
from fxclone.userdata import SPLITS

METHODS = ("lhs", "random", "grid")
MIN_PIECE_SECONDS = 0.5
Ranges = Mapping[str, tuple[float, float]]


def split_knob_args(args: Sequence[str]) -> tuple[list[str], dict[str, tuple[float, float]]]:
    """``["drive=0:40", "level=-6"]`` -> (``["level=-6"]``, ``{"drive": (0.0, 40.0)}``)."""
    fixed: list[str] = []
    ranges: dict[str, tuple[float, float]] = {}
    for arg in args:
        name, sep, text = arg.partition("=")
        if not sep or ":" not in text:
            fixed.append(arg)
            continue
        lo_text, _, hi_text = text.partition(":")
        try:
            lo, hi = float(lo_text), float(hi_text)
        except ValueError:
            raise FxcloneError(
                f"knob range {arg!r} is malformed; use --knob NAME=LOW:HIGH, e.g. drive=0:40"
            ) from None
        if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
            raise FxcloneError(f"knob range {arg!r} needs LOW < HIGH; e.g. --knob drive=0:40")
        if name.strip() in ranges:
            raise FxcloneError(f"knob {name.strip()!r} is given twice ({arg!r}); keep one")
        ranges[name.strip()] = (lo, hi)
    return fixed, ranges


def sample_settings(
    ranges: Ranges,
    count: int,
    method: str = "lhs",
    seed: int = 0,
    log_scale: Mapping[str, bool] | None = None,
) -> list[dict[str, float]]:
    """``count`` knob settings (values in units) over ``ranges``; see the module docstring."""
    if method not in METHODS:
        raise FxcloneError(f"--sampling {method!r} is unknown; use one of {', '.join(METHODS)}")
    names = list(ranges)
    rng = np.random.default_rng(seed)
    k = len(names)
    if method == "lhs":
        from scipy.stats import qmc

        unit = qmc.LatinHypercube(d=k, seed=rng).random(count)
    elif method == "random":
        unit = rng.random((count, k))
    else:
        levels = max(2, math.ceil(count ** (1 / k) - 1e-9))
        axes = np.meshgrid(*[np.linspace(0.0, 1.0, levels)] * k, indexing="ij")
        grid = np.stack([a.reshape(-1) for a in axes], axis=1)
        order = rng.permutation(len(grid))
        unit = grid[np.resize(order, count)]
    logs = log_scale or {}
    settings = []
    for row in unit:
        setting = {}
        for name, u in zip(names, row, strict=True):
            lo, hi = ranges[name]
            if logs.get(name) and lo > 0:
                value = math.exp(math.log(lo) + u * (math.log(hi) - math.log(lo)))
            else:
                value = lo + u * (hi - lo)
            setting[name] = float(min(max(value, lo), hi))  # no rounding past an end
        settings.append(setting)
    return settings


def segment_bounds(samples: int, segment: int, min_piece: int) -> list[tuple[int, int]]:
    """Consecutive ``(start, stop)`` pieces of ``segment`` samples; a tail shorter than
    ``min_piece`` joins the piece before it."""
    bounds = [(s, min(s + segment, samples)) for s in range(0, samples, segment)]
    if len(bounds) > 1 and bounds[-1][1] - bounds[-1][0] < min_piece:
        bounds[-2:] = [(bounds[-2][0], samples)]
    return bounds


def render_across_settings(
    dataset_dir: str | os.PathLike[str],
    make_renderer: Callable[[dict[str, float]], Renderer],
    ranges: Ranges,
    *,
    method: str = "lhs",
    segment_seconds: float = 2.0,
    seed: int = 0,
    log_scale: Mapping[str, bool] | None = None,
    out_dir: str | os.PathLike[str] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Render every segment of a dataset at its own sampled setting; returns the manifest.

    ``make_renderer(setting)`` gives the renderer for one setting (the sampled knobs; fixed
    knobs are the renderer's own). Everything is rendered before anything is written.
    """
    from fxclone.rendering import _check_wet

    if not ranges:
        raise FxcloneError("no knob range to sample; give one as --knob NAME=LOW:HIGH")
    if not (math.isfinite(segment_seconds) and segment_seconds >= MIN_PIECE_SECONDS):
        raise FxcloneError(
            f"--segment-seconds {segment_seconds:g} is too short; use {MIN_PIECE_SECONDS} or more"
        )
    info = load_dataset(dataset_dir)
    sr = info.sample_rate
    segment = int(round(segment_seconds * sr))
    plan = []  # (split, item, start, stop)
    for split in SPLITS:
        for item in info.split_items(split):
            pieces = segment_bounds(int(item["samples"]), segment, int(MIN_PIECE_SECONDS * sr))
            dry = read_item(info.path / item["dry"], sr)[0]
            for start, stop in pieces:
                # A silent segment teaches nothing (and a dataset refuses silent items).
                if float(np.max(np.abs(dry[:, start:stop]))) >= _SILENT_PEAK:
                    plan.append((split, item, start, stop))
    settings: list[dict[str, float]] = []
    for index, split in enumerate(SPLITS):
        count = sum(1 for p in plan if p[0] == split)
        if count:
            settings += sample_settings(ranges, count, method, seed + 1000 * index, log_scale)

    rendered = []
    description: dict[str, Any] | None = None
    dry_cache: dict[str, np.ndarray] = {}
    for done, ((split, item, start, stop), setting) in enumerate(zip(plan, settings, strict=True)):
        if item["id"] not in dry_cache:
            dry_cache = {item["id"]: read_item(info.path / item["dry"], sr)[0]}
        dry = np.ascontiguousarray(dry_cache[item["id"]][:, start:stop])
        renderer = make_renderer(setting)
        wet = _check_wet(renderer.render(dry, sr), dry.shape[1], split)
        description = description or renderer.describe()
        seg_id = f"{item['id']}_s{start // segment:03d}"
        rendered.append((split, item, seg_id, start, dry, wet, dict(renderer.knobs)))
        if progress is not None:
            progress(done + 1, len(plan))

    target = info.path if out_dir is None else Path(out_dir)
    if out_dir is not None:
        if target.resolve() == info.path.resolve():
            raise FxcloneError(f"--out {target} is the dataset itself; omit it to render in place")
        prepare_folder(target, overwrite=False)
    manifest = json.loads(json.dumps(info.manifest))
    items = []
    for split, item, seg_id, start, dry, wet, knobs in rendered:
        write_audio(target / "dry" / f"{seg_id}.wav", dry, sr)
        write_audio(target / "wet" / f"{seg_id}.wav", wet, sr)
        entry = {k: v for k, v in item.items() if k not in ("id", "dry", "wet", "samples")}
        entry.update(id=seg_id, split=split, dry=f"dry/{seg_id}.wav", wet=f"wet/{seg_id}.wav",
                     samples=int(dry.shape[1]), knobs=knobs,
                     source={"item": item["id"], "start": start})  # fmt: skip
        items.append(entry)
    assert description is not None
    description["knobs"] = {k: v for k, v in description.get("knobs", {}).items()
                            if k not in ranges}  # fmt: skip
    description["ranges"] = {k: list(v) for k, v in ranges.items()}
    description["sampling"] = {"method": method, "segment_seconds": segment_seconds, "seed": seed}
    manifest["items"] = items
    manifest["effect"] = description
    return write_manifest(target, manifest)
