"""The Martínez Ramírez thesis models (CEQ, CAFx, feedforward WaveNet, CRAFx, CWAFx, CSAFx).

The registry contract tests hold every preset to streaming == offline, causality, knobs and
save/load at 48 kHz. These pin what is particular to the thesis models: Table C.1's parameter
counts, the shared blocks against their defining equations (MODELS.md §0), the frame machinery
(exact overlap-add, latency, receptive field, streaming at the models' real sizes) and each
model's training stages.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from fxclone.errors import FxcloneError
from fxclone.models import FAMILIES, PRESETS, afx_frames, create_model
from fxclone.models.afx_blocks import SAAF, FrontEnd, correlate, masked_unpool
from fxclone.models.afx_frames import FramedModel
from fxclone.models.afx_losses import CEQLoss, CSAFxLoss
from fxclone.models.afx_lstm import KerasLSTM, hard_sigmoid
from fxclone.models.base import EffectModel, KnobSpec
from fxclone.models.csafx import sparse_fir
from fxclone.models.resample import ResampledModel
from fxclone.stage_module import score_region
from fxclone.training import train_config
from fxclone.windows import warmup_samples

THESIS = ("ceq", "cafx", "wavenet-ff", "crafx", "cwafx", "csafx")
# Trainable parameters, thesis Table C.1 (T:L8084-8098), counted as Keras counts them.
TABLE_C1 = {
    "ceq": 561_473,
    "cafx": 604_545,
    "wavenet-ff": 1_707_585,
    "crafx": 275_073,
    "cwafx": 205_057,
    "csafx": 410_977,
}
# (latency, receptive field) in samples at 16 kHz: L = N - 1 + m + kH; frame models see
# 2N + 2m + 2kH - 1 samples (the WaveNet only its conv reach, L + m + 3).
TIMING = {
    "ceq": (1023, 2047),  # N = 1,024, hop 256
    "cafx": (4095, 8191),  # N = 4,096, hop 2,048
    "wavenet-ff": (4606, 5120),  # m = 511
    "crafx": (12_287, 24_575),  # k = 4
    "cwafx": (12_287, 24_575),
    "csafx": (12_287, 24_575),
}
# FiLM with 2 knobs: Linear(2, 2C) = 6C (C = 128 or 32); the WaveNet's first conv sees 2 more
# input channels: 2 x 16 x 3.
KNOB_PARAMS = {"ceq": 768, "cafx": 768, "wavenet-ff": 96, "crafx": 192, "cwafx": 192, "csafx": 192}
KNOBS = (KnobSpec("a", 0.0, 1.0), KnobSpec("b", 0.0, 1.0))


def _tiny(name: str, sample_rate: int = 16000, **kwargs) -> EffectModel:
    torch.manual_seed(0)
    return create_model(name, sample_rate=sample_rate, overrides=dict(PRESETS[name].tiny), **kwargs)


def _stream(model: EffectModel, x: torch.Tensor, knobs: torch.Tensor, sizes) -> torch.Tensor:
    state, outs, i, j = model.init_state(x.shape[0]), [], 0, 0
    while i < x.shape[2]:
        b = sizes[j % len(sizes)]
        y, state = model.step(x[:, :, i : i + b], knobs, state)
        outs.append(y)
        i, j = i + b, j + 1
    return torch.cat(outs, dim=2)


# ------------------------------------------------------------------------------------------
# Sizes


@pytest.mark.parametrize("name", THESIS)
def test_table_c1_sizes_latency_and_receptive_field(name: str) -> None:
    model = create_model(name, sample_rate=16000)
    assert type(model).native_sample_rate == 16000
    assert model.num_parameters() == TABLE_C1[name]
    assert (model.latency_samples, model.receptive_field) == TIMING[name]
    with_knobs = create_model(name, sample_rate=16000, knobs=KNOBS)
    assert with_knobs.num_parameters() == TABLE_C1[name] + KNOB_PARAMS[name]


def test_higher_rates_run_behind_the_resampler() -> None:
    model = create_model("crafx", sample_rate=48000)
    assert isinstance(model, ResampledModel)
    assert model.inner.sample_rate == 16000 and model.factor == 3
    assert model.latency_samples == 72 + 3 * 12_287
    assert model.num_parameters() == TABLE_C1["crafx"]


@pytest.mark.parametrize("name", THESIS)
def test_training_window_defaults(name: str) -> None:
    """Adam 1e-4, no decay, patience 25, one window per batch that scores at 48 kHz what one
    thesis batch scored (20 frames of 2,048 samples, or CEQ's 4-s notes), plus the latency."""
    cfg = train_config({"model": name})
    assert (cfg.learning_rate, cfg.lr_decay, cfg.patience, cfg.batch_size) == (1e-4, 1.0, 25, 1)
    scored = 64_000 if name == "ceq" else 40_960
    assert cfg.segment_samples == 3 * (scored + TIMING[name][0])


@pytest.mark.parametrize(
    ("name", "overrides"),
    [
        ("crafx", {"lstm_units": (64, 32, 8)}),
        ("cafx", {"hop_samples": 1000}),
        ("ceq", {"latent_steps": 48}),
        ("csafx", {"sfir_taps": 500}),
        ("cwafx", {"final": (32, 16)}),
        ("wavenet-ff", {"kernel_size": 4}),
    ],
)
def test_inconsistent_configs_refused(name: str, overrides: dict) -> None:
    with pytest.raises(FxcloneError):
        create_model(name, sample_rate=16000, overrides=overrides)


# ------------------------------------------------------------------------------------------
# Blocks against their defining equations (float64)


def test_saaf_equals_its_spline_sum() -> None:
    """MODELS.md §0.5: f_c(x) = w12 x + 100 sum_s w_s B_s(x), 12 segments of 1/60 every 1/30."""
    torch.manual_seed(0)
    saaf = SAAF(3).double()
    x = (torch.rand(2, 3, 5000, dtype=torch.float64) - 0.5).requires_grad_()
    w = saaf.weight
    ref = w[12][:, None] * x
    for s in range(12):
        a = -0.2 + s / 30
        b = a + 1 / 60
        basis = torch.where(
            x < a, 0 * x, torch.where(x < b, 0.5 * (x - a) ** 2, (b - a) * (x - b) + 0.5 / 3600)
        )
        ref = ref + 100 * w[s][:, None] * basis
    y = saaf(x)
    assert float((y - ref).abs().max()) < 1e-12
    g, g_ref = torch.autograd.grad(y.sum(), [x, w]), torch.autograd.grad(ref.sum(), [x, w])
    assert all(float((a - b).abs().max()) < 1e-9 for a, b in zip(g, g_ref, strict=True))
    assert saaf.weight.shape == (13, 3)


def _keras_lstm_reference(layer: KerasLSTM, x: np.ndarray, d: int, act) -> np.ndarray:
    """The Keras 2.2.4 LSTMCell equations, one direction ``d``, written out per step."""
    u = layer.units
    k, r, b = (
        p.detach().double().numpy()[d] for p in (layer.kernel, layer.recurrent_kernel, layer.bias)
    )
    seq = x if d == 0 else x[:, ::-1]
    h, c, out = np.zeros((x.shape[0], u)), np.zeros((x.shape[0], u)), []
    hs = lambda v: np.clip(0.2 * v + 0.5, 0, 1)  # noqa: E731
    for t in range(seq.shape[1]):
        z = seq[:, t] @ k + h @ r + b
        i, f, g, o = (z[:, j * u : (j + 1) * u] for j in range(4))
        c = hs(f) * c + hs(i) * act(g)
        h = hs(o) * act(c)
        out.append(h)
    y = np.stack(out, axis=1)
    return y if d == 0 else y[:, ::-1]


@pytest.mark.parametrize("activation", ["tanh", "linear", "relu"])
def test_keras_lstm_equations(activation: str) -> None:
    torch.manual_seed(0)
    layer = KerasLSTM(5, 3, activation=activation, bidirectional=True).double().eval()
    assert sum(p.numel() for p in layer.parameters()) == 2 * 4 * (3 * (5 + 3) + 3)
    assert torch.equal(layer.bias[:, 3:6], torch.ones(2, 3))  # forget bias 1
    x = torch.randn(2, 7, 5, dtype=torch.float64)
    act = {"tanh": np.tanh, "linear": lambda v: v, "relu": lambda v: np.maximum(v, 0)}[activation]
    ref = np.concatenate([_keras_lstm_reference(layer, x.numpy(), d, act) for d in (0, 1)], axis=2)
    assert np.max(np.abs(layer(x).detach().numpy() - ref)) < 1e-12
    assert torch.equal(
        hard_sigmoid(torch.tensor([-3.0, 0.0, 1.0, 3.0])), torch.tensor([0, 0.5, 0.7, 1])
    )


def test_lstm_dropout_masks_only_in_training() -> None:
    torch.manual_seed(0)
    layer = KerasLSTM(4, 3, dropout=0.5, recurrent_dropout=0.5)
    x = torch.randn(2, 6, 4)
    eval_out = layer.eval()(x)
    assert torch.equal(eval_out, layer(x))
    assert float((layer.train()(x) - eval_out).abs().max()) > 1e-3


def test_tied_deconv_is_the_cards_expression_and_shares_w1() -> None:
    """MODELS.md §0.4: conv1d(Xhat, W1.transpose(0, 1), padding='same') + b, same Parameter."""
    torch.manual_seed(0)
    fe = FrontEnd(2, 5, 8, 16, 4).double()
    xhat = torch.randn(3, 5, 40, dtype=torch.float64)
    w = fe.conv.weight
    ref = F.conv1d(F.pad(xhat, (3, 4)), w.transpose(0, 1)) + fe.deconv_bias[:, None]
    y = fe.decode(xhat)
    assert float((y - ref).abs().max()) < 1e-12
    y.sum().backward()
    assert w.grad is not None and float(w.grad.abs().max()) > 0


def test_front_end_same_padding_and_masked_unpooling() -> None:
    torch.manual_seed(0)
    fe = FrontEnd(1, 4, 8, 16, 4).double()
    x = torch.randn(2, 1, 32, dtype=torch.float64)
    r, x2, z = fe.encode(x)
    ref_r = F.conv1d(F.pad(x, (3, 4)), fe.conv.weight, fe.conv.bias)  # TF 'same': 3 left, 4 right
    ref_x2 = F.softplus(F.conv1d(F.pad(r.abs(), (7, 8)), fe.local.weight, fe.local.bias, groups=4))
    assert float((r - ref_r).abs().max()) < 1e-12
    assert float((x2 - ref_x2).abs().max()) < 1e-12
    assert z.shape == (2, 4, 8) and torch.equal(z, F.max_pool1d(x2, 4))
    # Ties keep every maximum; other positions are zero.
    up = masked_unpool(
        torch.tensor([[[3.0, 5.0]]]), torch.tensor([[[1.0, 3.0, 3.0, 2.0, 5.0, 0.0, 1.0, 4.0]]]), 4
    )
    assert up.tolist() == [[[0.0, 3.0, 3.0, 0.0, 5.0, 0.0, 0.0, 0.0]]]


def test_correlation_by_fft_equals_direct_sum() -> None:
    torch.manual_seed(0)
    h = torch.randn(3, 5, 40, dtype=torch.float64)
    w = torch.randn(5, 16, dtype=torch.float64)
    direct = F.conv1d(F.pad(h, (7, 8)), w[:, None], groups=5)
    assert float((correlate(h, w, 7) - direct).abs().max()) < 1e-12
    # CSAFx: per (frame, channel) filters of N taps, tap N/2 - 1 is lag 0 (MODELS.md §6.6).
    r, g = torch.randn(2, 5, 32, dtype=torch.float64), torch.randn(2, 5, 32, dtype=torch.float64)
    direct = F.conv1d(F.pad(r.reshape(1, 10, 32), (15, 16)), g.reshape(10, 1, 32), groups=10)
    assert float((correlate(r, g, 15) - direct.view(2, 5, 32)).abs().max()) < 1e-12


def test_sparse_fir_taps_and_position_gradient() -> None:
    coeff = torch.tensor([[[0.5, -0.25, 0.75]]], requires_grad=True)
    idx = torch.tensor([[[0.0, 0.5, 0.99]]], requires_grad=True)
    h = sparse_fir(coeff, idx, 24, straight_through=True)  # slots of 8: taps 0, 8+3, 16+6
    expected = torch.zeros(24)
    expected[[0, 11, 22]] = torch.tensor([0.5, -0.25, 0.75])
    assert torch.equal(h.detach()[0, 0], expected)
    (h * torch.arange(24.0)).sum().backward()  # moving a tap one later adds coeff
    assert torch.allclose(idx.grad, 7 * coeff.detach())
    idx.grad = None
    sparse_fir(coeff, idx, 24, straight_through=False).sum().backward()
    assert idx.grad is None


def test_csafx_position_layer_learns_only_with_straight_through() -> None:
    for straight, learns in ((True, True), (False, False)):
        torch.manual_seed(0)
        tiny = {**PRESETS["csafx"].tiny, "straight_through": straight}
        model = create_model("csafx", sample_rate=16000, overrides=tiny)
        model(torch.randn(1, 1, 300)).abs().mean().backward()
        grad = model.position.weight.grad
        assert (grad is not None and float(grad.abs().max()) > 0) == learns
        assert float(model.coeff.weight.grad.abs().max()) > 0


# ------------------------------------------------------------------------------------------
# Frames: overlap-add, latency, receptive field, streaming


class _Identity(FramedModel):
    """Frame function = the centre frame: the overlap-add must give the input back, late."""

    family = "test-identity"

    def __init__(self, n: int, hop: int, k: int, m: int, analysis: bool) -> None:
        super().__init__(None, sample_rate=16000)
        self.setup_frames(n, hop, context_frames=k, margin=m, analysis_window=analysis)

    def frame_net(self, frames: torch.Tensor, knobs: torch.Tensor) -> torch.Tensor:
        k, m = self.context_frames, self.frame_margin
        return frames[:, k : frames.shape[1] - k, :, m : m + self.frame_samples]


@pytest.mark.parametrize(
    ("n", "hop", "k", "m", "analysis"),
    [(16, 8, 0, 0, False), (16, 4, 0, 0, True), (16, 8, 2, 0, False), (16, 4, 1, 5, False)],
)
def test_overlap_add_reconstructs_the_input_after_the_latency(n, hop, k, m, analysis) -> None:
    model = _Identity(n, hop, k, m, analysis)
    lat = model.latency_samples
    assert lat == n - 1 + m + k * hop
    assert model.receptive_field == 2 * n + 2 * m + 2 * k * hop - 1
    x = torch.randn(2, 1, 300)
    y = model(x)
    assert float(y[:, :, :lat].abs().max()) == 0.0
    assert float((y[:, :, lat:] - x[:, :, :-lat]).abs().max()) < 1e-6
    streamed = _stream(model, x, x.new_zeros(2, 0), [0, 1, 7, 3, 64, 0, 13])
    assert float((streamed - y).abs().max()) < 1e-6


def _support(model: EffectModel, x: torch.Tensor, n: int) -> tuple[int, int]:
    """First and last input index with a non-zero gradient on output sample ``n``."""
    x = x.clone().requires_grad_()
    model(x)[0, 0, n].backward()
    nz = torch.nonzero(x.grad[0, 0]).flatten()
    return int(nz.min()), int(nz.max())


@pytest.mark.parametrize("name", THESIS)
def test_output_depends_on_the_declared_span_only(name: str) -> None:
    """Output n sees input n - receptive_field + 1 .. n and nothing later; both ends are
    reached (up to the Hann window's zero first sample), so latency and receptive field are
    tight (the WaveNet's future reach is its conv reach, short of the frame's end)."""
    model = _tiny(name).double().eval()
    lat, rf = model.latency_samples, model.receptive_field
    x = torch.randn(1, 1, 3 * rf, dtype=torch.float64, generator=None)
    hop = model.hop_samples
    spans = [_support(model, x, n) for n in range(2 * rf, 2 * rf + hop)]
    starts = [n - s for n, (s, _) in zip(range(2 * rf, 2 * rf + hop), spans, strict=True)]
    ends = [n - e for n, (_, e) in zip(range(2 * rf, 2 * rf + hop), spans, strict=True)]
    # A periodic Hann is zero on a frame's first sample: on the input frames (CEQ) that sample
    # is never seen, on the output frames a frame's first output sample is zero.
    hann_in = int(model.analysis_window)
    assert max(starts) == rf - 1 - hann_in
    if name == "wavenet-ff":
        assert min(ends) == lat - (model.frame_margin + 2)
    else:
        assert min(ends) == 1 - hann_in


@pytest.mark.parametrize("name", THESIS)
def test_tiny_models_stream_exactly_at_their_own_rate(name: str, monkeypatch) -> None:
    """Any block sizes, and playback in chunks of frames (as without gradients on long
    files), give the output of one batch of all frames."""
    model = _tiny(name, knobs=KNOBS).eval()
    g = torch.Generator().manual_seed(2)
    x, knobs = 0.4 * torch.randn(2, 1, 900, generator=g), torch.rand(2, 2, generator=g)
    offline = model(x, knobs).detach()  # with gradients: one batch
    monkeypatch.setattr(afx_frames, "CHUNK_ELEMENTS", 1)  # one frame per chunk
    with torch.no_grad():
        assert float((model(x, knobs) - offline).abs().max()) <= 1e-5
        for sizes in ([1], [0, 7, 64, 0, 15, 16, 17, 333], [4096]):
            assert float((_stream(model, x, knobs, sizes) - offline).abs().max()) <= 1e-5
    assert float(offline.abs().max()) > 1e-3


@pytest.mark.parametrize("name", ["ceq", "cafx", "crafx", "csafx"])
def test_real_size_models_stream_exactly(name: str) -> None:
    torch.manual_seed(0)
    model = create_model(name, sample_rate=16000).eval()
    x = 0.3 * torch.randn(1, 1, 20_800, generator=torch.Generator().manual_seed(1))
    changed = x.clone()
    changed[:, :, 15_000:] = 0.0
    with torch.no_grad():
        offline = model(x)
        streamed = _stream(model, x, x.new_zeros(1, 0), [4096, 1, 2047, 0, 3000, 5, 2048, 9603])
        assert float((streamed - offline).abs().max()) <= 1e-5
        cut = model(changed)
    assert torch.equal(cut[:, :, :15_000], offline[:, :, :15_000])
    assert float((cut - offline).abs().max()) > 1e-4


# ------------------------------------------------------------------------------------------
# Losses


def test_ceq_loss_terms() -> None:
    """Half the target: identical normalised spectra (KL 0), MSE of half the magnitudes, and
    0.1 x MAE of half the waveform."""
    t = torch.randn(2, 1, 4096, generator=torch.Generator().manual_seed(3))
    loss = CEQLoss(1024, 256)
    mag = loss.spectrum(t)
    expected = torch.mean((mag / 2) ** 2) + 0.1 * torch.mean(torch.abs(t / 2))
    assert abs(float(loss(t / 2, t)) - float(expected)) < 1e-4 * float(expected)
    assert float(loss(t, t)) == 0.0
    assert mag.shape == (2, 1, 13, 513)


def test_csafx_loss_against_numpy() -> None:
    rng = np.random.default_rng(4)
    y, yhat = rng.standard_normal((1, 1, 64)), 0.3 * rng.standard_normal((1, 1, 64))
    w = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(32) / 32)
    fy, fyhat = (np.stack([s[0, 0, i : i + 32] * w for i in (0, 16, 32)]) for s in (y, yhat))

    def pre(v: np.ndarray) -> np.ndarray:
        return np.concatenate([v[:, :1], v[:, 1:] - 0.95 * v[:, :-1]], axis=1)

    def spec(v: np.ndarray) -> np.ndarray:
        db = 10 * np.log10(np.maximum(np.abs(np.fft.rfft(v * w)) ** 2, 1e-10))
        return np.maximum(db - db.max(), -80.0)

    expected = np.mean(np.abs(pre(fy) - pre(fyhat))) + 1e-4 * np.mean((spec(fy) - spec(fyhat)) ** 2)
    got = CSAFxLoss(32, 16)(torch.from_numpy(yhat).float(), torch.from_numpy(y).float())
    assert abs(float(got) - expected) < 1e-5 * expected


