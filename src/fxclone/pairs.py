"""The user's own dry/wet recordings as a dataset (``fxclone import``, ``fxclone train DRY WET``).

A *pair* is a dry file and the wet file recorded from it: a capture signal reamped through a
pedal or amp, a Neural Amp Modeler ``input.wav``/``output.wav``, or any music bounced through
a plugin. Each pair is read (any format; the wet is resampled to the dry's rate), checked,
aligned (:mod:`fxclone.align`: latency, clock drift, DC) and cut into dataset items:

* a recognised fxclone capture signal is split by its own layout (its train, validation and
  test passages; the alignment clicks are left out), and the rig's repeatability floor (the
  ESR of the repeated passage against itself) is recorded;
* three or more pairs: whole pairs go to the test and validation splits, so test audio never
  shares a recording with training;
* otherwise each pair's last 10 % is test, the 10 % before it validation, the rest training.

The manifest's ``effect`` is ``{"kind": "recording", ...}`` with the files, what alignment did
and, when given, the rig's input/output calibration levels in dBu.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fxclone import __version__
from fxclone.audio import AUDIO_SUFFIXES, read_audio, write_audio
from fxclone.dataset import FORMAT, MANIFEST, VERSION, prepare_folder, write_manifest
from fxclone.errors import FxcloneError
from fxclone.userdata import SPLITS, seconds

Progress = Callable[[int, int], None]
Notice = Callable[[str], None]

MIN_SECONDS = 5.0  # a pair shorter than this cannot be split into train, val and test
CLIP_LEVEL = 0.99  # three or more equal samples at least this loud are a clipped peak
CLIP_FRACTION = 1e-5  # more than this share of clipped samples (and CLIP_MIN_SAMPLES) refuses
CLIP_MIN_SAMPLES = 50
_PAIR_NAMES = (("input", "output"), ("dry", "wet"))


@dataclass(frozen=True)
class ImportConfig:
    """How recordings become a dataset. Times in seconds, levels in dBu.

    ``keep_ms`` of the measured latency stay in the aligned wet: the measurement includes part
    of the effect's own group delay, and removing all of it would ask a causal model to react
    before its input arrives (see :func:`fxclone.align.align_pair`).
    """

    item_seconds: float = 30.0
    val_fraction: float = 0.1
    test_fraction: float = 0.1
    align: bool = True
    match_level: bool = False
    max_latency_seconds: float = 1.0
    keep_ms: float = 1.0
    allow_clipping: bool = False
    wet_channel: str = "mix"
    input_level_dbu: float | None = None
    output_level_dbu: float | None = None

    def __post_init__(self) -> None:
        if self.wet_channel not in ("left", "right", "mix"):
            raise FxcloneError(
                f"wet channel {self.wet_channel!r} is not one of left, right, mix; pick one"
            )
        for name in ("val_fraction", "test_fraction"):
            value = getattr(self, name)
            if not 0.0 < value < 0.5:
                raise FxcloneError(f"{name} must be between 0 and 0.5, got {value!r}")
        if self.item_seconds < 1.0:
            raise FxcloneError(f"item_seconds must be at least 1, got {self.item_seconds!r}")


def find_pairs(paths: Sequence[str | os.PathLike[str]]) -> list[tuple[Path, Path]]:
    """``[DRY, WET]`` files, or one folder of pairs, as a list of ``(dry, wet)`` paths.

    A folder holds either ``dry/`` and ``wet/`` sub-folders with files of the same names
    (any audio format), or files named ``NAME_dry.*``/``NAME_wet.*`` (also ``input``/
    ``output``, as Neural Amp Modeler names them).
    """
    given = [Path(p) for p in paths]
    if len(given) == 2 and not given[0].is_dir():
        return [(given[0], given[1])]
    if len(given) != 1:
        raise FxcloneError(
            f"give a dry file and a wet file, or one folder of pairs (got {len(given)} paths)"
        )
    folder = given[0]
    if not folder.exists():
        raise FxcloneError(f"{folder}: no such folder; give a folder of dry/wet recordings")
    if not folder.is_dir():
        raise FxcloneError(
            f"{folder} is a file; give the dry file and the wet file, or a folder of pairs"
        )
    if (folder / "dry").is_dir() and (folder / "wet").is_dir():
        return _match_subfolders(folder)
    found = _match_suffixes(folder)
    if not found:
        raise FxcloneError(
            f"{folder} holds no dry/wet pairs; put files in dry/ and wet/ sub-folders with "
            "the same names, or name them NAME_dry.wav and NAME_wet.wav"
        )
    return found


def _audio_files(folder: Path) -> dict[str, Path]:
    return {
        p.stem: p
        for p in sorted(folder.iterdir())
        if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES and not p.name.startswith(".")
    }


def _match_subfolders(folder: Path) -> list[tuple[Path, Path]]:
    dry, wet = _audio_files(folder / "dry"), _audio_files(folder / "wet")
    lonely = sorted(set(dry) ^ set(wet))
    if lonely:
        side = "wet" if lonely[0] in dry else "dry"
        raise FxcloneError(
            f"{folder / ('dry' if side == 'wet' else 'wet')} has {lonely[0]!r} but "
            f"{folder / side} has no file of that name; add it or remove the other"
        )
    if not dry:
        raise FxcloneError(f"{folder / 'dry'} holds no audio files; add wav or flac recordings")
    return [(dry[name], wet[name]) for name in sorted(dry)]


def _match_suffixes(folder: Path) -> list[tuple[Path, Path]]:
    files = _audio_files(folder)
    pairs = []
    for stem, path in files.items():
        for dry_word, wet_word in _PAIR_NAMES:
            for sep in ("_", "-", " ", ""):
                if stem.lower() == dry_word or stem.lower().endswith(sep + dry_word):
                    base = stem[: len(stem) - len(dry_word)]
                    twin = next(
                        (files[s] for s in files if s.lower() == (base + wet_word).lower()), None
                    )
                    if twin is not None and (path, twin) not in pairs:
                        pairs.append((path, twin))
    return pairs


@dataclass
class _Prepared:
    name: str
    dry: np.ndarray
    wet: np.ndarray
    report: dict[str, Any]
    layout: Any  # a recognised capture signal, or None
    offset: int = 0  # samples trimmed from the start of the dry by alignment


def import_pairs(
    pairs: Sequence[tuple[Path, Path]],
    out_dir: str | os.PathLike[str],
    config: ImportConfig | None = None,
    *,
    progress: Progress | None = None,
    notice: Notice | None = None,
) -> Path:
    """Write a dataset folder from dry/wet recordings; returns the manifest path."""
    config = config or ImportConfig()
    out = Path(out_dir)
    prepare_folder(out, overwrite=False)
    say = notice or (lambda _m: None)
    prepared: list[_Prepared] = []
    sample_rate = 0
    for dry_path, wet_path in pairs:
        item = _prepare(dry_path, wet_path, config, sample_rate or None, say)
        sample_rate = sample_rate or item.report["sample_rate"]
        prepared.append(item)
    spans = _plan(prepared, config, sample_rate)
    limit = round(config.item_seconds * sample_rate)
    jobs = [
        (split, p, start + cut, min(end, start + cut + limit))
        for split in SPLITS
        for p, start, end in spans[split]
        for cut in range(0, end - start, limit)
        if min(end, start + cut + limit) - (start + cut) >= sample_rate // 2
    ]
    items = []
    counts = dict.fromkeys(SPLITS, 0)
    for done, (split, p, start, end) in enumerate(jobs, start=1):
        item_id = f"{split}_{counts[split]:03d}"
        counts[split] += 1
        write_audio(out / "dry" / f"{item_id}.wav", p.dry[:, start:end], sample_rate)
        write_audio(out / "wet" / f"{item_id}.wav", p.wet[:, start:end], sample_rate)
        items.append(
            {
                "id": item_id,
                "split": split,
                "dry": f"dry/{item_id}.wav",
                "wet": f"wet/{item_id}.wav",
                "samples": end - start,
                "material": f"recording:{p.name}",
                "knobs": None,
                "sources": [
                    {
                        "file": p.name,
                        "start": seconds(start, sample_rate),
                        "seconds": seconds(end - start, sample_rate),
                    }
                ],
            }
        )
        if progress is not None:
            progress(done, len(jobs))
    missing = [s for s in ("train", "test") if not counts[s]]
    if missing:
        raise FxcloneError(
            f"the recordings give no {missing[0]} audio; record at least {MIN_SECONDS:g} s"
        )
    repeat = [p.report["repeatability_esr"] for p in prepared if p.report.get("repeatability_esr")]
    effect = {
        "kind": "recording",
        "pairs": [p.report for p in prepared],
        "input_level_dbu": config.input_level_dbu,
        "output_level_dbu": config.output_level_dbu,
        "repeatability_esr": max(repeat) if repeat else None,
    }
    manifest = {
        "format": FORMAT,
        "version": VERSION,
        "sample_rate": sample_rate,
        "seed": 0,
        "created_by": f"fxclone {__version__}",
        "generator": {"import": dict(vars(config))},
        "effect": effect,
        "items": items,
    }
    return write_manifest(out, manifest)


def _prepare(
    dry_path: Path, wet_path: Path, config: ImportConfig, rate: int | None, say: Notice
) -> _Prepared:
    dry, sr = read_audio(dry_path, sample_rate=rate)
    if dry.shape[0] > 1:
        say(f"{dry_path} has {dry.shape[0]} channels; mixed to mono")
        dry = dry.mean(axis=0, keepdims=True)
    wet, wet_sr = read_audio(wet_path, sample_rate=sr)
    if wet_sr != sr:
        say(f"{wet_path} is {wet_sr} Hz; resampled to the dry file's {sr} Hz")
    if wet.shape[0] > 1:
        say(f"{wet_path} has {wet.shape[0]} channels; using {config.wet_channel}")
        wet = _pick_channel(wet, config.wet_channel)
    _check_clipping(wet, wet_path, config)
    for path, audio in ((dry_path, dry), (wet_path, wet)):
        if float(np.max(np.abs(audio))) < 1e-6:
            raise FxcloneError(f"{path} is silent (peak below -120 dBFS); check the recording")
    from fxclone.align import align_pair
    from fxclone.capture import recognise

    layout = recognise(dry, sr)
    if config.align:
        try:
            dry, wet, aligned = align_pair(
                dry,
                wet,
                sr,
                capture=layout,
                match_level=config.match_level,
                max_latency_s=config.max_latency_seconds,
                keep_ms=config.keep_ms,
            )
        except FxcloneError as exc:
            raise FxcloneError(f"{wet_path} against {dry_path}: {exc}") from None
        for line in aligned.summary_lines():
            say(f"{wet_path.name}: {line}")
        details = aligned.to_dict()
    else:
        n = min(dry.shape[1], wet.shape[1])
        if abs(dry.shape[1] - wet.shape[1]) > max(sr, dry.shape[1] // 100):
            raise FxcloneError(
                f"{wet_path} has {wet.shape[1]} samples but {dry_path} has {dry.shape[1]}; "
                "trim them to the same length or let fxclone align them"
            )
        dry, wet, details = dry[:, :n], wet[:, :n], {}
    if dry.shape[1] < MIN_SECONDS * sr:
        raise FxcloneError(
            f"{dry_path} and {wet_path} overlap for only {dry.shape[1] / sr:.1f} s; "
            f"record at least {MIN_SECONDS:g} s"
        )
    name = dry_path.name if dry_path.stem != "input" else dry_path.parent.name or dry_path.name
    report = {
        "name": name,
        "dry": str(dry_path),
        "wet": str(wet_path),
        "sample_rate": sr,
        "seconds": seconds(dry.shape[1], sr),
        "capture_signal": layout is not None,
        "fingerprint": _fingerprint(dry_path, wet_path),
        **details,
    }
    offset = int(details.get("trimmed_start", 0))
    return _Prepared(name, dry, wet.astype(np.float32), report, layout, offset)


def _pick_channel(wet: np.ndarray, which: str) -> np.ndarray:
    if which == "mix":
        return wet.mean(axis=0, keepdims=True)
    return wet[[0 if which == "left" else 1]]


def _check_clipping(wet: np.ndarray, path: Path, config: ImportConfig) -> None:
    """Refuse a recording whose peaks are flat at full scale: the interface clipped it."""
    if config.allow_clipping:
        return
    x = wet[0]
    hot = np.abs(x) >= CLIP_LEVEL
    flat = hot[:-2] & (x[:-2] == x[1:-1]) & (x[1:-1] == x[2:])
    count = int(np.count_nonzero(flat))
    if count > max(CLIP_MIN_SAMPLES, CLIP_FRACTION * x.size):
        raise FxcloneError(
            f"{path} is clipped ({count} samples flat at full scale); record it again with the "
            "interface input gain lower (or pass --allow-clipping if the effect itself clips)"
        )


def _plan(
    prepared: list[_Prepared], config: ImportConfig, sr: int
) -> dict[str, list[tuple[_Prepared, int, int]]]:
    """``split -> [(pair, start, end)]`` spans in samples."""
    spans: dict[str, list[tuple[_Prepared, int, int]]] = {s: [] for s in SPLITS}
    plain = []
    for p in prepared:
        if p.layout is not None:
            for split, start, end in _capture_spans(p.layout, p.offset, p.dry.shape[1]):
                spans[split].append((p, start, end))
        else:
            plain.append(p)
    total = sum(p.dry.shape[1] for p in plain)
    if len(plain) >= 3:
        # Whole recordings to test, then val, while they stay within twice their share.
        order = sorted(plain, key=lambda p: p.dry.shape[1])
        for split, fraction in (("test", config.test_fraction), ("val", config.val_fraction)):
            have = 0
            while len(order) > 1 and have < fraction * total:
                if have and have + order[0].dry.shape[1] > 2 * fraction * total:
                    break
                p = order.pop(0)
                spans[split].append((p, 0, p.dry.shape[1]))
                have += p.dry.shape[1]
        spans["train"].extend((p, 0, p.dry.shape[1]) for p in order)
        return spans
    for p in plain:
        n = p.dry.shape[1]
        test = round(n * config.test_fraction)
        val = round(n * config.val_fraction)
        spans["train"].append((p, 0, n - test - val))
        spans["val"].append((p, n - test - val, n - test))
        spans["test"].append((p, n - test, n))
    return spans


def _capture_spans(layout: Any, offset: int, length: int) -> list[tuple[str, int, int]]:
    """The capture's train/val/test regions, in samples of the aligned (trimmed) dry."""
    out: list[tuple[str, int, int]] = []
    for region in layout.regions:
        start, end = max(0, region.start - offset), min(length, region.end - offset)
        if region.split not in SPLITS or end <= start:
            continue
        if out and out[-1][0] == region.split and out[-1][2] == start:
            out[-1] = (region.split, out[-1][1], end)  # adjacent regions make one span
        else:
            out.append((region.split, start, end))
    return out


def is_pair_source(paths: Sequence[str | os.PathLike[str]]) -> bool:
    """Whether ``paths`` name recordings rather than a dataset folder."""
    if len(paths) == 2:
        return True
    p = Path(paths[0])
    return p.is_dir() and not (p / MANIFEST).exists()


def _fingerprint(*paths: Path) -> list[list[int]]:
    """Size and modification time of each file: enough to notice a re-recorded file."""
    return [[p.stat().st_size, p.stat().st_mtime_ns] for p in paths]


def same_sources(
    folder: Path, pairs: Sequence[tuple[Path, Path]], config: ImportConfig | None
) -> bool:
    """Whether ``folder`` holds these recordings, unchanged, imported with this config."""
    import json

    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
        effect = manifest["effect"]
        done = [(r["dry"], r["wet"], r["fingerprint"]) for r in effect["pairs"]]
        settings = manifest["generator"]["import"]
        wanted = [(str(d), str(w), _fingerprint(d, w)) for d, w in pairs]
    except (OSError, ValueError, KeyError, TypeError):
        return False
    return done == wanted and settings == vars(config or ImportConfig())
