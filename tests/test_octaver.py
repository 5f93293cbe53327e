"""The octaver model: a flip-flop divider and a rectifier whose circuit values are fitted."""

from __future__ import annotations

import functools

import numpy as np
import torch

from fxclone.effects.registry import get_effect
from fxclone.metrics import mrstft
from fxclone.models import create_model
from fxclone.models.octaver import OctaverModel
from fxclone.models.octaver_fit import fit_octaver
from fxclone.signals import TEST_MIX, TRAIN_MIX, synth_track
from noise import streamed

SR = 16000
KNOBS = {"down": 40.0, "up": 25.0, "dry": 40.0}


@functools.cache
def _pair(seconds: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    dry = synth_track(seed, SR, seconds, TRAIN_MIX if seed == 1 else TEST_MIX)
    return dry, get_effect("octave").process(dry[None], SR, KNOBS)[0]


def _run(model: OctaverModel, dry: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model(torch.from_numpy(dry)[None, None])[0, 0].numpy()


def _builtin_circuit() -> OctaverModel:
    model = create_model("octaver", sample_rate=SR)
    assert isinstance(model, OctaverModel)
    with torch.no_grad():  # the built-in octaver's values (fxclone.effects.pitch)
        model.track_hz.copy_(torch.tensor([40.0, 600.0], dtype=torch.float64))
        model.threshold.fill_(10.0 ** (-50.0 / 20.0))
        model.dc_hz.fill_(20.0)
        model.dry_gain.fill_(0.4)
        model.down_gain.fill_(0.4)
        model.up_gain.fill_(0.25)
    return model


def test_reproduces_the_builtin_octaver_and_streams_as_offline() -> None:
    model = _builtin_circuit()
    dry, wet = _pair(6.0, 2)
    offline = _run(model, dry)
    np.testing.assert_allclose(offline, wet, atol=2e-6)
    pieces = streamed(model, dry, [1, 37, 64, 5, 2000, 3, 700, 16000, 64, 80000])
    np.testing.assert_array_equal(pieces, offline[: pieces.size])


def test_fit_finds_the_circuit() -> None:
    """From 12 s of training material: corners within 1 %, gains within 1e-3, and a test
    clip's spectrum (other material) within 5 % of the dry signal's distance."""
    model = create_model("octaver", sample_rate=SR, overrides={"fit_seconds": 12.0})
    assert isinstance(model, OctaverModel)
    fit_octaver(model, *_pair(12.0, 1))
    np.testing.assert_allclose(model.track_hz.numpy(), [40.0, 600.0], rtol=0.01)
    np.testing.assert_allclose(model.dc_hz.item(), 20.0, rtol=0.01)
    gains = [model.dry_gain.item(), model.down_gain.item(), model.up_gain.item()]
    np.testing.assert_allclose(gains, [0.4, 0.4, 0.25], atol=1e-3)
    dry, wet = _pair(6.0, 2)
    distance = mrstft(wet[None], _run(model, dry)[None], SR)
    assert distance < 0.05 * mrstft(wet[None], dry[None], SR)
