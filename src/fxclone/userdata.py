"""The user's own audio for a dataset (``fxclone generate --from DIR``).

Files of any format, rate and channel count are read mono at the dataset rate,
loudness-normalised, cut into segments and dealt out to the splits so that, where there are
enough files, test audio never shares a recording with training.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from itertools import groupby
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from fxclone.audio import AUDIO_SUFFIXES, audio_info, loudness_normalise, read_audio
from fxclone.errors import FxcloneError
from fxclone.sounds import fade_edges

if TYPE_CHECKING:
    from fxclone.dataset import GenerateConfig

SPLITS = ("train", "val", "test")


def seconds(samples: int, sample_rate: int) -> float:
    """A sample count in seconds, rounded to the microsecond for the manifest."""
    return round(samples / sample_rate, 6)


_USER_SILENT_RMS = 10 ** (-60 / 20)  # pieces whose RMS is below -60 dBFS are dropped
_USER_FADE_SECONDS = 0.005  # every cut gets a 5-ms fade so no item starts with a click
_USER_CACHE_SAMPLES = 1 << 26  # keep up to 64 Mi samples (256 MB) read; re-read beyond that


@dataclass(frozen=True)
class _Run:
    """``samples`` contiguous samples of source ``source`` from ``start`` (dataset rate)."""

    source: int
    start: int
    samples: int


@dataclass(frozen=True)
class _UserItem:
    source: int
    name: str
    runs: tuple[_Run, ...]

    @property
    def samples(self) -> int:
        return sum(run.samples for run in self.runs)


@dataclass
class UserAudio:
    """Where each split's user audio comes from, and the files behind it.

    Every file is read (mono, resampled to the dataset rate, loudness-normalised as a whole
    so its own dynamics survive), cut into ``segment_seconds`` pieces, and pieces quieter
    than -60 dBFS RMS are dropped. With two or more usable files, whole files go to the test
    split (and, with three or more, to val), so test audio never shares a recording with
    training; otherwise the pieces of the shared files are dealt out by the seed.
    """

    folder: Path
    files: list[Path]
    config: GenerateConfig
    items: dict[str, list[_UserItem]] = field(default_factory=dict)
    shared_test_sources: bool = False
    _cache: dict[int, np.ndarray] = field(default_factory=dict)

    @classmethod
    def plan(cls, folder: Path, config: GenerateConfig, wanted: dict[str, int]) -> UserAudio:
        user = cls(folder, _find_audio(folder), config)
        sr = config.sample_rate
        user.items = {split: [] for split in SPLITS}
        if not any(wanted.values()):
            return user
        piece = round(config.segment_seconds * sr)
        minimum = min(sr, piece)  # shorter leftovers are too short to learn from
        pieces = []
        for index in range(len(user.files)):
            audio = user._load(index)
            cuts = [_Run(index, s, min(piece, audio.size - s)) for s in range(0, audio.size, piece)]
            pieces.append(
                [
                    run
                    for run in cuts
                    if run.samples >= minimum
                    and _rms(audio[run.start : run.start + run.samples]) >= _USER_SILENT_RMS
                ]
            )
        if not any(pieces):
            raise FxcloneError(
                f"every audio file in {folder} is silent (RMS below -60 dBFS); "
                "give recordings with signal in them"
            )
        rng = np.random.default_rng((config.seed, 1))
        runs, user.shared_test_sources = _assign(pieces, wanted, rng, minimum)
        limit = round(config.item_seconds * sr)
        for split in SPLITS:
            user.items[split] = [
                _UserItem(item[0].source, user._name(item[0].source), tuple(item))
                for item in _pack(runs[split], limit)
                if sum(run.samples for run in item) >= minimum
            ]
        return user

    def samples(self, split: str) -> int:
        return sum(item.samples for item in self.items[split])

    def jobs(self, split: str) -> list[tuple[Callable[[], np.ndarray], dict[str, Any]]]:
        """``(build, manifest fields)`` for each of the split's items."""
        return [
            (
                partial(self.load_item, item),
                {"material": f"user:{item.name}", "sources": self.describe_item(item)},
            )
            for item in self.items[split]
        ]

    def load_item(self, item: _UserItem) -> np.ndarray:
        """The item's audio, float32 ``(1, samples)``; each run faded in and out."""
        audio = self._load(item.source)
        fade = round(_USER_FADE_SECONDS * self.config.sample_rate)
        parts = []
        for run in item.runs:
            part = audio[run.start : run.start + run.samples].copy()
            fade_edges(part, fade, fade)
            parts.append(part)
        return np.concatenate(parts)[None, :]

    def describe_item(self, item: _UserItem) -> list[dict[str, Any]]:
        sr = self.config.sample_rate
        return [
            {"file": item.name, "start": seconds(r.start, sr), "seconds": seconds(r.samples, sr)}
            for r in item.runs
        ]

    def describe(self) -> dict[str, Any]:
        """A JSON-ready summary for the manifest."""
        used: dict[int, list[str]] = {}
        for split in SPLITS:
            for item in self.items.get(split, []):
                if split not in used.setdefault(item.source, []):
                    used[item.source].append(split)
        files = []
        for index, path in enumerate(self.files):
            rate, channels, frames = audio_info(path)
            files.append(
                {
                    "name": self._name(index),
                    "sample_rate": rate,
                    "channels": channels,
                    "seconds": seconds(frames, rate),
                    "splits": used.get(index, []),
                }
            )
        return {
            "folder": str(self.folder),
            "target_lufs": self.config.target_lufs,
            "test_shares_sources_with_train": self.shared_test_sources,
            "files": files,
        }

    def _name(self, index: int) -> str:
        path = self.files[index]
        return path.name if path == self.folder else path.relative_to(self.folder).as_posix()

    def _load(self, index: int) -> np.ndarray:
        if index in self._cache:
            return self._cache[index]
        sr = self.config.sample_rate
        audio, _ = read_audio(self.files[index], sample_rate=sr, mono=True)
        audio = loudness_normalise(audio, sr, self.config.target_lufs)[0]
        if sum(a.size for a in self._cache.values()) + audio.size <= _USER_CACHE_SAMPLES:
            self._cache[index] = audio
        return audio


