"""``fxclone compare``: a fixed wall time per model, a ranked leaderboard that accumulates."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

import fxclone.journey
from cli_harness import assert_clean_failure
from fxclone.compare import compare
from trained import lowpass_dataset


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return lowpass_dataset(tmp_path_factory.mktemp("compare") / "data")


def test_leaderboard_ranks_and_accumulates(data: Path, tmp_path: Path, monkeypatch) -> None:
    out = tmp_path / "board"
    notes: list[str] = []
    rows = compare(data, out, ["wavenet-nano", "gru"], minutes=0.05, progress=False,
                   announce=notes.append)  # fmt: skip
    assert [r["model"] for r in rows] == sorted(
        ["wavenet-nano", "gru"], key=lambda n: next(r["test_esr"] for r in rows if r["model"] == n)
    )
    esrs = [r["test_esr"] for r in rows]
    assert esrs == sorted(esrs) and all(math.isfinite(e) and e > 0 for e in esrs)
    for r in rows:
        assert r["train_minutes"] > 0 and r["epochs"] >= 1 and r["minutes"] == 0.05
        assert r["rtf_64"] > 1 and r["parameters"] > 0 and r["latency_ms"] == 0
    saved = json.loads((out / "leaderboard.json").read_text())["rows"]
    assert [r["model"] for r in saved] == [r["model"] for r in rows]
    table = (out / "leaderboard.md").read_text().splitlines()
    assert len(table) == 2 + 2 and table[2].startswith(f"| {rows[0]['model']} |")

    # A second sitting adds a model and trains nothing already scored.
    trained: list[str] = []
    real_train = fxclone.journey.train

    def counting_train(*args, **kwargs):
        trained.append(args[2].model)
        return real_train(*args, **kwargs)

    monkeypatch.setattr(fxclone.journey, "train", counting_train)
    rows = compare(data, out, ["gru", "wavenet-nano", "lstm"], minutes=0.05, progress=False)
    assert trained == ["lstm"]
    assert sorted(r["model"] for r in rows) == ["gru", "lstm", "wavenet-nano"]
    assert len(json.loads((out / "leaderboard.json").read_text())["rows"]) == 3


def test_cli_refuses_unknown_model_before_training(cli, data: Path, tmp_path: Path) -> None:
    proc = cli("compare", str(data), "--models", "lstm,no-such-model", "--out", "b", cwd=tmp_path)
    assert_clean_failure(proc, "no-such-model")
    assert not (tmp_path / "b").exists()
