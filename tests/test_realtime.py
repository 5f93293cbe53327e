"""The compiled streaming kernels equal the models' own forward for every preset and block size."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fxclone.models import PRESETS, create_model
from fxclone.realtime import fast_kernel, native
from fxclone.streaming import StreamProcessor, process_array
from trained import KNOBS, SR, briefly_trained

LENGTH = 17_000  # > 2 x 8192 and several history-buffer shifts (every 2048 samples)
# Block sizes; sizes 1 and 7 stream a prefix that still spans a history-buffer shift.
PREFIX = {"b1": 2_600, "b7": 7_000}
SIZES = {
    "b1": [1],
    "b7": [7],
    "b32": [32],
    "b64": [64],
    "b256": [256],
    "b2048": [2048],
    "b8192": [8192],
    "varying": [1, 300, 17, 64, 4096, 2, 999, 8192, 63],
}
NATIVE = native.load(((16, False), (8, False))) is not None
# WaveNets run natively where a C compiler exists; the numba fallback is held to the same
# bound on the largest and smallest preset (and on all where there is no compiler).
NUMBA_WAVENETS = ("wavenet-standard", "wavenet-nano")
BACKENDS = {
    name: ["numba"]
    if p.family != "wavenet" or not NATIVE
    else ["native", "numba"]
    if name in NUMBA_WAVENETS
    else ["native"]
    for name, p in PRESETS.items()
}
# The families with compiled kernels, at sizes a test can run (not McCool's 7 x 800 LSTM).
KERNELED = [n for n, p in PRESETS.items() if p.family in ("wavenet", "rnn") and not p.tiny]
CASES = [(name, k, b) for name in KERNELED for k in (0, 2) for b in BACKENDS[name]]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _signal(batch: int, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(LENGTH) / SR
    tone = np.sin(2 * np.pi * 110 * t) * np.linspace(0, 1, LENGTH)
    x = 0.4 * tone + 0.2 * rng.standard_normal((batch, 1, LENGTH))
    return x.astype(np.float32)


def _stream(kernel, x: np.ndarray, sizes: list[int]) -> np.ndarray:
    outs, i, k = [], 0, 0
    while i < x.shape[2]:
        b = sizes[k % len(sizes)]
        outs.append(kernel.process(x[:, :, i : i + b]))
        i, k = i + b, k + 1
    return np.concatenate(outs, axis=2)


@pytest.fixture(scope="module", params=CASES, ids=[f"{n}-knobs{k}-{b}" for n, k, b in CASES])
def case(request: pytest.FixtureRequest):
    name, n_knobs, backend = request.param
    model = briefly_trained(name, n_knobs)
    x = _signal(2)
    knobs = np.random.default_rng(2).random((2, n_knobs)).astype(np.float32)
    if getattr(model, "film", None) is not None:  # FiLM folds into shared weights
        knobs[1] = knobs[0]
    with torch.no_grad():
        ref = model(torch.from_numpy(x), torch.from_numpy(knobs)).numpy()
    kernel = fast_kernel(model, 2, knobs, backend=backend)
    assert kernel is not None and kernel.backend == backend
    return kernel, x, ref


@pytest.mark.parametrize("size", list(SIZES))
def test_kernel_equals_forward(case, size) -> None:
    kernel, x, ref = case
    n = PREFIX.get(size, LENGTH)
    kernel.reset()  # every block-size run starts after a reset of the same kernel
    y = _stream(kernel, x[:, :, :n], SIZES[size])
    ref = ref[:, :, :n]
    assert y.shape == ref.shape
    assert np.abs(ref).max() > 0.01  # a real signal, not a near-silent output
    assert np.max(np.abs(y - ref)) <= 1e-5


@pytest.mark.parametrize("name", KERNELED)
def test_stream_processor_uses_kernel_for_multichannel_audio(name) -> None:
    model = briefly_trained(name, 2)
    audio = _signal(2)[:, 0, :]  # stereo: each channel is its own stream
    knobs = {"drive": 30.0, "tone": 1000.0}
    fast = StreamProcessor(model, knobs, channels=2)
    ref = StreamProcessor(model, knobs, channels=2, reference=True)
    assert fast.kernel is not None and ref.kernel is None
    for proc in (fast, ref):  # state carried over, then reset, then again
        proc.process(audio[:, :5000])
        proc.reset()
    y_fast = np.concatenate([fast.process(audio[:, i : i + 64]) for i in range(0, 8000, 64)], 1)
    y_ref = ref.process(audio[:, :8000])
    assert y_fast.shape == (2, 8000)
    assert np.max(np.abs(y_fast - y_ref)) <= 1e-5
    whole = process_array(model, audio, knobs, block_size=4096)
    np.testing.assert_allclose(whole[:, :8000], y_ref, atol=1e-5)


def test_silence_after_signal_settles_to_the_models_output() -> None:
    model = briefly_trained("wavenet-standard", 0)
    x = np.concatenate([_signal(1), np.zeros((1, 1, 30_000), np.float32)], axis=2)
    with torch.no_grad():
        ref = model(torch.from_numpy(x)).numpy()
    y = _stream(fast_kernel(model, 1), x, [64])
    assert np.all(np.isfinite(y)) and np.max(np.abs(y - ref)) <= 1e-5
    tail = y[0, 0, -5000:]  # beyond the receptive field: a constant
    assert np.ptp(tail) <= 1e-7


def test_tanh_approximation_error() -> None:
    from numba import njit

    from fxclone.realtime._math import sigmoid, tanh

    @njit
    def both(v):
        out = np.empty((2, v.size), np.float32)
        for i in range(v.size):
            out[0, i] = tanh(v[i])
            out[1, i] = sigmoid(v[i])
        return out

    v = np.linspace(-20, 20, 400_001).astype(np.float32)
    got = both(v).astype(np.float64)
    exact = np.tanh(v.astype(np.float64))
    assert np.max(np.abs(got[0] - exact)) <= 5e-7
    assert np.max(np.abs(got[1] - 0.5 * (1 + np.tanh(v.astype(np.float64) / 2)))) <= 3e-7
    assert got[0][0] == -got[0][-1] and abs(got[0][-1] - 1.0) <= 1e-6


def test_backend_choice(monkeypatch) -> None:
    model = create_model("wavenet-nano", sample_rate=SR)
    with pytest.raises(ValueError, match="backend"):
        fast_kernel(model, 1, backend="gpu")
    with pytest.raises(ValueError, match="native"):
        fast_kernel(create_model("gru", sample_rate=SR), 1, backend="native")
    monkeypatch.setenv("FXCLONE_NATIVE", "0")
    kernel = fast_kernel(model, 1)
    assert kernel is not None and kernel.backend == "numba"
    with pytest.raises(ValueError, match="not available"):
        fast_kernel(model, 1, backend="native")
    with pytest.raises(ValueError, match="expected"):
        kernel.process(np.zeros((2, 1, 10), np.float32))


@pytest.mark.parametrize(("film_hidden", "film_log"), [(0, True), (5, True), (5, False)])
@pytest.mark.parametrize("backend", ["native", "numba"] if NATIVE else ["numba"])
def test_wavenet_variants(backend, film_hidden, film_log) -> None:
    """Gated layers, every activation, kernel size 2 and a 3-array layout; knobs as extra
    condition channels only (a setting per stream) or with FiLM (one setting, then another),
    its scales exponential with a linear knob path or, as in older files, ``1 + g``."""
    from fxclone.models import build_model
    from fxclone.models.wavenet import LayerArrayConfig, WaveNetConfig

    arrays = (
        LayerArrayConfig(channels=6, head_size=4, kernel_size=2, dilations=(1, 4, 16),
                         activation="ReLU", gated=True),
        LayerArrayConfig(channels=4, head_size=3, dilations=(2, 8), activation="Hardtanh"),
        LayerArrayConfig(channels=3, head_size=1, kernel_size=4, dilations=(1, 3),
                         activation="Sigmoid", gated=True, head_bias=True),
    )  # fmt: skip
    torch.manual_seed(3)
    config = WaveNetConfig(
        layers=arrays, head_scale=0.5, film_hidden=film_hidden, film_log=film_log
    )
    model = build_model("wavenet", config, sample_rate=SR, knobs=KNOBS).eval()
    x = _signal(2)[:, :, :9000]
    settings = [np.array([[0.1, 0.9], [0.6, 0.3]], np.float32)]
    if film_hidden:
        assert model.film is not None
        with torch.no_grad():  # FiLM terms of a trained size, not the zero start
            for param in model.parameters():
                if param.ndim and param.shape[0] == sum(model._film_sizes):
                    param.normal_(0.0, 0.3)  # the FiLM output layer and linear path
            for param in model.film[0].parameters():
                param.normal_(0.0, 0.3)
        assert (model.film_linear is not None) == film_log
        settings = [np.array([[0.1, 0.9]] * 2, np.float32), np.array([[0.7, 0.2]] * 2, np.float32)]
        with pytest.raises(ValueError, match="one setting"):  # FiLM: one setting for all
            fast_kernel(model, 2, np.array([[0.1, 0.9], [0.6, 0.3]], np.float32), backend=backend)
    kernel = fast_kernel(model, 2, settings[0], backend=backend)
    assert kernel is not None
    for knobs in settings:
        with torch.no_grad():
            ref = model(torch.from_numpy(x), torch.from_numpy(knobs)).numpy()
        kernel.set_knobs(knobs)
        kernel.reset()
        y = _stream(kernel, x, SIZES["varying"])
        assert np.abs(ref).max() > 0.01 and np.max(np.abs(y - ref)) <= 1e-5


@pytest.mark.parametrize("branches", [(), (3.0,)], ids=["linear", "hammerstein"])
@pytest.mark.parametrize("size", list(SIZES))
def test_impulse_response_kernel_equals_forward(size, branches) -> None:
    """Zero-latency partitioned convolution: a head and five tail partitions, two channels,
    with and without a saturating branch."""
    model = create_model(
        "ir", sample_rate=SR, channels=2, overrides={"seconds": 3000 / SR, "branches": branches}
    )
    rng = np.random.default_rng(3)
    with torch.no_grad():
        decay = np.exp(-np.arange(model.taps) / 600.0)
        model.h.copy_(torch.from_numpy(rng.standard_normal((2, model.taps)) * decay))
        model.hn.copy_(torch.from_numpy(rng.standard_normal(model.hn.shape) * decay))
    x = np.concatenate([_signal(2), _signal(2, seed=4)], axis=1)  # (2, 2, LENGTH)
    with torch.no_grad():
        ref = model(torch.from_numpy(x)).numpy()
    kernel = fast_kernel(model, 2)
    assert kernel is not None and kernel.backend == "numpy"
    n = PREFIX.get(size, LENGTH)
    y = _stream(kernel, x[:, :, :n], SIZES[size])
    assert np.abs(ref).max() > 0.1
    assert np.max(np.abs(y - ref[:, :, :n])) <= 1e-5 * np.abs(ref).max()
    kernel.reset()
    assert (
        np.max(np.abs(_stream(kernel, x[:, :, :n], [64]) - ref[:, :, :n]))
        <= 1e-5 * np.abs(ref).max()
    )
