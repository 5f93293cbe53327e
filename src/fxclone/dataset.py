"""The dataset folder: dry/wet audio pairs and a human-readable ``manifest.json``.

Layout::

    DIR/manifest.json      what generated the audio, the effect and knobs, one entry per item
    DIR/dry/<id>.wav       float32 WAV, mono
    DIR/wet/<id>.wav       written by :func:`fxclone.rendering.render_dataset`

Items belong to a split (``train``, ``val``, ``test``) and are at most ``item_seconds`` long.
Synthetic items come from :mod:`fxclone.signals`: train from ``TRAIN_MIX`` with ``seed``, val
from ``TRAIN_MIX`` with ``seed + 5000``, test from ``TEST_MIX`` with ``seed + 10000``, so test
figures measure how well a model generalises. Every file is written atomically and the
manifest last, so an interrupted run never leaves a manifest that points at missing audio.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, fields
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from fxclone import __version__
from fxclone.audio import (
    atomic_path,
    read_audio,
    write_audio,
)
from fxclone.errors import FxcloneError
from fxclone.signals import TEST_MIX, TRAIN_MIX, Mix, iter_segments
from fxclone.userdata import SPLITS, UserAudio
from fxclone.userdata import seconds as _seconds

FORMAT = "fxclone-dataset"
VERSION = 1
MANIFEST = "manifest.json"
SPLIT_SEED_OFFSET = {"train": 0, "val": 5_000, "test": 10_000}
LENGTH_TOLERANCE = 16  # samples; a renderer's rounding, not a latency (that needs alignment)
_SILENT_PEAK = 1e-6  # -120 dBFS: an item this quiet holds nothing to learn from
_ID_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.")

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class GenerateConfig:
    """What :func:`generate_dataset` makes. Times in seconds, loudness in LUFS.

    With ``from_dir``, up to ``user_fraction`` of each split's seconds comes from the user's
    audio and synthetic audio fills the rest, so every split has the requested length; if the
    folder holds less audio than that share, all of it is used.
    """

    sample_rate: int = 48000
    seed: int = 0
    train_seconds: float = 120.0
    val_seconds: float = 20.0
    test_seconds: float = 30.0
    segment_seconds: float = 10.0
    item_seconds: float = 30.0
    from_dir: str | None = None
    user_fraction: float = 0.5
    target_lufs: float = -18.0

    def __post_init__(self) -> None:
        for name in ("sample_rate", "seed"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool):
                raise FxcloneError(f"{name} must be a whole number, got {value!r}")
        if not 8000 <= self.sample_rate <= 384000:
            raise FxcloneError(
                f"sample_rate {self.sample_rate} Hz is out of range; use 8000-384000 (e.g. 48000)"
            )
        if self.seed < 0:
            raise FxcloneError(f"seed must be >= 0, got {self.seed}")
        for name in ("train_seconds", "val_seconds", "test_seconds", "segment_seconds"):
            _check_number(name, getattr(self, name), 0.0, 1e6)
        for name in ("train_seconds", "segment_seconds"):
            if getattr(self, name) <= 0:
                raise FxcloneError(f"{name} must be > 0, got {getattr(self, name)}")
        _check_number("item_seconds", self.item_seconds, self.segment_seconds, 1e6)
        _check_number("user_fraction", self.user_fraction, 0.0, 1.0)
        _check_number("target_lufs", self.target_lufs, -70.0, 0.0)
        if isinstance(self.from_dir, os.PathLike):
            object.__setattr__(self, "from_dir", os.fspath(self.from_dir))
        if self.from_dir is not None and not isinstance(self.from_dir, str):
            raise FxcloneError(f"from_dir must be a folder path, got {self.from_dir!r}")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GenerateConfig:
        """Build from a mapping; unknown keys are an error, never silently ignored."""
        known = [f.name for f in fields(cls)]
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise FxcloneError(
                f"unknown generate setting {unknown[0]!r}; known settings: {', '.join(known)}"
            )
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, eq=False)
class Pair:
    """One dry/wet item: float32 ``(channels, samples)`` arrays of equal length."""

    id: str
    split: str
    dry: np.ndarray
    wet: np.ndarray
    knobs: dict[str, float]


@dataclass(frozen=True, eq=False)
class DatasetInfo:
    """A validated dataset folder: ``items`` are the manifest's item entries, in order."""

    path: Path
    sample_rate: int
    effect: dict[str, Any] | None
    items: tuple[dict[str, Any], ...]
    manifest: dict[str, Any]

    def split_items(self, split: str) -> list[dict[str, Any]]:
        """The items of one split (``train``, ``val`` or ``test``)."""
        if split not in SPLITS:
            raise FxcloneError(f"unknown split {split!r}; use one of {', '.join(SPLITS)}")
        return [item for item in self.items if item["split"] == split]


