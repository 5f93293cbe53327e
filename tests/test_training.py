"""Training: seeded determinism, resume from checkpoints, and a loss that actually falls."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from fxclone.errors import FxcloneError
from fxclone.journey import train
from fxclone.losses import ESRLoss, TrainingLoss
from fxclone.training import TrainConfig
from trained import lowpass_dataset

TINY = {
    "model": "wavenet-nano",
    "batch_size": 4,
    "segment_samples": 2048,
    "windows_per_epoch": 16,
    "max_epochs": 2,
    "seed": 3,
}


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return lowpass_dataset(tmp_path_factory.mktemp("train") / "data")


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return {k: v for k, v in load_file(str(path)).items() if not k.startswith("__")}


def test_same_command_same_weights(data: Path, tmp_path: Path) -> None:
    a = train(data, tmp_path / "a.safetensors", TINY, progress=False)
    b = train(data, tmp_path / "b.safetensors", TINY, progress=False)
    wa, wb = _weights(tmp_path / "a.safetensors"), _weights(tmp_path / "b.safetensors")
    assert wa.keys() == wb.keys()
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert a["best_val_esr"] == b["best_val_esr"]
    c = train(data, tmp_path / "c.safetensors", {**TINY, "seed": 4}, progress=False)
    wc = _weights(tmp_path / "c.safetensors")
    assert any(not torch.equal(wa[k], wc[k]) for k in wa)
    assert np.isfinite(c["best_val_esr"])


def test_training_reduces_validation_error(data: Path, tmp_path: Path) -> None:
    summary = train(
        data,
        tmp_path / "m.safetensors",
        {**TINY, "model": "lstm", "windows_per_epoch": 64, "max_epochs": 15, "learning_rate": 8e-3},
        progress=False,
    )
    # The dry signal alone scores ESR ~1 against this low-pass; a learned model far less.
    assert summary["best_val_esr"] < 0.05


def test_resume_continues_from_checkpoint(data: Path, tmp_path: Path) -> None:
    out = tmp_path / "r.safetensors"
    first = train(data, out, {**TINY, "max_epochs": 1}, progress=False)
    assert not first["resumed"] and first["epochs"] == 1
    assert (tmp_path / "r.safetensors.run" / "checkpoints" / "last.ckpt").exists()
    with pytest.raises(FxcloneError, match="--fresh"):
        train(data, out, {**TINY, "max_epochs": 2, "batch_size": 2}, progress=False)
    # Stopping rules may change between sittings: train one more epoch from the checkpoint.
    second = train(data, out, {**TINY, "max_epochs": 2}, progress=False)
    assert second["resumed"] and second["epochs"] == 2


def test_unknown_config_key(data: Path, tmp_path: Path) -> None:
    with pytest.raises(FxcloneError, match="learning_rat"):
        TrainConfig.from_dict({"learning_rat": 1e-3})


def test_losses_known_values() -> None:
    t = torch.randn(2, 1, 1000)
    assert float(ESRLoss()(0.5 * t, t)) == pytest.approx(0.25, rel=1e-5)
    assert float(ESRLoss(0.95)(t, t)) == 0.0
    both = TrainingLoss(esr_weight=1.0, pre_emph_weight=1.0)
    assert float(both(0.5 * t, t)) == pytest.approx(0.5, rel=1e-4)


def test_per_window_esr_weighs_quiet_windows_like_loud_ones() -> None:
    torch.manual_seed(0)
    t = torch.randn(2, 1, 1000)
    t[1] *= 0.01  # a quiet setting, 40 dB down
    estimate = t.clone()
    estimate[1] = 0.0  # the quiet window entirely wrong, the loud one exact
    pooled = float(ESRLoss()(estimate, t))
    assert pooled == pytest.approx(1e-4, rel=0.05)  # the loud window's energy hides the error
    floor = 1e-2 * (1 + 1e-4) / 2  # 20 dB under the mean energy, relative to the loud window
    per_window = float(ESRLoss(per_window=True)(estimate, t))
    assert per_window == pytest.approx(0.5 * 1e-4 / (1e-4 + floor), rel=0.05)
    assert per_window > 50 * pooled


@pytest.mark.parametrize(
    ("knobs", "setting", "expected"),
    [(0, None, False), (1, None, False), (1, True, True), (0, True, True)],
)
def test_per_window_esr_only_when_asked(knobs: int, setting: bool | None, expected: bool) -> None:
    from fxclone.models.base import KnobSpec, Stage
    from fxclone.models.registry import create_model
    from fxclone.stage_module import lightning_module

    specs = [KnobSpec("drive", 0.0, 1.0)] * knobs
    model = create_model("wavenet-nano", sample_rate=16000, knobs=specs)
    config = TrainConfig(model="wavenet-nano", esr_per_window=setting)
    module = lightning_module(model, config, Stage(), 0, [])
    assert module.loss.esr.per_window is expected and module.loss.esr_pre.per_window is expected
