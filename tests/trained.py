"""Models with weights that are not at initialisation, for tests that compare two code paths."""

from __future__ import annotations

import functools

import torch

from fxclone.models import PRESETS, KnobSpec, create_model
from fxclone.models.base import EffectModel

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
