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


@pytest.mark.parametrize("name", ["mccool-mlp", "kth-gru", "gru"])
def test_partial_scores_are_the_full_pass_scores_on_a_part(data: Path, name: str) -> None:
    """Window models are scored on every k-th output sample, exactly the full pass's outputs
    there (look-ahead included); others on the first seconds of each item."""
    import numpy as np
    import torch

    from fxclone.compare import partial_scores
    from fxclone.dataset import load_dataset, load_pairs
    from fxclone.metrics import esr
    from fxclone.models.registry import create_model, get_preset
    from fxclone.streaming import process_array

    torch.manual_seed(0)
    model = create_model(name, sample_rate=16000, overrides=get_preset(name).tiny).eval()
    test = load_pairs(load_dataset(data), "test")
    target = np.concatenate([p.wet for p in test], 1)
    full = np.concatenate([process_array(model, p.dry) for p in test], 1)
    whole = partial_scores(model, data, 1.0)
    assert whole["esr"] == pytest.approx(esr(target, full), rel=1e-4)
    part = partial_scores(model, data, 0.1)
    if name == "gru":  # a stream model: the first second (at least) of the 1-s test item
        assert part["scored_on"] == "the first 1.0 s of the test split"
        assert part["esr"] == pytest.approx(whole["esr"], rel=1e-4)
    else:
        assert part["scored_on"] == "one sample in 10 of the test split"
        picks = np.arange(5, target.shape[1], 10)
        assert part["esr"] == pytest.approx(esr(target[:, picks], full[:, picks]), rel=1e-4)
        assert part["esr"] != pytest.approx(whole["esr"], rel=1e-6)


def test_slow_models_are_trained_and_scored_on_part_of_the_split(data: Path, tmp_path: Path):
    rows = compare(data, tmp_path, ["wavenet-nano"], minutes=0.02, max_eval_minutes=1e-9,
                   progress=False)  # fmt: skip
    assert rows[0]["scored_on"] == "the first 1.0 s of the test split"
    assert math.isfinite(rows[0]["test_esr"]) and rows[0]["rtf_64"] > 1
    table = (tmp_path / "leaderboard.md").read_text()
    assert "(on the first 1.0 s of the test split)" in table