def generate_dataset(
    out_dir: str | os.PathLike[str],
    config: GenerateConfig,
    progress: Progress | None = None,
    *,
    overwrite: bool = False,
) -> Path:
    """Write a dataset folder of dry audio (no wet yet) and return its manifest path.

    Args:
        out_dir: a new or empty folder; with ``overwrite``, an existing dataset folder is
            replaced (its manifest and wav files only).
        config: what to generate.
        progress: called as ``progress(items_written, items_total)``.

    The same config always writes the same audio and the same manifest bytes.
    """
    out = Path(out_dir)
    prepare_folder(out, overwrite=overwrite)
    sr = config.sample_rate
    split_samples = {
        "train": round(config.train_seconds * sr),
        "val": round(config.val_seconds * sr),
        "test": round(config.test_seconds * sr),
    }
    user = None
    if config.from_dir is not None:
        wanted = {s: round(n * config.user_fraction) for s, n in split_samples.items()}
        user = UserAudio.plan(Path(config.from_dir), config, wanted)

    jobs: list[tuple[str, str, Callable[[], np.ndarray], dict[str, Any]]] = []
    splits_info: dict[str, Any] = {}
    for split in SPLITS:
        user_jobs = user.jobs(split) if user else []
        user_total = user.samples(split) if user else 0
        synth_total = split_samples[split] - user_total
        if synth_total < sr:  # a top-up under a second is not worth a file
            synth_total = 0
        mix = TEST_MIX if split == "test" else TRAIN_MIX
        seed = config.seed + SPLIT_SEED_OFFSET[split]
        splits_info[split] = {
            "seconds": _seconds(synth_total + user_total, sr),
            "synthetic": {"seconds": _seconds(synth_total, sr), "seed": seed, "mix": mix.to_dict()},
            "user_seconds": _seconds(user_total, sr),
        }
        synthetic = [
            (build, {"material": f"synthetic:{mix.name}"})
            for build in _synthetic_items(config, mix, seed, synth_total)
        ]
        for count, (build, extra) in enumerate(synthetic + user_jobs):
            jobs.append((split, f"{split}_{count:03d}", build, extra))

    items = []
    for done, (split, item_id, build, extra) in enumerate(jobs, start=1):
        audio = build()
        write_audio(out / "dry" / f"{item_id}.wav", audio, sr)
        items.append(
            {
                "id": item_id,
                "split": split,
                "dry": f"dry/{item_id}.wav",
                "wet": None,
                "samples": int(audio.shape[-1]),
                "material": extra["material"],
                "knobs": None,
                **{k: v for k, v in extra.items() if k != "material"},
            }
        )
        if progress is not None:
            progress(done, len(jobs))

    manifest = {
        "format": FORMAT,
        "version": VERSION,
        "sample_rate": sr,
        "seed": config.seed,
        "created_by": f"fxclone {__version__}",
        "generator": {
            "config": config.to_dict(),
            "splits": splits_info,
            "user_audio": user.describe() if user else None,
        },
        "effect": None,
        "items": items,
    }
    return write_manifest(out, manifest)


