"""The knob-conditioned Wiener-Hammerstein model: its recursions' gradients and speed, streaming
under knob changes, and one model following a synthetic pedal's knobs at settings it never saw."""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.signal import lfilter

from fxclone.models import KnobSpec, create_model
from fxclone.models.hammerstein import HammersteinModel
from fxclone.models.hammerstein_filters import FirstOrderRecursion, one_pole, recursion, scan
from fxclone.training import fit, train_config

SR = 48000


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_recursion_gradients_and_values() -> None:
    g = torch.Generator().manual_seed(0)
    v = torch.randn(3, 40, dtype=torch.float64, generator=g, requires_grad=True)
    a = torch.tensor([-0.5, 0.3, 0.97], dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(3, dtype=torch.float64, generator=g, requires_grad=True)
    assert torch.autograd.gradcheck(FirstOrderRecursion.apply, (v, a, h0))
    x = torch.randn(2, 30, dtype=torch.float64, generator=g, requires_grad=True)
    b = torch.tensor([0.2, 0.9], dtype=torch.float64, requires_grad=True)
    s = torch.randn(2, dtype=torch.float64, generator=g, requires_grad=True)
    assert torch.autograd.gradcheck(one_pole, (x, b, s))
    # the values: a one-pole from rest is scipy's lfilter([1 - a], [1, -a])
    y = one_pole(x, b, torch.zeros(2, dtype=torch.float64)).detach().numpy()
    for i, c in enumerate(b.tolist()):
        ref = lfilter([1 - c], [1, -c], x[i].detach().numpy())
        assert np.max(np.abs(y[i] - ref)) < 1e-12


def test_whole_model_gradients() -> None:
    """Every parameter's gradient through the whole model, against finite differences."""
    model = _knob_model(pre_taps=3, post_taps=3, dc_hz=50.0, hidden=2).double()
    g = torch.Generator().manual_seed(1)
    x = 0.3 * torch.randn(2, 1, 40, dtype=torch.float64, generator=g)
    knobs = torch.rand(2, 2, dtype=torch.float64, generator=g)
    names = [n for n, _ in model.named_parameters()]

    def run(*params: torch.Tensor) -> torch.Tensor:
        return torch.func.functional_call(model, dict(zip(names, params, strict=True)), (x, knobs))

    params = tuple(p.detach().clone().requires_grad_() for p in model.parameters())
    assert torch.autograd.gradcheck(run, params)


def test_recursion_is_fast() -> None:
    """Forward and backward of three recursions over a batch of 8 x 16,384: a few ms."""
    x = torch.randn(8, 16384, requires_grad=True)
    a = torch.full((8,), 0.99, requires_grad=True)
    zero = torch.zeros(8)
    best = math.inf
    for _ in range(4):
        t = time.perf_counter()
        y = one_pole(one_pole(one_pole(x, a, zero), a, zero), a, zero)
        y.square().sum().backward()
        best = min(best, time.perf_counter() - t)
    assert best < 0.025  # measured 3.8 ms on one core


def test_scan_equals_the_recursion() -> None:
    """The traceable prefix scan (the ONNX graph's recursion) against the compiled loop: no
    filtering (a = 0), a fast and a near-DC pole, single samples and 100k-sample blocks."""
    torch.manual_seed(1)
    a = torch.tensor([0.0, 0.5, 0.9999], dtype=torch.float64)
    h0 = torch.randn(3, dtype=torch.float64)
    for n in (1, 2, 3, 1000, 100_000):
        v = torch.randn(3, n, dtype=torch.float64)
        ref = recursion(v, a, h0)
        assert float((scan(v, a, h0) - ref).abs().max()) < 1e-9 * float(ref.abs().max())


def _numpy_reference(model: HammersteinModel, x: np.ndarray, blocks) -> np.ndarray:
    """The model's equations sample by sample in float64, knobs switching at block starts."""
    c, kinds = model.config, model.kinds
    pre, post = (t.detach().double().numpy() for t in model.fir_taps())
    tb = iter(model.tanh_bias.detach().double().numpy().tolist() * len(blocks))
    xs = [0.0] * (c.pre_taps - 1) + list(x)
    lp, dc, vs, out = np.zeros(c.post_sections), 0.0, [0.0] * (c.post_taps - 1), []
    for start, stop, knobs in blocks:
        with torch.no_grad():
            p = model.knob_map(torch.tensor([knobs])).double()[0].numpy()
        gin, beta, w, i = p[0], p[1], p[2 : 3 + len(kinds)], 3 + len(kinds)
        if c.lowpass_taper == "step":  # log(1 - a), at most 0
            poles = 1 - np.exp(np.minimum(p[i : i + c.post_sections], 0.0))
        else:  # log f_c
            poles = np.exp(-2 * np.pi / SR * np.exp(p[i : i + c.post_sections]))
        i += c.post_sections
        r = math.exp(-2 * np.pi / SR * (SR / (np.pi * c.context_samples) + math.exp(p[i])))
        offsets = [next(tb) + beta if k == "tanh" else beta for k in kinds]
        for n in range(start, stop):
            u = math.exp(gin) * np.dot(pre, xs[n + c.pre_taps - 1 : n - 1 if n else None : -1])
            curves = [u]
            for kind, b in zip(kinds, offsets, strict=True):
                if kind == "tanh":
                    curves.append(np.tanh(u + b) - np.tanh(b) - u)
                elif kind == "ssqrt":
                    curves.append(u / np.sqrt(abs(u) + 1e-8) - u)
                else:
                    cubic = [min(max(t, -1), 1) for t in (u + b, b)]
                    curves.append(cubic[0] - cubic[0] ** 3 / 3 - cubic[1] + cubic[1] ** 3 / 3 - u)
            v = float(np.dot(w, curves))
            for s in range(c.post_sections):
                lp[s] = poles[s] * lp[s] + (1 - poles[s]) * v
                v = lp[s]
            dc = r * dc + (1 - r) * v
            vs.append(v - p[i + 1] * dc)
            out.append(math.exp(p[-1] - gin) * np.dot(post, vs[: -c.post_taps - 1 : -1]))
    return np.array(out)


def _knob_model(channels: int = 1, **overrides) -> HammersteinModel:
    """A conditioned model (two knobs) with every parameter moved off its starting value."""
    torch.manual_seed(3)
    knobs = (KnobSpec("drive", 0.0, 1.0), KnobSpec("tone", 500.0, 8000.0, "Hz", log_scale=True))
    model = create_model(
        "hammerstein", sample_rate=SR, knobs=knobs, channels=channels, overrides=overrides
    )
    assert isinstance(model, HammersteinModel)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.2 * torch.randn_like(p))
    return model.eval()