def _find_audio(folder: Path) -> list[Path]:
    """Audio files under ``folder`` (recursively, sorted; hidden files skipped), or one file."""
    if folder.is_file():
        return [folder]
    if not folder.is_dir():
        raise FxcloneError(f"{folder}: no such folder; give the folder that holds your recordings")
    candidates = sorted(
        p
        for p in folder.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )
    found = [p for p in candidates if p.suffix.lower() in AUDIO_SUFFIXES]
    if not found:
        names = ", ".join(p.name for p in candidates[:3]) + (", ..." if len(candidates) > 3 else "")
        others = f" (found only {names})" if candidates else ""
        raise FxcloneError(
            f"{folder} holds no audio files{others}; add wav, flac, mp3, ogg or aiff recordings"
        )
    return found


def _assign(
    pieces: list[list[_Run]], wanted: dict[str, int], rng: np.random.Generator, minimum: int
) -> tuple[dict[str, list[_Run]], bool]:
    """Deal pieces to splits, up to ``wanted[split]`` samples each; returns runs and whether
    test had to share source files with train."""
    order = [int(i) for i in rng.permutation(len(pieces)) if pieces[int(i)]]
    pools: list[tuple[tuple[str, ...], list[int]]] = []
    for split in ("test", "val"):
        # A split gets files of its own while at least one file stays for training.
        if wanted[split] >= minimum and len(order) >= 2:
            chosen: list[int] = []
            have = 0
            while have < wanted[split] and len(order) > 1:
                chosen.append(order.pop(0))
                have += sum(p.samples for p in pieces[chosen[-1]])
            pools.append(((split,), chosen))
    own = {split for splits, _ in pools for split in splits}
    pools.append((tuple(s for s in SPLITS if s not in own), order))
    out: dict[str, list[_Run]] = {split: [] for split in SPLITS}
    for splits, files in pools:
        every = [p for f in files for p in pieces[f]]
        pool = deque(every[int(j)] for j in rng.permutation(len(every)))
        need = {s: wanted[s] for s in splits}
        while pool:
            live = [s for s in splits if need[s] >= minimum]
            if not live:
                break
            # The split furthest from its share takes the next piece (fair for small pools);
            # what it does not need goes back for the next split.
            split = max(live, key=lambda s: need[s] / wanted[s])
            run = pool.popleft()
            take = min(run.samples, need[split])
            out[split].append(_Run(run.source, run.start, take))
            need[split] -= take
            if run.samples - take >= minimum:
                pool.appendleft(_Run(run.source, run.start + take, run.samples - take))
    return out, "test" not in own and bool(out["test"])


def _pack(runs: list[_Run], limit: int) -> list[list[_Run]]:
    """Group runs into items of at most ``limit`` samples, one source file per item,
    joining runs that are contiguous in their source."""
    merged: list[_Run] = []
    for run in sorted(runs, key=lambda r: (r.source, r.start)):
        last = merged[-1] if merged else None
        if last and last.source == run.source and last.start + last.samples == run.start:
            merged[-1] = _Run(run.source, last.start, last.samples + run.samples)
        else:
            merged.append(run)
    items: list[list[_Run]] = []
    for _, group in groupby(merged, key=lambda r: r.source):
        current: list[_Run] = []
        size = 0
        for run in group:
            start, left = run.start, run.samples
            while left > 0:
                take = min(left, limit - size)
                current.append(_Run(run.source, start, take))
                size, start, left = size + take, start + take, left - take
                if size == limit:
                    items.append(current)
                    current, size = [], 0
        if current:
            items.append(current)
    return items


def _rms(audio: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(audio, dtype=np.float64))))