def load_dataset(path: str | os.PathLike[str]) -> DatasetInfo:
    """Open and validate a dataset folder (or its ``manifest.json``).

    Checks that the manifest parses, has this format and a version this fxclone reads, that
    every item entry is complete and every file it names exists.
    """
    folder = Path(path)
    if folder.name == MANIFEST and folder.is_file():
        folder = folder.parent
    if not folder.is_dir():
        raise FxcloneError(f"{folder}: no such dataset folder; create one with `fxclone generate`")
    manifest_path = folder / MANIFEST
    if not manifest_path.is_file():
        raise FxcloneError(
            f"{folder} has no {MANIFEST}, so it is not a dataset folder; "
            f"create one with `fxclone generate {folder}`"
        )
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise FxcloneError(
            f"{manifest_path} is not valid JSON ({exc}); restore it or generate the dataset again"
        ) from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise FxcloneError(
            f"{manifest_path} is not an fxclone dataset manifest (no format {FORMAT!r})"
        )
    version = manifest.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise FxcloneError(
            f"{manifest_path} has an invalid version {version!r}; expected {VERSION}"
        )
    if version > VERSION:
        raise FxcloneError(
            f"{manifest_path} is dataset format version {version}, newer than this fxclone reads "
            f"(version {VERSION}); upgrade fxclone"
        )
    sr = manifest.get("sample_rate")
    if not isinstance(sr, int) or isinstance(sr, bool) or sr <= 0:
        raise FxcloneError(f"{manifest_path}: sample_rate {sr!r} is not a positive whole number")
    effect = manifest.get("effect")
    if effect is not None and not isinstance(effect, dict):
        raise FxcloneError(f"{manifest_path}: effect must be null or an object, got {effect!r}")
    items = manifest.get("items")
    if not isinstance(items, list) or not items:
        raise FxcloneError(f"{manifest_path} lists no items; generate the dataset again")
    seen: set[str] = set()
    for item in items:
        _check_item(item, manifest_path, seen)
        for key in ("dry", "wet"):
            if item[key] is not None and not (folder / item[key]).is_file():
                raise FxcloneError(
                    f"{folder / item[key]} is listed in {MANIFEST} but missing; restore it or "
                    f"{'generate' if key == 'dry' else 'render'} the dataset again"
                )
    return DatasetInfo(folder, sr, effect, tuple(items), manifest)


def load_pairs(info: DatasetInfo, split: str) -> list[Pair]:
    """Read the dry/wet pairs of one split (an empty list if the split has no items).

    Returns float32 ``(channels, samples)`` arrays of equal length; lengths that differ by
    at most :data:`LENGTH_TOLERANCE` samples are trimmed to the shorter one.
    """
    pairs = []
    for item in info.split_items(split):
        if item["wet"] is None:
            raise FxcloneError(
                f"{info.path} has no wet audio for {item['id']}; "
                f"run `fxclone render {info.path} --effect NAME` first"
            )
        dry_path, wet_path = info.path / item["dry"], info.path / item["wet"]
        dry, dry_sr = read_item(dry_path, info.sample_rate)
        if dry.shape[1] != item["samples"]:
            raise FxcloneError(
                f"{dry_path} has {dry.shape[1]} samples but {MANIFEST} says {item['samples']}; "
                "the file was changed: restore it or generate the dataset again"
            )
        wet, wet_sr = read_audio(wet_path)
        if wet_sr != dry_sr:
            raise FxcloneError(
                f"{wet_path} is {wet_sr} Hz but {dry_path} is {dry_sr} Hz; render the dataset "
                f"again, or resample the wet file to {dry_sr} Hz"
            )
        gap = abs(wet.shape[1] - dry.shape[1])
        if gap > LENGTH_TOLERANCE:
            raise FxcloneError(
                f"{wet_path} has {wet.shape[1]} samples but {dry_path} has {dry.shape[1]} "
                f"(off by {gap} > {LENGTH_TOLERANCE}); render again, or trim/align the recording"
            )
        if wet.shape[0] != dry.shape[0] and dry.shape[0] != 1:
            raise FxcloneError(
                f"{wet_path} has {wet.shape[0]} channels but {dry_path} has {dry.shape[0]}; "
                "render the dataset again"
            )
        for name, audio, fix in (
            (dry_path, dry, "delete its entry from manifest.json or generate again"),
            (wet_path, wet, "the effect output nothing: check its level knobs and render again"),
        ):
            if float(np.max(np.abs(audio))) < _SILENT_PEAK:
                raise FxcloneError(f"{name} is silent (peak below -120 dBFS); {fix}")
        n = min(dry.shape[1], wet.shape[1])
        knobs = item.get("knobs") or (info.effect or {}).get("knobs") or {}
        pairs.append(Pair(item["id"], split, dry[:, :n], wet[:, :n], dict(knobs)))
    return pairs