@torch.no_grad()
@pytest.mark.parametrize("taper", ["hz", "step"])
def test_streaming_follows_knob_changes_exactly(taper: str) -> None:
    """Knobs switching between blocks: the stream equals a float64 sample-by-sample reference
    (every filter carries its state across the change), however the blocks are cut."""
    curves = ("tanh", "ssqrt", "cubic")
    model = _knob_model(
        pre_taps=8, post_taps=6, dc_hz=30.0, curves=curves, hidden=3, lowpass_taper=taper
    )
    rng = np.random.default_rng(0)
    x = 0.5 * rng.standard_normal(1500)
    cuts = [0, 400, 401, 405, 900, 1500]
    settings = rng.random((len(cuts) - 1, 2)).tolist()
    blocks = [(a, b, k) for a, b, k in zip(cuts[:-1], cuts[1:], settings, strict=True)]
    ref = _numpy_reference(model, x, blocks)

    def stream(sizes: list[int]) -> np.ndarray:
        state, out = model.init_state(1), []
        for start, stop, knobs in blocks:
            i = start
            while i < stop:
                j = min(stop, i + sizes[len(out) % len(sizes)])
                xt = torch.tensor(x[i:j], dtype=torch.float32)[None, None]
                y, state = model.step(xt, torch.tensor([knobs]), state)
                out.append(y[0, 0].numpy())
                i = j
        return np.concatenate(out)

    whole, small = stream([10_000]), stream([1, 7, 64, 3])
    assert np.max(np.abs(whole - ref)) < 2e-5 * np.max(np.abs(ref))
    assert np.max(np.abs(whole - small)) < 1e-5 * np.max(np.abs(ref))
    # the knob changes matter: the first block's setting throughout gives another output
    xt = torch.tensor(x, dtype=torch.float32)[None, None]
    fixed = model(xt, torch.tensor([settings[0]]))[0, 0].numpy()
    assert np.max(np.abs(fixed[:400] - ref[:400])) < 2e-5 * np.max(np.abs(ref))
    assert np.max(np.abs(fixed[400:] - ref[400:])) > 0.1 * np.max(np.abs(ref))


@torch.no_grad()
def test_channels_are_independent_streams() -> None:
    """A stereo model runs each channel as the mono model would, with the same parameters."""
    stereo = _knob_model(channels=2)
    mono = _knob_model(channels=1)
    x = 0.3 * torch.randn(2, 2, 3000)
    knobs = torch.rand(2, 2)
    both = stereo(x, knobs)
    for ch in range(2):
        alone = mono(x[:, ch : ch + 1], knobs)
        assert float((both[:, ch : ch + 1] - alone).abs().max()) < 1e-6