# ------------------------------------------------------------------------------------------
# Training stages


STAGES = {
    "ceq": (("pretrain", "autoencoder", 1.0), ("supervised", "pairs", 1.0)),
    "wavenet-ff": (("supervised", "pairs", 1.0), ("finetune", "pairs", 0.25)),
}
DEFAULT_STAGES = (
    ("pretrain", "autoencoder", 1.0),
    ("supervised", "pairs", 1.0),
    ("finetune", "pairs", 0.25),
)


@pytest.mark.parametrize("name", THESIS)
def test_each_training_stage_lowers_its_own_loss(name: str) -> None:
    """A few Adam steps of every stage, run as the trainer runs them (48 kHz, behind the
    resampler, warm-up and latency cropped): each stage's loss on its own data falls, and
    pretraining moves only the front-end and deConv bias."""
    model = _tiny(name, sample_rate=48000)
    stages = model.training_stages()
    assert tuple((s.name, s.data, s.lr_scale) for s in stages) == STAGES.get(name, DEFAULT_STAGES)
    assert math.isclose(sum(s.budget for s in stages), 1.0)
    warm, lat = warmup_samples(model), model.latency_samples
    n = warm + lat + 1024
    g = torch.Generator().manual_seed(3)
    t = torch.arange(n) / 48000
    dry = 0.5 * torch.sin(2 * math.pi * 220 * t) * torch.rand(2, 1, 1, generator=g)
    dry = dry + 0.1 * torch.randn(2, 1, n, generator=g)
    wet = torch.tanh(4 * dry)
    for stage in stages:
        trained = list(stage.parameters(model) if stage.parameters else model.parameters())
        before_all = {k: v.detach().clone() for k, v in model.named_parameters()}
        opt = torch.optim.Adam(trained, lr=1e-3 * stage.lr_scale)
        auto = stage.data == "autoencoder"
        x, y = (torch.cat([dry, wet]),) * 2 if auto else (dry, wet)
        knobs = x.new_zeros(x.shape[0], 0)

        def loss_now(stage=stage, x=x, y=y, knobs=knobs) -> torch.Tensor:
            est = stage.forward(model, x, knobs, y) if stage.forward else model(x, knobs)
            return stage.loss(*score_region(est, y, warm, lat))

        model.eval()  # losses measured without dropout
        with torch.no_grad():
            before = float(loss_now())
        model.train()
        for _ in range(6):
            opt.zero_grad()
            loss_now().backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            after = float(loss_now())
        assert after < before, (stage.name, before, after)
        if auto:
            moved = {k for k, v in model.named_parameters() if not torch.equal(v, before_all[k])}
            assert moved == {
                f"inner.frontend.{p}"
                for p in ("conv.weight", "conv.bias", "local.weight", "local.bias", "deconv_bias")
            }


def test_registry_families() -> None:
    families = {PRESETS[name].family for name in THESIS}
    assert families == {"ceq", "cafx", "ffwavenet", "crafx", "cwafx", "csafx"}
    assert all(FAMILIES[f].native_sample_rate == 16000 for f in families)
