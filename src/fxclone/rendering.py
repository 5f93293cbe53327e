"""Rendering a dataset's dry audio into wet audio (``fxclone render``).

What renders is a :class:`fxclone.renderers.Renderer`: a built-in effect, an external command
or a hosted plugin. A built-in effect can also be named directly.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from fxclone.audio import atomic_path, write_audio
from fxclone.dataset import (
    LENGTH_TOLERANCE,
    load_dataset,
    prepare_folder,
    read_item,
    write_manifest,
)
from fxclone.errors import FxcloneError
from fxclone.renderers import Renderer
from fxclone.userdata import SPLITS

Progress = Callable[[int, int], None]


class BuiltinRenderer(Renderer):
    """A built-in effect (:mod:`fxclone.effects`) with its knobs resolved and checked."""

    def __init__(self, effect: Any, knobs: Mapping[str, float] | None = None) -> None:
        self.effect = effect
        given = None if knobs is None else dict(knobs)
        self.knobs = {k: _json_value(v) for k, v in effect.resolve_knobs(given).items()}

    def render(self, dry: np.ndarray, sample_rate: int) -> np.ndarray:
        # Shape and finiteness are checked for every renderer by render_dataset.
        return np.asarray(self.effect.render(dry, sample_rate, self.knobs), dtype=np.float32)

    def describe(self) -> dict[str, Any]:
        return {"kind": "builtin", "name": self.effect.name, "knobs": dict(self.knobs)}


def render_dataset(
    dataset_dir: str | os.PathLike[str],
    effect: str | Renderer,
    knobs: Mapping[str, float] | None = None,
    out_dir: str | os.PathLike[str] | None = None,
    progress: Progress | None = None,
) -> Path:
    """Render every item's dry audio and return the manifest path.

    Args:
        dataset_dir: a dataset folder from ``fxclone generate``.
        effect: a built-in effect's name (with ``knobs``) or a renderer (``knobs`` is None:
            a renderer holds its own).
        out_dir: write a new dataset folder (manifest and dry files copied) and leave the
            source untouched.
        progress: called as ``progress(items_done, items_total)``.

    The items of each split are rendered as one continuous stream in manifest order (an
    effect's oscillators and tails run on across item boundaries, as in one long recording)
    and cut back into ``wet/<id>.wav`` files; ``renderer.describe()`` becomes the manifest's
    ``effect`` and the knob values go with every item. Every split is rendered before
    anything is written, so a renderer that fails leaves the dataset as it was.
    """
    info = load_dataset(dataset_dir)
    if isinstance(effect, Renderer):
        if knobs is not None:
            raise FxcloneError("knobs are given to the renderer, not to render_dataset")
        renderer = effect
    else:
        renderer = BuiltinRenderer(_get_effect(effect), knobs)
    target = info.path if out_dir is None else Path(out_dir)
    if out_dir is not None:
        if target.resolve() == info.path.resolve():
            raise FxcloneError(f"--out {target} is the dataset itself; omit it to render in place")
        prepare_folder(target, overwrite=False)
    manifest = json.loads(json.dumps(info.manifest))  # a deep copy, JSON types only

    total = len(manifest["items"])
    done = 0
    rendered: list[tuple[dict[str, Any], Path, np.ndarray]] = []
    for split in SPLITS:
        items = [item for item in manifest["items"] if item["split"] == split]
        if not items:
            continue
        paths = [info.path / item["dry"] for item in items]
        dry = [read_item(path, info.sample_rate)[0] for path in paths]
        lengths = [piece.shape[1] for piece in dry]
        stream = np.concatenate(dry, axis=1)
        del dry
        wet = _check_wet(renderer.render(stream, info.sample_rate), stream.shape[1], split)
        start = 0
        for item, path, length in zip(items, paths, lengths, strict=True):
            rendered.append((item, path, wet[:, start : start + length]))
            start += length
            done += 1
            if progress is not None:
                progress(done, total)

    if out_dir is None and info.effect is not None:
        # Mark the folder unrendered first: a run that dies while writing must not leave a
        # manifest that vouches for a mix of old and new wet files.
        write_manifest(target, _unrendered(manifest))
    knob_values = dict(renderer.knobs)
    for item, path, piece in rendered:
        if out_dir is not None:
            with atomic_path(target / item["dry"]) as tmp:
                shutil.copyfile(path, tmp)
        item["wet"] = f"wet/{item['id']}.wav"
        item["knobs"] = knob_values
        write_audio(target / item["wet"], piece, info.sample_rate)
    manifest["effect"] = renderer.describe()
    return write_manifest(target, manifest)


def _check_wet(wet: Any, n: int, split: str) -> np.ndarray:
    """A renderer's output as float32 ``(channels, n)``; a faulty renderer is refused."""
    audio = np.asarray(wet, dtype=np.float32)
    if audio.ndim == 1:
        audio = audio[None, :]
    if audio.ndim != 2 or abs(audio.shape[1] - n) > LENGTH_TOLERANCE:
        raise FxcloneError(
            f"the renderer returned shape {audio.shape} for the {split} split of {n} samples; "
            "the renderer is faulty: report it or choose another effect"
        )
    if not np.all(np.isfinite(audio)):
        raise FxcloneError(
            f"the renderer produced NaN/Inf for the {split} split; try other knob values"
        )
    return audio[:, :n]


def _unrendered(manifest: dict[str, Any]) -> dict[str, Any]:
    copy = json.loads(json.dumps(manifest))
    copy["effect"] = None
    for item in copy["items"]:
        item["wet"], item["knobs"] = None, None
    return copy


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
