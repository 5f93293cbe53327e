"""Models with weights that are not at initialisation, for tests that compare two code paths."""

from __future__ import annotations

import functools
from pathlib import Path

import torch

from fxclone.dataset import GenerateConfig, generate_dataset
from fxclone.models import PRESETS, KnobSpec, create_model
from fxclone.models.base import EffectModel
from fxclone.rendering import render_dataset

SR = 48000
KNOBS = (KnobSpec("drive", 0.0, 40.0, "dB"), KnobSpec("tone", 500.0, 8000.0, "Hz", log_scale=True))


@functools.cache
def briefly_trained(name: str, n_knobs: int, full: bool = False) -> EffectModel:
    """A preset (at 48 kHz, with the first ``n_knobs`` of KNOBS; its tiny test size unless
    ``full``) after three Adam steps on a toy saturation task whose level depends on the
    knobs, so every weight has moved."""
    torch.manual_seed(0)
    tiny = None if full else dict(PRESETS[name].tiny)
    model = create_model(name, sample_rate=SR, knobs=KNOBS[:n_knobs], overrides=tiny)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    x = 0.5 * torch.randn(2, 1, 2048 if model.family == "wavenet" else 256)
    knobs = torch.rand(2, n_knobs)
    target = torch.tanh(3 * x) * (1 + knobs.sum(1, keepdim=True)[:, :, None])
    for _ in range(3):
        loss = torch.mean((model(x, knobs) - target) ** 2)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


def lowpass_dataset(root: Path) -> Path:
    """A small rendered dataset (16 kHz, 4 s train, 1 s validation and test, an 800 Hz
    low-pass) for tests that train."""
    generate_dataset(
        root,
        GenerateConfig(
            sample_rate=16000, train_seconds=4, val_seconds=1, test_seconds=1, segment_seconds=1
        ),
    )
    render_dataset(root, "lowpass", {"cutoff": 800.0})
    return root
