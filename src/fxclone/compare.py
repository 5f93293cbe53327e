"""``fxclone compare``: train several models on one dataset at one wall-time budget each and
rank them on the test split.

Each model trains with its authors' training defaults (``Preset.train_defaults``) for
``minutes`` of wall time, is scored by ``fxclone evaluate`` on the test split, and is timed
streaming 64-sample blocks on one thread. Results accumulate in ``OUT/leaderboard.json``
(one row per model), so a long list can be run over several sittings: models already scored
at the same budget are skipped, and a run interrupted mid-training resumes from its
checkpoint. ``OUT/leaderboard.md`` holds the table as Markdown.

Models too slow to process the whole test split in ``max_eval_minutes`` (KTH's window models
run a whole LSTM over 1,024 samples for every output sample) are scored on part of it, sized
to take about that long: window -> sample models on every k-th output sample across the whole
split (each output is independent of the others, so this is an unbiased sample of the same
ESR), other models on the first seconds of each test item. The row says which.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from fxclone.audio import atomic_path
from fxclone.errors import FxcloneError
from fxclone.models.base import EffectModel
from fxclone.models.windowed import CHUNK_ELEMENTS, WindowedModel

PathLike = str | os.PathLike[str]
COLUMNS = (
    ("model", "model"),
    ("test_esr", "test ESR"),
    ("test_mrstft", "MRSTFT"),
    ("parameters", "parameters"),
    ("train_minutes", "training (min)"),
    ("epochs", "epochs"),
    ("rtf_64", "x real time (64-sample blocks)"),
    ("latency_ms", "latency (ms)"),
)


def compare(
    dataset_dir: PathLike,
    out_dir: PathLike,
    models: Sequence[str],
    *,
    minutes: float = 2.0,
    seed: int = 0,
    max_eval_minutes: float = 15.0,
    progress: bool = True,
    announce: Callable[[str], None] = lambda _msg: None,
) -> list[dict[str, Any]]:
    """Train and score ``models`` on ``dataset_dir``; returns the leaderboard, best first.

    A model whose pass over the test split would take longer than ``max_eval_minutes``
    (window-per-sample models such as KTH's LSTM) is scored on part of the split sized to
    take about ``max_eval_minutes`` (see the module's notes); its row's ``scored_on`` says
    which part."""
    from fxclone.journey import evaluate, train
    from fxclone.modelfile import load_model
    from fxclone.models.registry import get_preset
    from fxclone.streaming import streaming_speed
    from fxclone.training import train_config

    if minutes <= 0:
        raise FxcloneError(f"--minutes {minutes} must be positive")
    for name in models:
        get_preset(name)  # an unknown name fails before anything trains
    data, out = Path(dataset_dir), Path(out_dir)
    board = load_leaderboard(out)
    test_seconds = _test_seconds(data)
    for i, name in enumerate(models, 1):
        row = board.get(name)
        if row and row["minutes"] == minutes and row["seed"] == seed:
            announce(f"[{i}/{len(models)}] {name}: already scored ({_score(row)})")
            continue
        cost = eval_minutes(name, _sample_rate(data), test_seconds)
        announce(f"[{i}/{len(models)}] {name}: training for {minutes:g} min")
        model_path = out / "models" / f"{name}.safetensors"
        settings = {"model": name, "max_minutes": minutes, "max_epochs": 1_000_000, "seed": seed}
        summary = train(
            data, model_path, train_config(settings), run_dir=out / "runs" / name,
            progress=progress,
        )  # fmt: skip
        model = load_model(model_path).model
        if cost > max_eval_minutes:
            metrics = partial_scores(model, data, max_eval_minutes / cost)
            announce(f"    scored on {metrics['scored_on']} (the whole split: ~{cost:.0f} min)")
        else:
            metrics = evaluate(model_path, data, out / "eval" / name)
        board[name] = {
            "model": name,
            "dataset": str(data),
            "minutes": minutes,
            "seed": seed,
            "test_esr": metrics["esr"],
            "test_esr_pre_emph": metrics.get("esr_pre_emph"),
            "test_mrstft": metrics.get("mrstft"),
            "scored_on": metrics.get("scored_on", "the whole test split"),
            "esr_linear_baseline": metrics.get("esr_linear"),
            "parameters": model.num_parameters(),
            "receptive_field": model.receptive_field,
            "latency_samples": model.latency_samples,
            "latency_ms": round(1000 * model.latency_samples / model.sample_rate, 2),
            "train_minutes": round(summary["train_seconds"] / 60, 2),
            "epochs": summary["epochs"],
            "steps": summary["steps"],
            "rtf_64": float(f"{streaming_speed(model, block_size=64):.3g}"),
            "scored_at": time.strftime("%Y-%m-%d %H:%M"),
        }
        save_leaderboard(out, board)
        announce(f"    test ESR {metrics['esr']:.4g}")
    return ranked(board, models)


def ranked(board: dict[str, dict[str, Any]], models: Sequence[str] = ()) -> list[dict[str, Any]]:
    """Rows (only ``models`` if given), lowest test ESR first, unscored ones last."""
    rows = [r for n, r in board.items() if not models or n in models]
    return sorted(rows, key=lambda r: (r["test_esr"] is None, r["test_esr"] or 0.0))


def eval_minutes(name: str, sample_rate: int, seconds: float) -> float:
    """Estimated minutes for ``name`` (untrained) to process ``seconds`` of audio offline."""
    import torch

    from fxclone.models.registry import create_model

    torch.manual_seed(0)
    model = create_model(name, sample_rate=sample_rate).eval()
    n, spent = 256, 0.0
    with torch.inference_mode():
        while True:
            x = 0.1 * torch.randn(1, model.channels, n + model.latency_samples)
            t0 = time.perf_counter()
            model(x, torch.zeros(1, 0))
            spent = time.perf_counter() - t0
            if spent > 0.5 or n >= 16384:
                break
            n *= 8
    return seconds * sample_rate / n * spent / 60


def partial_scores(model: EffectModel, data: Path, fraction: float) -> dict[str, Any]:
    """Test ESR (and, on excerpts, MRSTFT) from about ``fraction`` of the test split's
    processing: every k-th output sample for window -> sample models, else the first
    ``fraction`` of each test item (at least one second)."""
    from fxclone.dataset import load_dataset, load_pairs
    from fxclone.metrics import compute_metrics, esr
    from fxclone.streaming import process_array

    info = load_dataset(data)
    test = load_pairs(info, "test")
    if isinstance(model, WindowedModel):
        stride = max(1, math.ceil(1 / fraction))
        estimates, targets = [], []
        for pair in test:
            knobs = {k.name: float(pair.knobs[k.name]) for k in model.knobs if k.name in pair.knobs}
            picks = np.arange(stride // 2, pair.dry.shape[1], stride)
            estimates.append(sampled_outputs(model, pair.dry, picks, knobs))
            targets.append(pair.wet[:, picks])
        target, estimate = np.concatenate(targets, 1), np.concatenate(estimates, 1)
        share = f"one sample in {stride}" if stride > 1 else "every sample"
        return {"esr": esr(target, estimate), "scored_on": f"{share} of the test split"}
    seconds = []
    estimates, targets = [], []
    for pair in test:
        n = min(pair.dry.shape[1], max(info.sample_rate, int(fraction * pair.dry.shape[1])))
        knobs = {k.name: float(pair.knobs[k.name]) for k in model.knobs if k.name in pair.knobs}
        estimates.append(process_array(model, pair.dry[:, :n], knobs))
        targets.append(pair.wet[:, :n])
        seconds.append(n / info.sample_rate)
    target, estimate = np.concatenate(targets, 1), np.concatenate(estimates, 1)
    scores = compute_metrics(target, estimate, info.sample_rate)
    where = f"the first {seconds[0]:.1f} s" + (" of each test item" if len(test) > 1 else "")
    return {**scores, "scored_on": f"{where} of the test split"}


def sampled_outputs(
    model: WindowedModel, dry: np.ndarray, picks: np.ndarray, knobs: dict[str, float]
) -> np.ndarray:
    """The outputs of window -> sample ``model`` aligned with wet samples ``picks`` of
    ``dry`` ``(channels, samples)``, as ``process_array`` would give them (silence before
    the start, latency removed): ``(channels, len(picks))``."""
    import torch

    from fxclone.streaming import knob_tensor

    window, lat = model.window_samples, model.latency_samples
    x = torch.from_numpy(np.ascontiguousarray(dry, dtype=np.float32))
    full = torch.nn.functional.pad(x, (window - 1, lat))  # window for wet n ends at n + lat
    starts = torch.from_numpy(picks.astype(np.int64)) + lat
    per_chunk = max(1, CHUNK_ELEMENTS // (window * model.feature_width))
    k = knob_tensor(model, knobs)
    parts = []
    with torch.inference_mode():
        for s in range(0, len(starts), per_chunk):
            idx = starts[s : s + per_chunk, None] + torch.arange(window)  # (N, W)
            windows = full[:, idx].transpose(0, 1)  # (N, C, W)
            parts.append(model.window_net(windows, k.expand(windows.shape[0], -1)))
    return torch.cat(parts).T.numpy()


def _score(row: dict[str, Any]) -> str:
    esr, part = row.get("test_esr"), row.get("scored_on", "the whole test split")
    if esr is None:  # rows from versions that left slow models unscored
        return f"not scored: {row.get('note')}"
    return f"test ESR {esr:.4g}" + ("" if part == "the whole test split" else f" (on {part})")


def _sample_rate(data: Path) -> int:
    from fxclone.dataset import load_dataset

    return load_dataset(data).sample_rate


def _test_seconds(data: Path) -> float:
    import soundfile as sf

    return sum(sf.info(f).duration for f in sorted((data / "dry").glob("test_*.wav")))


def load_leaderboard(out: Path) -> dict[str, dict[str, Any]]:
    path = out / "leaderboard.json"
    if not path.exists():
        return {}
    try:
        rows = json.loads(path.read_text())["rows"]
        return {r["model"]: r for r in rows}
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise FxcloneError(
            f"{path} is not a leaderboard ({exc}); move it away or choose another --out"
        ) from None


def save_leaderboard(out: Path, board: dict[str, dict[str, Any]]) -> None:
    rows = ranked(board)
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(out / "leaderboard.json") as tmp:
        tmp.write_text(json.dumps({"format": "fxclone-leaderboard", "rows": rows}, indent=1))
    with atomic_path(out / "leaderboard.md") as tmp:
        tmp.write_text(markdown_table(rows))


def cell(key: str, value: Any) -> str:
    if value is None:
        return "-"
    if key == "parameters":
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def row_cells(row: dict[str, Any]) -> list[str]:
    cells = [cell(k, row.get(k)) for k, _ in COLUMNS]
    part = row.get("scored_on", "the whole test split")
    if part != "the whole test split":
        cells[1] += f" (on {part})"
    return cells


def markdown_table(rows: Sequence[dict[str, Any]]) -> str:
    head = "| " + " | ".join(label for _, label in COLUMNS) + " |"
    rule = "|" + "---|" * len(COLUMNS)
    body = [
        "| " + " | ".join(row_cells(r)) + " |"
        if r.get("test_esr") is not None
        else f"| {r['model']} | not scored: {r.get('note')} |" + " |" * (len(COLUMNS) - 2)
        for r in rows
    ]
    return "\n".join([head, rule, *body]) + "\n"