# --- internals ---------------------------------------------------------------------------


def _synthetic_items(
    config: GenerateConfig, mix: Mix, seed: int, total: int
) -> list[Callable[[], np.ndarray]]:
    """Builders for the synthetic items of a split: whole segments, at most item_seconds."""
    if total <= 0:
        return []
    sr = config.sample_rate
    segment = max(1, round(config.segment_seconds * sr))
    per_item = segment * max(1, math.floor(config.item_seconds / config.segment_seconds + 1e-9))
    segments = iter_segments(seed, sr, total / sr, mix, config.segment_seconds)

    def build(length: int) -> np.ndarray:
        # Items are built in order, so each takes the next segments of one seeded stream.
        parts: list[np.ndarray] = []
        have = 0
        while have < length:
            parts.append(next(segments))
            have += parts[-1].size
        return np.concatenate(parts)[None, :]

    lengths = [min(per_item, total - start) for start in range(0, total, per_item)]
    return [partial(build, n) for n in lengths]


def prepare_folder(out: Path, *, overwrite: bool) -> None:
    """Make sure ``out`` is a usable output folder; clear an old dataset if allowed."""
    if out.exists() and not out.is_dir():
        raise FxcloneError(f"{out} is a file; give a folder path for the dataset")
    if not out.is_dir() or not any(out.iterdir()):
        return
    if not overwrite:
        raise FxcloneError(
            f"{out} already exists and is not empty; choose a new folder or delete it"
        )
    if not (out / MANIFEST).is_file():
        raise FxcloneError(f"{out} is not empty and has no {MANIFEST}; refusing to overwrite it")
    (out / MANIFEST).unlink()  # first, so a crash below leaves no manifest pointing at gaps
    for sub in ("dry", "wet"):
        for old in sorted((out / sub).glob("*.wav")):
            old.unlink()


def write_manifest(folder: Path, manifest: dict[str, Any]) -> Path:
    path = folder / MANIFEST
    text = json.dumps(manifest, indent=2, ensure_ascii=False) + "\n"
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path


def _check_item(item: Any, manifest_path: Path, seen: set[str]) -> None:
    where = f"{manifest_path}: item {item.get('id', '?') if isinstance(item, dict) else item!r}"
    if not isinstance(item, dict):
        raise FxcloneError(f"{where} is not an object; restore the manifest or generate again")
    for key in ("id", "split", "dry", "wet", "samples"):
        if key not in item:
            raise FxcloneError(f"{where} has no {key!r}; restore the manifest or generate again")
    item_id = item["id"]
    if not isinstance(item_id, str) or not item_id or not set(item_id) <= _ID_CHARS:
        raise FxcloneError(f"{where}: id must be letters, digits, '_', '-' or '.'")
    if item_id in seen:
        raise FxcloneError(f"{where} appears twice; give every item its own id")
    seen.add(item_id)
    if item["split"] not in SPLITS:
        raise FxcloneError(f"{where}: split {item['split']!r} is not one of {', '.join(SPLITS)}")
    for key in ("dry", "wet"):
        value = item[key]
        if key == "wet" and value is None:
            continue
        if not isinstance(value, str) or Path(value).is_absolute() or ".." in Path(value).parts:
            raise FxcloneError(f"{where}: {key} {value!r} must be a path inside the dataset folder")
    if not isinstance(item["samples"], int) or item["samples"] <= 0:
        raise FxcloneError(f"{where}: samples {item['samples']!r} is not a positive whole number")


def read_item(path: Path, sample_rate: int) -> tuple[np.ndarray, int]:
    audio, sr = read_audio(path)
    if sr != sample_rate:
        raise FxcloneError(
            f"{path} is {sr} Hz but the dataset is {sample_rate} Hz; "
            f"generate again or resample the file to {sample_rate} Hz"
        )
    return audio, sr


def _check_number(name: str, value: Any, low: float, high: float) -> None:
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    if not ok or not math.isfinite(value) or not low <= value <= high:
        raise FxcloneError(f"{name} must be a number from {low:g} to {high:g}, got {value!r}")
