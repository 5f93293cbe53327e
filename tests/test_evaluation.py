"""evaluate: one model gives flat metrics; several give a comparison and an HTML report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from fxclone.dataset import GenerateConfig, generate_dataset
from fxclone.journey import evaluate
from fxclone.modelfile import save_model
from fxclone.models import create_model
from fxclone.rendering import render_dataset

SR = 16000


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path]]:
    root = tmp_path_factory.mktemp("eval")
    data = root / "data"
    generate_dataset(
        data,
        GenerateConfig(
            sample_rate=SR, train_seconds=4, val_seconds=1, test_seconds=2, segment_seconds=1
        ),
    )
    render_dataset(data, "lowpass", {"cutoff": 1000.0})
    paths = []
    for name in ("nano", "lstm"):
        torch.manual_seed(0)
        model = create_model("wavenet-nano" if name == "nano" else "lstm", sample_rate=SR)
        paths.append(save_model(root / f"{name}.safetensors", model))
    return data, paths


def test_single_model_metrics(setup, tmp_path) -> None:
    data, paths = setup
    metrics = evaluate(paths[1], data, tmp_path)
    for key in ("esr", "esr_pre_emph", "mae", "mrstft", "esr_linear", "esr_static"):
        assert key in metrics and metrics[key] >= 0
    # The linear baseline fits a linear low-pass almost exactly; the static one cannot.
    assert metrics["esr_linear"] < 0.01 < metrics["esr_static"]
    assert json.loads((tmp_path / "metrics.json").read_text())["esr"] == metrics["esr"]
    for name in ("mel_spectrograms.png", "waveforms.png", "test_model.wav"):
        assert (tmp_path / name).stat().st_size > 1000


def test_several_models_and_report(setup, tmp_path) -> None:
    data, paths = setup
    metrics = evaluate(paths, data, tmp_path, report=True)
    assert set(metrics["models"]) == {"nano", "lstm"}
    for m in metrics["models"].values():
        assert {"esr", "mel_distance", "mfcc_cosine_distance", "null_residual_db"} <= set(m)
    html = (tmp_path / "report.html").read_text()
    assert html.count("<audio") == 4  # dry, target, two models
    assert "http://" not in html and "https://" not in html
    assert (tmp_path / "measurements.png").stat().st_size > 1000
