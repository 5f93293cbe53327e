"""The grey-box compressor: its smoother's gradient, the built-in compressor held exactly, a
setting recovered from audio, a knob map learned from a few settings, knob changes."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from fxclone.effects.builtin import COMPRESSOR
from fxclone.models import KnobSpec, create_model
from fxclone.models.compressor import _INIT, _SCALE, Compressor, smooth
from fxclone.streaming import StreamProcessor

SR = 8000
KNOBS = (KnobSpec("threshold", -60.0, 0.0, "dB"), KnobSpec("ratio", 1.0, 20.0))
DEFAULTS = {"knee": 6.0, "attack": 5.0, "release": 100.0, "makeup": 0.0}


def _material(seconds: float, seed: int) -> np.ndarray:
    """Noise whose level jumps every 50 ms between -40 and 0 dB: the gain moves both ways."""
    rng = np.random.default_rng(seed)
    hop = SR // 20
    steps = math.ceil(seconds * SR / hop)
    env = np.repeat(10.0 ** (rng.uniform(-40.0, 0.0, steps) / 20.0), hop)[: int(seconds * SR)]
    return (0.3 * env * rng.standard_normal(env.size)).astype(np.float32)[None]


def _esr(y: np.ndarray, target: np.ndarray) -> float:
    return float(((y - target) ** 2).sum() / (target**2).sum())


def _run(model: Compressor, x: np.ndarray, knobs: list[float] | None = None) -> np.ndarray:
    k = torch.tensor([knobs or []], dtype=torch.float32)
    with torch.no_grad():
        return model(torch.from_numpy(x)[None], k)[0].numpy()


def _set(model: Compressor, settings: dict[str, float]) -> None:
    """Put the given settings (built-in knob names) into a model without knobs."""
    times = [math.log(settings["attack"]), math.log(settings["release"])]
    values = [settings["threshold"], settings["ratio"], settings["knee"], *times]
    values.append(settings["makeup"])
    with torch.no_grad():
        model.bias.copy_((torch.tensor(values, dtype=torch.float64) - _INIT) / _SCALE)


def test_smoother_gradient_matches_finite_differences() -> None:
    g = torch.Generator().manual_seed(0)
    target = torch.randn(3, 50, dtype=torch.float64, generator=g, requires_grad=True)
    attack = torch.tensor([0.5, 0.7, 0.9], dtype=torch.float64, requires_grad=True)
    release = torch.tensor([0.95, 0.8, 0.99], dtype=torch.float64, requires_grad=True)
    y0 = torch.tensor([0.1, -0.3, 0.0], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(smooth, (target, attack, release, y0))


@pytest.mark.parametrize("setting", [
    {"threshold": -30.0, "ratio": 8.0, "knee": 6.0, "attack": 2.0, "release": 300.0, "makeup": 3.0},
    {"threshold": -12.0, "ratio": 2.5, "knee": 0.0, "attack": 0.3, "release": 20.0, "makeup": 0.0},
])  # fmt: skip
def test_holds_the_builtin_compressor_exactly(setting: dict[str, float]) -> None:
    """Given the built-in compressor's settings, the model's output is the effect's."""
    model = create_model("compressor", sample_rate=SR)
    assert isinstance(model, Compressor)
    _set(model, setting)
    x = _material(2.0, seed=1)
    assert _esr(_run(model, x), COMPRESSOR.process(x, SR, setting)) < 1e-9


def test_recovers_one_setting_from_audio() -> None:
    truth = {"threshold": -28.0, "ratio": 6.0, "knee": 6.0, "attack": 3.0, "release": 250.0,
             "makeup": 2.0}  # fmt: skip
    items = [(x, COMPRESSOR.process(x, SR, truth), np.zeros(0, np.float32))
             for x in (_material(1.0, seed) for seed in range(2))]  # fmt: skip
    model = create_model("compressor", sample_rate=SR, overrides={"memory_ms": 500.0})
    assert isinstance(model, Compressor)
    model.fit_closed_form(items)
    got = model.describe_settings(torch.zeros(1, 0))[0]
    assert abs(got["threshold_db"] - truth["threshold"]) < 0.01
    assert abs(got["ratio"] / truth["ratio"] - 1.0) < 1e-3
    assert abs(math.log(got["attack_ms"] / truth["attack"])) < 1e-3
    assert abs(math.log(got["release_ms"] / truth["release"])) < 1e-3
    x = _material(2.0, seed=9)  # new material: measured 1e-16 (float32 rounding)
    assert _esr(_run(model, x), COMPRESSOR.process(x, SR, truth)) < 1e-10


def test_learns_the_knob_map_from_a_few_settings() -> None:
    """Nine settings of threshold and ratio teach the map; a tenth, unseen, is followed."""
    grid = [(t, r) for t in (-45.0, -25.0, -5.0) for r in (1.5, 6.0, 16.0)]
    items = []
    for i, (t, r) in enumerate(grid):
        x = _material(1.0, seed=10 + i)
        wet = COMPRESSOR.process(x, SR, {**DEFAULTS, "threshold": t, "ratio": r})
        items.append((x, wet, np.array([KNOBS[0].normalise(t), KNOBS[1].normalise(r)], np.float32)))
    model = create_model("compressor", sample_rate=SR, knobs=KNOBS,
                         overrides={"memory_ms": 500.0})  # fmt: skip
    assert isinstance(model, Compressor)
    model.fit_closed_form(items)
    t, r = -33.0, 10.0
    x = _material(2.0, seed=99)
    wet = COMPRESSOR.process(x, SR, {**DEFAULTS, "threshold": t, "ratio": r})
    knobs = [KNOBS[0].normalise(t), KNOBS[1].normalise(r)]
    assert _esr(_run(model, x, knobs), wet) < 1e-10  # measured 1e-16
    got = model.describe_settings(torch.tensor([knobs]))[0]
    assert abs(got["threshold_db"] - t) < 0.01 and abs(got["ratio"] / r - 1.0) < 1e-3


def test_a_knob_change_moves_the_gain_smoothly() -> None:
    """Dropping the threshold 40 dB mid-stream: the gain falls through the attack, so no
    sample-to-sample step exceeds what the tone itself makes."""
    model = create_model("compressor", sample_rate=SR, knobs=KNOBS)
    assert isinstance(model, Compressor)
    with torch.no_grad():  # threshold and ratio follow their knobs exactly
        model.bias.copy_((torch.tensor([-30.0, 10.5, 6.0, math.log(5.0), math.log(100.0),
                                        0.0], dtype=torch.float64) - _INIT) / _SCALE)  # fmt: skip
        model.weight[0, 0], model.weight[1, 1] = 60.0 / _SCALE[0], 19.0 / _SCALE[1]
    t = np.arange(SR) / SR
    x = (0.5 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)[None]
    proc = StreamProcessor(model, {"threshold": 0.0, "ratio": 10.0})
    half = SR // 2
    first = proc.process(x[:, :half])
    proc.set_knobs({"threshold": -40.0})
    y = np.concatenate([first, proc.process(x[:, half:])], axis=1)
    steps = np.abs(np.diff(y[0]))
    assert steps[half - 5 : half + 200].max() <= 1.05 * np.abs(np.diff(x[0])).max()
    assert np.abs(y[0, -SR // 10 :]).max() < 0.5 * np.abs(y[0, : SR // 10]).max()  # it acted
