"""``fxclone compare``: train several models on one dataset at one wall-time budget each and
rank them on the test split.

Each model trains with its authors' training defaults (``Preset.train_defaults``) for
``minutes`` of wall time, is scored by ``fxclone evaluate`` on the test split, and is timed
streaming 64-sample blocks on one thread. Results accumulate in ``OUT/leaderboard.json``
(one row per model), so a long list can be run over several sittings: models already scored
at the same budget are skipped, and a run interrupted mid-training resumes from its
checkpoint. ``OUT/leaderboard.md`` holds the table as Markdown.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from fxclone.audio import atomic_path
from fxclone.errors import FxcloneError

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
    (window-per-sample models such as KTH's LSTM) is listed as not scored, with the time it
    would need, rather than trained."""
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
        if cost > max_eval_minutes:  # it could train, but never be scored in this sitting
            board[name] = _unscored(name, data, minutes, seed, cost)
            save_leaderboard(out, board)
            announce(f"[{i}/{len(models)}] {name}: not scored: {board[name]['note']}")
            continue
        announce(f"[{i}/{len(models)}] {name}: training for {minutes:g} min")
        model_path = out / "models" / f"{name}.safetensors"
        settings = {"model": name, "max_minutes": minutes, "max_epochs": 1_000_000, "seed": seed}
        summary = train(
            data, model_path, train_config(settings), run_dir=out / "runs" / name,
            progress=progress,
        )  # fmt: skip
        metrics = evaluate(model_path, data, out / "eval" / name)
        model = load_model(model_path).model
        board[name] = {
            "model": name,
            "dataset": str(data),
            "minutes": minutes,
            "seed": seed,
            "test_esr": metrics["esr"],
            "test_esr_pre_emph": metrics.get("esr_pre_emph"),
            "test_mrstft": metrics.get("mrstft"),
            "esr_linear_baseline": metrics.get("esr_linear"),
            "parameters": model.num_parameters(),
            "receptive_field": model.receptive_field,
            "latency_samples": model.latency_samples,
            "latency_ms": round(1000 * model.latency_samples / model.sample_rate, 2),
            "train_minutes": round(summary["train_seconds"] / 60, 2),
            "epochs": summary["epochs"],
            "steps": summary["steps"],
            "rtf_64": round(streaming_speed(model, block_size=64), 2),
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


def _unscored(name: str, data: Path, minutes: float, seed: int, cost: float) -> dict[str, Any]:
    note = f"the test split would take ~{cost:.0f} min to process on this CPU"
    return {
        "model": name,
        "dataset": str(data),
        "minutes": minutes,
        "seed": seed,
        "test_esr": None,
        "note": note,
        "scored_at": time.strftime("%Y-%m-%d %H:%M"),
    }


def _score(row: dict[str, Any]) -> str:
    esr = row.get("test_esr")
    return f"test ESR {esr:.4g}" if esr is not None else f"not scored: {row.get('note')}"


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


def markdown_table(rows: Sequence[dict[str, Any]]) -> str:
    head = "| " + " | ".join(label for _, label in COLUMNS) + " |"
    rule = "|" + "---|" * len(COLUMNS)
    body = [
        "| " + " | ".join(cell(k, r.get(k)) for k, _ in COLUMNS) + " |"
        if r.get("test_esr") is not None
        else f"| {r['model']} | not scored: {r.get('note')} |" + " |" * (len(COLUMNS) - 2)
        for r in rows
    ]
    return "\n".join([head, rule, *body]) + "\n"
