"""``fxclone sweep``: unseen knob settings chosen, rendered and scored."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from cli_harness import assert_clean_failure
from fxclone.dataset import GenerateConfig, generate_dataset
from fxclone.errors import FxcloneError
from fxclone.journey import render
from fxclone.metrics import esr
from fxclone.modelfile import save_model
from fxclone.models import KnobSpec, create_model
from fxclone.streaming import process_array
from fxclone.sweep import choose_settings, denormalise, heatmaps, sweep

SR = 16000
SPECS = (KnobSpec("drive", 0.0, 40.0, "dB"), KnobSpec("tone", 500.0, 8000.0, "Hz", True),
         KnobSpec("level", -24.0, 6.0, "dB"))  # fmt: skip


def test_chosen_settings_keep_away_from_training_and_reach_the_extremes() -> None:
    training = np.random.default_rng(0).random((40, 3))
    chosen = choose_settings(SPECS, training, count=20, min_distance=0.1, levels=5, seed=1)
    assert len(chosen) == 20
    points = np.array([u for u, _ in chosen])
    nearest = np.sqrt(((points[:, None] - training[None]) ** 2).sum(-1)).min(1)
    assert nearest.min() >= 0.1
    np.testing.assert_allclose(nearest, [d for _, d in chosen])
    for k in range(3):
        assert points[:, k].min() == 0.0 and points[:, k].max() == 1.0
    again = choose_settings(SPECS, training, count=20, min_distance=0.1, levels=5, seed=1)
    assert all(np.array_equal(a, b) for (a, _), (b, _) in zip(chosen, again, strict=True))
    assert denormalise(SPECS[1], 0.5) == pytest.approx(2000.0)  # geometric middle
    assert denormalise(SPECS[1], 0.0) == 500.0  # never rounded out of range
    with pytest.raises(FxcloneError, match="min-distance"):
        choose_settings(SPECS, training, min_distance=5.0)


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("sweep")
    data = folder / "data"
    generate_dataset(data, GenerateConfig(sample_rate=SR, seed=2, train_seconds=8.0,
                                          val_seconds=2.0, test_seconds=2.0))  # fmt: skip
    render(data, "distortion", {"tone": 3000.0}, ranges={"drive": (0.0, 40.0),
           "level": (-24.0, 6.0)}, progress=None)  # fmt: skip
    torch.manual_seed(0)
    knobs = (SPECS[0], SPECS[2])
    model = create_model("wavenet-nano", sample_rate=SR, knobs=knobs).eval()
    return save_model(folder / "model.safetensors", model), data


def test_sweep_scores_match_an_independent_computation(trained, tmp_path) -> None:
    from fxclone.effects import get_effect
    from fxclone.modelfile import load_model

    model = load_model(trained[0]).model
    rows, points = sweep(model, trained[1], count=6, progress=None)
    assert points.shape == (5, 2) and len(rows) == 6  # 4 training and 1 validation segments
    from fxclone.dataset import load_dataset, read_item

    info = load_dataset(trained[1])
    dry = [read_item(info.path / i["dry"], SR)[0] for i in info.split_items("test")]
    effect = get_effect("distortion")
    for row in rows[:2]:
        knobs = {"tone": 3000.0, **row.setting}
        target = np.concatenate([effect.render(d, SR, knobs) for d in dry], axis=1)
        estimate = np.concatenate([process_array(model, d, row.setting) for d in dry], axis=1)
        assert row.esr == pytest.approx(esr(target, estimate), rel=1e-6)
    images = heatmaps(rows, model.knobs, tmp_path, points)
    assert [p.name for p in images] == ["heatmap_drive_level.png"]
    assert images[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # a model exact at some settings (ESR 0) or at all of them still gets its heatmap
    for n, scores in enumerate(([0.0] + [r.esr for r in rows[1:]], [0.0] * len(rows))):
        exact = [dataclasses.replace(r, esr=e) for r, e in zip(rows, scores, strict=True)]
        (tmp_path / f"exact{n}").mkdir()
        again = heatmaps(exact, model.knobs, tmp_path / f"exact{n}", points)
        assert again[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_cli_writes_the_table_and_refuses_a_model_without_knobs(cli, trained, tmp_path) -> None:
    model_path, data = trained
    proc = cli("sweep", str(model_path), str(data), "--out", "sw", "--points", "4",
               cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    doc = json.loads((tmp_path / "sw" / "sweep.json").read_text())
    assert doc["settings"] == 4 and doc["worst_esr"] >= doc["median_esr"] >= doc["best_esr"]
    assert (tmp_path / "sw" / "sweep.md").read_text().count("\n|") >= 5
    plain = save_model(tmp_path / "plain.safetensors", create_model("wavenet-nano", sample_rate=SR))
    proc = cli("sweep", str(plain), str(data), "--out", "x", cwd=tmp_path)
    assert_clean_failure(proc, "knob-conditioned")
