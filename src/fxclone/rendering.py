"""Rendering a dataset's dry audio through a built-in effect (``fxclone render``)."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from fxclone.audio import atomic_path, write_audio
from fxclone.dataset import load_dataset, prepare_folder, read_item, write_manifest
from fxclone.errors import FxcloneError
from fxclone.userdata import SPLITS

Progress = Callable[[int, int], None]


def render_dataset(
    dataset_dir: str | os.PathLike[str],
    effect_name: str,
    knobs: Mapping[str, float] | None,
    out_dir: str | os.PathLike[str] | None = None,
    progress: Progress | None = None,
) -> Path:
    """Render every item's dry audio through a built-in effect; return the manifest path.

    The items of each split are rendered as one continuous stream in manifest order (an
    effect's oscillators and tails run on across item boundaries, as in one long recording),
    cut back into ``wet/<id>.wav`` files, and the effect and its complete knob values go into
    the manifest.
    With ``out_dir`` a new dataset folder is written (manifest and dry files copied) and the
    source is left untouched. Knobs are validated before anything is written.
    """
    info = load_dataset(dataset_dir)
    effect = _get_effect(effect_name)
    given = None if knobs is None else dict(knobs)
    resolved = {k: _json_value(v) for k, v in effect.resolve_knobs(given).items()}
    target = info.path if out_dir is None else Path(out_dir)
    if out_dir is not None:
        if target.resolve() == info.path.resolve():
            raise FxcloneError(f"--out {target} is the dataset itself; omit it to render in place")
        prepare_folder(target, overwrite=False)
    manifest = json.loads(json.dumps(info.manifest))  # a deep copy, JSON types only
    if out_dir is None and info.effect is not None:
        # Mark the folder unrendered first: a run that dies half-way must not leave a
        # manifest that vouches for a mix of old and new wet files.
        write_manifest(target, _unrendered(manifest))

    done = 0
    for split in SPLITS:
        items = [item for item in manifest["items"] if item["split"] == split]
        if not items:
            continue
        paths = [info.path / item["dry"] for item in items]
        dry = [read_item(path, info.sample_rate)[0] for path in paths]
        stream = np.concatenate(dry, axis=1)
        wet = _render(effect, stream, info.sample_rate, resolved, info.path / f"dry ({split})")
        start = 0
        for item, path, piece in zip(items, paths, dry, strict=True):
            if out_dir is not None:
                with atomic_path(target / item["dry"]) as tmp:
                    shutil.copyfile(path, tmp)
            item["wet"] = f"wet/{item['id']}.wav"
            item["knobs"] = resolved
            end = start + piece.shape[1]
            write_audio(target / item["wet"], wet[:, start:end], info.sample_rate)
            start = end
            done += 1
            if progress is not None:
                progress(done, len(manifest["items"]))
    manifest["effect"] = {"kind": "builtin", "name": effect.name, "knobs": resolved}
    return write_manifest(target, manifest)


def _unrendered(manifest: dict[str, Any]) -> dict[str, Any]:
    copy = json.loads(json.dumps(manifest))
    copy["effect"] = None
    for item in copy["items"]:
        item["wet"], item["knobs"] = None, None
    return copy


def _render(
    effect: Any, dry: np.ndarray, sr: int, knobs: dict[str, Any], dry_path: Path
) -> np.ndarray:
    wet = np.asarray(effect.render(dry, sr, knobs), dtype=np.float32)
    if wet.ndim == 1:
        wet = wet[None, :]
    if wet.ndim != 2 or wet.shape[1] != dry.shape[1]:
        raise FxcloneError(
            f"effect {effect.name!r} returned shape {wet.shape} for {dry_path} of shape "
            f"{dry.shape}; the effect is faulty: report it or choose another effect"
        )
    if not np.all(np.isfinite(wet)):
        raise FxcloneError(
            f"effect {effect.name!r} produced NaN/Inf for {dry_path} with knobs {knobs}; "
            "try other knob values"
        )
    return wet


def _get_effect(name: str) -> Any:
    """Look up a built-in effect (imported here so datasets load without the effects)."""
    try:
        from fxclone.effects import get_effect
    except ImportError as exc:
        raise FxcloneError(
            f"built-in effects are unavailable ({exc}); reinstall fxclone to render {name!r}"
        ) from None
    return get_effect(name)


def _json_value(value: Any) -> Any:
    if isinstance(value, bool | str) or value is None:
        return value
    if isinstance(value, int | np.integer):
        return int(value)
    return float(value)