def _material(seconds: float, seed: int) -> np.ndarray:
    """Guitar-like test audio: decaying harmonic notes (80-640 Hz) and bursts of dark noise,
    one event every 0.1-0.3 s at random levels."""
    rng = np.random.default_rng(seed)
    x = np.zeros(int(seconds * SR))
    pos = 0
    while pos < len(x):
        t = np.arange(min(int(rng.uniform(0.1, 0.3) * SR), len(x) - pos)) / SR
        if rng.random() < 0.5:
            f0 = 80 * 2 ** rng.uniform(0, 3)
            partials = [
                rng.uniform(0.2, 1) / h * np.sin(2 * np.pi * f0 * h * t + rng.uniform(0, 6))
                for h in range(1, 6)
            ]
            event = rng.uniform(0.07, 0.4) * sum(partials) * np.exp(-t * rng.uniform(2, 10))
        else:
            noise = lfilter([1], [1, -0.9], rng.standard_normal(len(t)))
            event = 0.15 * rng.uniform(0.1, 1) * noise
        x[pos : pos + len(t)] = event
        pos += len(t)
    return x


def _train(knobs, render, settings, tmp_path: Path, **overrides) -> HammersteinModel:
    """The preset trained by the ordinary training loop on one second per knob setting (600
    steps on windows shorter than its defaults, with a shorter warm-up: a short test)."""
    items = []
    for i, values in enumerate(settings):
        x = _material(1.0, i)
        k = [spec.normalise(v) for spec, v in zip(knobs, values, strict=True)]
        y = render(x, *values)
        items.append((x[None].astype(np.float32), y[None].astype(np.float32), np.float32(k)))
    val = [(d[:, :12000], w[:, :12000], k) for d, w, k in items[:3]]
    torch.manual_seed(0)
    overrides = {"context_samples": 1024, **overrides}
    model = create_model("hammerstein", sample_rate=SR, knobs=knobs, overrides=overrides)
    # Adam alone (the preset's polish is tested in test_polish.py)
    short = {"segment_samples": 2048, "windows_per_epoch": 800, "max_epochs": 6, "polish": 0.0}
    config = train_config({"model": "hammerstein", **short, "lr_decay": 0.5, "patience": 100})
    fit(model, items, val, config, tmp_path / "run", progress=False)
    assert isinstance(model, HammersteinModel)
    return model


def _esr(model, knobs, render, values, knobs_at=None, seed: int = 100) -> float:
    """ESR on new audio rendered at ``values``, with the model's knobs at ``values`` (or at
    ``knobs_at``)."""
    x = _material(1.0, seed)
    target = render(x, *values)
    at = values if knobs_at is None else knobs_at
    k = torch.tensor([[spec.normalise(v) for spec, v in zip(knobs, at, strict=True)]])
    with torch.no_grad():
        y = model(torch.tensor(x, dtype=torch.float32)[None, None], k.float())[0, 0].numpy()
    return float(np.sum((y - target) ** 2) / np.sum(target**2))


def mda_overdrive(x: np.ndarray, drive: float, muffle: float) -> np.ndarray:
    """mda Overdrive: ``u = a + drive (sign(a) sqrt|a| - a)`` into the one-pole
    ``fa += f (u - fa)``, ``f = 10^(-1.6 muffle)`` (from 1, no filtering, to 0.025: a corner
    at 190 Hz), times a fixed gain."""
    f = 10 ** (-1.6 * muffle)
    u = x + drive * (np.sign(x) * np.sqrt(np.abs(x)) - x)
    return 0.63 * lfilter([f], [1, -(1 - f)], u)


MDA_KNOBS = (KnobSpec("drive", 0.0, 1.0), KnobSpec("muffle", 0.0, 1.0))
MDA_SETTINGS = [(d, m) for d in (0.0, 0.3, 1.0) for m in (0.0, 0.2, 0.6, 1.0)]


