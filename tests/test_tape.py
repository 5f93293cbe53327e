"""The tape model: a wobbling delay in a saturating, band-limited feedback loop."""

from __future__ import annotations

import functools
import math

import numpy as np
import torch

from fxclone.effects.echoes import _FLUTTER, _TAPE_SEED, _WOW_HZ, _WOW_MS
from fxclone.effects.registry import get_effect
from fxclone.metrics import esr
from fxclone.models import create_model
from fxclone.models.tape import TapeModel
from fxclone.models.tape_fit import fit_tape
from fxclone.signals import TEST_MIX, synth_track
from noise import bursts, streamed

SR = 16000
KNOBS = {"time": 120.0, "feedback": 50.0, "drive": 12.0, "wow_flutter": 60.0, "mix": 40.0}


@functools.cache
def _pair(seconds: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Noise bursts to fit on (seed 1: broadband, so the playback head shows in every
    frame), music-like test material otherwise."""
    dry = bursts(seconds, seed, SR) if seed == 1 else synth_track(seed, SR, seconds, TEST_MIX)
    return dry, get_effect("tape_echo").process(dry[None], SR, KNOBS)[0]


def _run(model: TapeModel, dry: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model(torch.from_numpy(dry)[None, None])[0, 0].numpy()


def test_reproduces_the_builtin_tape_echo_and_streams_as_offline() -> None:
    model = create_model("tape", sample_rate=SR)
    assert isinstance(model, TapeModel)
    depth = KNOBS["wow_flutter"] / 100.0 * SR / 1000.0  # samples per ms of wobble
    with torch.no_grad():  # the built-in tape echo's values (fxclone.effects.echoes)
        model.delay.fill_(KNOBS["time"] * SR / 1000.0)
        model.rates.copy_(torch.tensor([_WOW_HZ] + [hz for hz, _ in _FLUTTER]))
        model.depths.copy_(torch.tensor([_WOW_MS] + [ms for _, ms in _FLUTTER]) * depth)
        phases = np.random.default_rng(_TAPE_SEED).uniform(0.0, 2.0 * math.pi, 3)
        model.phases.copy_(torch.from_numpy(phases))
        model.feedback.fill_(KNOBS["feedback"] / 100.0)
        model.log_drive.fill_(KNOBS["drive"] / 20.0 * math.log(10.0))
        model.loop_hz.copy_(torch.tensor([100.0, 4000.0]))
        model.dry_gain.fill_(1.0 - KNOBS["mix"] / 100.0)
        model.wet_gain.fill_(KNOBS["mix"] / 100.0)
    dry, wet = _pair(4.0, 2)
    offline = _run(model, dry)
    np.testing.assert_allclose(offline, wet, atol=1e-6)
    pieces = streamed(model, dry, [1, 37, 64, 5, 2000, 3, 700, 16000, 64, 45134])
    np.testing.assert_allclose(pieces, offline[: pieces.size], atol=1e-7)


def test_fit_finds_the_delay_wobble_and_loop() -> None:
    """From 12 s of noise bursts (the loop on 3 s): delay within half a sample, the wow's
    rate within 0.05 % and depth within 10 %, feedback within 0.02; on other material an
    ESR a tenth of the same model's with its wobble removed (a fixed delay)."""
    model = create_model("tape", sample_rate=SR, overrides={"fit_seconds": 3.0})
    assert isinstance(model, TapeModel)
    fit_tape(model, *_pair(12.0, 1))
    assert abs(float(model.delay) - KNOBS["time"] * SR / 1000.0) < 0.5
    wow = int(torch.argmax(model.depths))
    assert abs(float(model.rates[wow]) / _WOW_HZ - 1.0) < 5e-4
    expected = _WOW_MS * KNOBS["wow_flutter"] / 100.0 * SR / 1000.0
    assert abs(float(model.depths[wow]) / expected - 1.0) < 0.1
    assert abs(float(model.feedback) - KNOBS["feedback"] / 100.0) < 0.02
    dry, wet = _pair(6.0, 2)
    error = esr(wet[None], _run(model, dry)[None])
    with torch.no_grad():
        model.depths.zero_()
    assert error < 0.1 * esr(wet[None], _run(model, dry)[None])
