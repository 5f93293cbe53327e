"""The linear impulse-response model: closed-form least squares, then training that keeps it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.signal
import torch

from fxclone.dataset import GenerateConfig, generate_dataset
from fxclone.errors import FxcloneError
from fxclone.journey import evaluate, train
from fxclone.models import KnobSpec, create_model
from fxclone.models.ir import least_squares_ir
from fxclone.rendering import render_dataset
from fxclone.training import train_config

SR = 16000


def test_least_squares_recovers_a_known_response_from_uneven_signals() -> None:
    rng = np.random.default_rng(0)
    taps = 3000
    h = rng.standard_normal(taps) * np.exp(-np.arange(taps) / 400.0)
    # coloured dry signals of different lengths, each silent before it starts
    dry = [scipy.signal.lfilter([1.0], [1.0, -0.9], rng.standard_normal(n)) for n in (9000, 14000)]
    wet = [scipy.signal.fftconvolve(d, h)[: d.size] for d in dry]
    spectral_only = least_squares_ir(dry, wet, taps, ridge=0.0, iterations=0)
    fitted = least_squares_ir(dry, wet, taps, ridge=0.0, iterations=200)
    error = np.sum((fitted - h) ** 2) / np.sum(h**2)
    assert error < 1e-6
    # the conjugate gradients matter: the spectral start alone is biased by the signal ends
    assert np.sum((spectral_only - h) ** 2) / np.sum(h**2) > 100 * error


def test_it_refuses_knobs_clearly() -> None:
    with pytest.raises(FxcloneError, match="not knob-conditioned"):
        create_model("ir", sample_rate=SR, knobs=[KnobSpec("decay", 0.1, 2.0)])


@pytest.fixture(scope="module")
def reverb_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("ir") / "data"
    generate_dataset(
        root,
        GenerateConfig(sample_rate=SR, train_seconds=40, val_seconds=4, test_seconds=4,
                       segment_seconds=2),
    )  # fmt: skip
    render_dataset(root, "reverb", {"decay": 0.3, "predelay": 5.0, "mix": 50.0})
    return root


def test_trained_on_a_reverb_it_scores_far_below_one_percent(reverb_data, tmp_path) -> None:
    config = train_config({"model": "ir", "max_epochs": 1, "windows_per_epoch": 8})
    summary = train(reverb_data, tmp_path / "ir.safetensors", config, progress=False)
    assert summary["closed_form_val_esr"] < 1e-3
    # fine-tuning never hands back something worse than the closed-form start
    assert summary["best_val_esr"] <= summary["closed_form_val_esr"]
    metrics = evaluate(tmp_path / "ir.safetensors", reverb_data, tmp_path / "eval")
    assert metrics["esr"] < 1e-3


def test_an_init_file_is_not_overwritten_by_the_closed_form(reverb_data, tmp_path) -> None:
    from fxclone.modelfile import save_model

    start = create_model("ir", sample_rate=SR)
    with torch.no_grad():
        start.h.mul_(0.5)  # identity at half gain: far from the reverb
    save_model(tmp_path / "start.safetensors", start)
    config = train_config({"model": "ir", "max_epochs": 1, "windows_per_epoch": 4})
    summary = train(reverb_data, tmp_path / "ir.safetensors", config,
                    init=tmp_path / "start.safetensors", progress=False)  # fmt: skip
    assert "closed_form_val_esr" not in summary
    assert summary["best_val_esr"] > 0.05


def test_the_hammerstein_branches_capture_a_saturating_drive() -> None:
    """tanh drive into a long linear response: the branches fit it, a linear IR cannot."""
    rng = np.random.default_rng(1)
    taps = 1500
    decay = np.exp(-np.arange(taps) / 300.0)
    h_lin, h_sat = rng.standard_normal(taps) * decay, rng.standard_normal(taps) * decay
    dry = [0.5 * scipy.signal.lfilter([1.0], [1.0, -0.5], rng.standard_normal(20000))]
    wet = [
        scipy.signal.fftconvolve(d, h_lin)[: d.size]
        + scipy.signal.fftconvolve(np.tanh(3 * d) / 3, h_sat)[: d.size]
        for d in dry
    ]
    size = {"seconds": taps / SR, "cg_iterations": 200}
    model = create_model("ir", sample_rate=SR, overrides={**size, "branches": (3.0,)})
    linear = create_model("ir", sample_rate=SR, overrides=size)
    items = [(d[None].astype(np.float32), w[None].astype(np.float32), np.zeros(0)) for d, w in
             zip(dry, wet, strict=True)]  # fmt: skip
    model.fit_closed_form(items)
    linear.fit_closed_form(items)
    x = torch.from_numpy(items[0][0][None])
    target = wet[0]

    def esr(m: torch.nn.Module) -> float:
        with torch.no_grad():
            y = m(x)[0, 0].double().numpy()
        return float(np.sum((y - target) ** 2) / np.sum(target**2))

    assert esr(model) < 1e-5
    assert esr(linear) > 1e-3


def test_skipping_the_start_ignores_tails_of_earlier_input() -> None:
    """Items cut from one stream: each starts with the tail of the one before."""
    rng = np.random.default_rng(4)
    taps = 800
    h = rng.standard_normal(taps) * np.exp(-np.arange(taps) / 150.0)
    stream = rng.standard_normal(30000)
    wet_stream = scipy.signal.fftconvolve(stream, h)[: stream.size]
    cuts = [0, 7000, 15000, 30000]
    dry = [stream[a:b] for a, b in zip(cuts, cuts[1:], strict=False)]
    wet = [wet_stream[a:b] for a, b in zip(cuts, cuts[1:], strict=False)]
    naive = least_squares_ir(dry, wet, taps, ridge=0.0, iterations=200)
    skipped = least_squares_ir(dry, wet, taps, ridge=0.0, iterations=200, skip=[taps - 1] * 3)
    err_skipped = np.sum((skipped - h) ** 2) / np.sum(h**2)
    err_naive = np.sum((naive - h) ** 2) / np.sum(h**2)
    assert err_skipped < 1e-8
    assert err_naive > 1e-6 and err_naive > 100 * err_skipped