@torch.no_grad()
def test_step_taper_holds_mda_overdrive() -> None:
    """On the ``step`` taper the design contains mda Overdrive at every setting: its drive
    blend is affine in the curve weights and its muffle is ``log f`` affine, ``f = 1``
    included (on ``hz`` that corner is infinite). Set by hand, the model matches the plugin
    to float32 rounding."""
    cfg = {"curves": ("ssqrt",), "post_sections": 1, "dc_hz": 0.0, "pre_taps": 1,
           "post_taps": 1, "lowpass_taper": "step"}  # fmt: skip
    model = create_model("hammerstein", sample_rate=SR, knobs=MDA_KNOBS, overrides=cfg)
    assert isinstance(model, HammersteinModel)
    m = model.knob_map
    # values: gin, beta, w_0, w_ssqrt, log f, gout; each = scale * (base + W (k - 1/2))
    target_base = torch.tensor([0.0, 0.0, 1.0, 0.5, -0.8 * math.log(10), math.log(0.63)])
    target_weight = torch.zeros(6, 2)
    target_weight[3, 0] = 1.0  # w_ssqrt = drive
    target_weight[4, 1] = -1.6 * math.log(10)  # log f = -1.6 ln(10) muffle
    m.base.copy_(target_base / m.scale)
    assert m.weight is not None
    m.weight.copy_(target_weight / m.scale[:, None])
    esr = [_esr(model, MDA_KNOBS, mda_overdrive, s, seed=7) for s in MDA_SETTINGS]
    assert max(esr) < 1e-11  # measured 3.9e-13 (float32 rounding)


def test_one_model_follows_mda_overdrive_knobs(tmp_path: Path) -> None:
    """Trained on a 4 x 3 grid of (drive, muffle) over the knobs' whole range (the step
    taper), scored on new audio at settings between."""
    grid = [(d, m) for d in (0.0, 1 / 3, 2 / 3, 1.0) for m in (0.0, 0.5, 1.0)]
    model = _train(MDA_KNOBS, mda_overdrive, grid, tmp_path, curves=("tanh", "ssqrt"),
                   lowpass_taper="step")  # fmt: skip
    unseen = [(0.5, 0.25), (0.15, 0.75), (0.85, 0.6)]
    esr = [_esr(model, MDA_KNOBS, mda_overdrive, s) for s in unseen]
    wrong = [_esr(model, MDA_KNOBS, mda_overdrive, s, knobs_at=(0.5, 0.5)) for s in unseen]
    assert max(esr) < 3e-3  # measured 1.3e-3 (1.2e-4, 9.9e-5, 1.3e-3)
    assert min(wrong) > 20 * max(esr)  # measured 0.038 with the knobs at the centre


def gain_tone_level(x: np.ndarray, gain_db: float, tone_hz: float, level_db: float) -> np.ndarray:
    """A built-in style drive: gain in dB, an asymmetric tanh clipper, a one-pole low-pass at
    the tone knob's corner, a 20-Hz coupling high-pass, and the level in dB."""
    v = np.tanh(10 ** (gain_db / 20) * x + 0.2) - np.tanh(0.2)
    a = np.exp(-2 * np.pi * tone_hz / SR)
    v = lfilter([1 - a], [1, -a], v)
    r = np.exp(-2 * np.pi * 20.0 / SR)
    return 10 ** (level_db / 20) * (v - lfilter([1 - r], [1, -r], v))


CHAIN_KNOBS = (
    KnobSpec("gain", 0.0, 30.0, "dB"),
    KnobSpec("tone", 500.0, 8000.0, "Hz", log_scale=True),
    KnobSpec("level", -12.0, 6.0, "dB"),
)


def test_one_model_follows_a_gain_tone_level_chain(tmp_path: Path) -> None:
    """Three knobs that the model's blocks map exactly (gain and level in dB, a log-scale
    tone), trained on 12 settings, scored on new audio at settings between them."""
    levels = (-12.0, -3.0, 6.0)
    # gain x tone on a 4 x 3 grid, the level cycling through a Latin square
    grid = [(g, t, levels[(i + j) % 3]) for i, g in enumerate((0.0, 10.0, 20.0, 30.0))
            for j, t in enumerate((500.0, 2000.0, 8000.0))]  # fmt: skip
    model = _train(CHAIN_KNOBS, gain_tone_level, grid, tmp_path)
    unseen = [(15.0, 1000.0, 0.0), (25.0, 4000.0, -6.0), (5.0, 700.0, 3.0)]
    esr = [_esr(model, CHAIN_KNOBS, gain_tone_level, s) for s in unseen]
    centre = (15.0, 2000.0, -3.0)
    wrong = [_esr(model, CHAIN_KNOBS, gain_tone_level, s, knobs_at=centre) for s in unseen]
    assert max(esr) < 5e-3  # measured 5.3e-4 (5.3e-4, 4.6e-4, 3.4e-4)
    assert min(wrong) > 20 * max(esr)  # measured 0.093 with the knobs at the centre
