"""Family-specific checks of the seed models: McCool, KTH, µ-law WaveNet, micro-TCN.

The registry contract tests (test_model_contract.py) already hold every preset to streaming ==
offline, causality, batch independence, knobs and save/load; these tests pin what is particular
to each family: sizes, which input samples an output sees, µ-law coding and the training stages.
"""

from __future__ import annotations

import math

import pytest
import torch

from fxclone.errors import FxcloneError
from fxclone.models import PRESETS, create_model, windowed
from fxclone.models.base import EffectModel, KnobSpec
from fxclone.models.kth import same_padding
from fxclone.models.mulaw import mulaw_decode, mulaw_encode
from fxclone.models.windowed import scored_forward

SR = 48000
KNOBS = (KnobSpec("drive", 0.0, 1.0), KnobSpec("tone", 0.0, 1.0))

# name: (parameters with no knobs, receptive field, latency), from the layer sizes:
SIZES = {
    # convs 1*32*5+32 = 192, 5 x (32*32*5+32) = 25,760; 'valid' 64 -> 40, pool 2 -> 20;
    # FC 640*64+64 = 41,024, 64*16+16 = 1,040, 16*1+1 = 17
    "mccool-cnn": (68_033, 64, 0),
    # 64*800+800 = 52,000; 800*800+800 = 640,800; 800*700+700 = 560,700; 700*500+500 = 350,500;
    # 500*250+250 = 125,250; 250*100+100 = 25,100; 100*50+50 = 5,050; 50*25+25 = 1,275;
    # 25*10+10 = 260; 10*1+1 = 11
    "mccool-mlp": (1_760_946, 65, 32),
    # layer 1: 4*800*(1+800) + 2*4*800 = 2,569,600; layers 2-7: 6 x (4*800*1600 + 6,400)
    # = 30,758,400; head 801
    "mccool-lstm": (33_328_801, 0, 0),
    # layer 1: 4*800*(64+800) + 6,400 = 2,771,200; layers 2-8: 7 x 5,126,400 = 35,884,800; 801
    "mccool-lstm-code": (38_656_801, 0, 32),
    # input 1*32+32 = 64; 19 layers x (conv 32*64*2+64 = 4,160, skip 32*64+64 = 2,112,
    # residual 32*32+32 = 1,056) = 139,232; last layer 6,272; head 64*64+64 = 4,160 and
    # 64*256+256 = 16,640; receptive field 1 + 2 x (1+2+...+512) = 2,047
    "mccool-wavenet": (166_368, 2047, 0),
    "mccool-wavenet-ar": (166_400, 0, 0),  # input conv sees 2 channels: +32
    # TensorFlow LSTM: 4*384*(1+384) + 4*384 = 592,896 (one bias per gate); head 385
    "kth-lstm": (593_281, 1024, 0),
    "kth-lstm-reduced": (103_841, 512, 0),  # 4*160*161 + 640 = 103,680; head 161
    "kth-gru": (77_921, 512, 0),  # 3*160*161 + 480 = 77,760; head 161
    # A/B per group: 1*128*128+128 = 16,512 and 128^3+128 = 2,097,280; 128*64*64+64 = 524,352
    # and 64^3+64 = 262,208; 64*32*32+32 = 65,568 and 32^3+32 = 32,800; 32*16*16+16 = 8,208
    # and 16^3+16 = 4,112; FC 16*8+8 = 136, 8*4+4 = 36, 4*2+2 = 10, 2*1+1 = 3
    "kth-cnn": (3_011_225, 1024, 0),
    # blocks: 1*32*13 + 64 (BatchNorm) + 32 (PReLU) + 32 (res) = 544; 3 x (32*32*13 + 128)
    # = 40,320; output 33; receptive field 1 + 12 x (1+10+100+1000) = 13,333
    "tcn": (40_897, 13_333, 0),
    # 1*32*15+128 = 608; 9 x (32*32*15+128) = 139,392; 33; 1 + 14 x 1023 = 14,323
    "tcn-300": (140_033, 14_323, 0),
}


def _model(name: str, n_knobs: int = 0, **overrides) -> EffectModel:
    torch.manual_seed(0)
    return create_model(name, sample_rate=SR, knobs=KNOBS[:n_knobs], overrides=overrides)


def _support(model: EffectModel, n: int, length: int) -> list[int]:
    """Input indices with a non-zero gradient on output sample n."""
    x = (
        0.3 * torch.randn(1, 1, length, generator=torch.Generator().manual_seed(5))
    ).requires_grad_()
    knobs = torch.rand(1, model.n_knobs)
    model(x, knobs)[0, 0, n].backward()
    assert x.grad is not None
    return torch.nonzero(x.grad[0, 0]).flatten().tolist()


@pytest.mark.parametrize("name", list(SIZES))
def test_preset_sizes(name: str) -> None:
    params, receptive_field, latency = SIZES[name]
    model = _model(name)
    assert model.num_parameters() == params
    assert model.receptive_field == receptive_field
    assert model.latency_samples == latency


def test_film_and_knob_inputs_add_parameters() -> None:
    # tcn with 2 knobs: conditioning MLP 2*16+16 + 16*32+32 + 32*32+32 = 1,648; each block
    # swaps BatchNorm's 64 affine weights for a FiLM layer 32*64+64 = 2,112: 4 x 2,048 more.
    assert _model("tcn", 2).num_parameters() == 40_897 + 1_648 + 4 * 2_048 == 50_737
    assert _model("tcn-300", 2).num_parameters() == 140_033 + 1_648 + 10 * 2_048 == 162_161
    # kth-lstm: 2 knob channels add 2 x 4 x 384 input weights
    assert _model("kth-lstm", 2).num_parameters() == 593_281 + 3_072


# --- McCool ---------------------------------------------------------------------------------


def test_mccool_mlp_sees_32_each_side_but_not_the_sample_itself() -> None:
    model = _model("mccool-mlp", widths=(32,))
    n = 300
    expected = [i for i in range(n - 64, n + 1) if i != n - 32]  # estimates the wet n - 32
    assert _support(model, n, 400) == expected


def test_mccool_cnn_window_is_causal_and_64_samples() -> None:
    assert _support(_model("mccool-cnn"), 300, 400) == list(range(237, 301))


def test_mccool_code_lstm_feeds_the_window_without_its_centre() -> None:
    model = _model("mccool-lstm-code", hidden_size=4, num_layers=1)
    x = torch.zeros(1, 1, 200)
    x[0, 0, 100] = 1.0  # an impulse enters the windows of steps 100..164, except step 132
    weights = model.rnn.weight_ih_l0.detach()
    inputs: list[torch.Tensor] = []
    model.rnn.register_forward_hook(lambda m, args, out: inputs.append(args[0]))
    with torch.no_grad():
        model(x)
    frames = inputs[0][0]  # (steps, 64): step n holds x[n-64 .. n-33], x[n-31 .. n]
    assert frames.shape == (200, 64) and weights.shape == (16, 64)
    hot = torch.nonzero(frames).tolist()
    assert [s for s, _ in hot] == [s for s in range(100, 165) if s != 132]
    assert hot[0] == [100, 63] and hot[-1] == [164, 0]  # newest position first, oldest last


# --- KTH ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["kth-lstm", "kth-gru"])
def test_kth_output_depends_on_exactly_the_last_window(name: str) -> None:
    model = _model(name, hidden_size=8, window=24)
    assert _support(model, 100, 130) == list(range(77, 101))


def test_kth_recurrent_cells_have_tensorflow_biases() -> None:
    lstm, gru = _model("kth-lstm"), _model("kth-gru")
    bias = lstm.rnn.bias_hh_l0
    assert not bias.requires_grad  # not trained: TensorFlow's cell has one bias per gate
    assert torch.equal(bias[384:768], torch.ones(384))  # forget_bias = 1.0
    assert float(bias[:384].abs().sum() + bias[768:].abs().sum()) == 0.0
    assert not gru.rnn.bias_hh_l0.requires_grad
    assert torch.equal(gru.rnn.bias_ih_l0[:320], torch.ones(320))  # gate biases start at 1


def test_kth_cnn_same_padding_keeps_a_1024_window_alive() -> None:
    # TensorFlow 'same': output ceil(n / stride); the odd pad sample goes on the right.
    assert same_padding(1024, 128, 1, 1) == (63, 64, 1024)
    assert same_padding(1024, 64, 2, 1) == (31, 31, 512)  # group 2, conv A
    assert same_padding(64, 32, 1, 4) == (62, 62, 64)  # group 3, conv B: spans 125 samples
    assert same_padding(2, 8, 8, 1) == (3, 3, 1)  # group 4's pool: 2 samples -> 1
    model = _model("kth-cnn")
    lengths = [conv.length for conv in model._convs]
    assert lengths == [1024, 1024, 512, 512, 64, 64, 2, 2]
    assert model.fc[0].in_features == 16  # 16 filters x 1 sample after the last pool
    with pytest.raises(FxcloneError, match="halve"):
        _model("kth-cnn", filters=4)


def test_kth_cnn_adds_its_output_to_the_last_input_sample() -> None:
    model = _model("kth-cnn", window=64, filters=8, kernel_size=8)
    assert _support(model, 200, 230)[-1] == 200 and min(_support(model, 200, 230)) >= 137
    torch.nn.init.zeros_(model.fc[-1].weight)
    torch.nn.init.zeros_(model.fc[-1].bias)
    x = torch.randn(2, 1, 300)
    with torch.no_grad():
        assert torch.equal(model(x), x)


def test_window_models_train_on_the_scored_windows_only() -> None:
    model = _model("kth-lstm", 2, hidden_size=4, window=16)
    x, knobs = torch.randn(3, 1, 80), torch.rand(3, 2)
    with torch.no_grad():
        full = model(x, knobs)
        model.train()
        fast = scored_forward(model, x, knobs, x)
        model.eval()
        assert torch.equal(scored_forward(model, x, knobs, x), full)
    assert fast.shape == full.shape
    assert float(fast[:, :, :15].abs().max()) == 0.0  # warm-up: never scored
    assert float((fast[:, :, 15:] - full[:, :, 15:]).abs().max()) <= 1e-6


def test_long_inputs_are_processed_in_chunks_with_the_same_result(monkeypatch) -> None:
    model = _model("kth-cnn", 2, window=64, filters=8, kernel_size=8)
    x, knobs = torch.randn(2, 1, 500), torch.rand(2, 2)
    with torch.no_grad():
        whole = model(x, knobs)
        monkeypatch.setattr(windowed, "CHUNK_ELEMENTS", 2 * 64 * 8 * 37)  # 37 windows a chunk
        chunked = model(x, knobs)
    assert float((whole - chunked).abs().max()) <= 1e-6


# --- µ-law WaveNet --------------------------------------------------------------------------


def test_mulaw_round_trip_error_bound() -> None:
    x = torch.linspace(-1, 1, 200_001)
    k = mulaw_encode(x)
    assert int(k.min()) == 0 and int(k.max()) == 255
    err = (mulaw_decode(k) - x).abs()
    # Half a step in the companded domain is 1/255, so |x' - x| <= (|x| + 1/µ)((1+µ)^(1/µ) - 1).
    step = 256 ** (1 / 255) - 1  # 0.02198
    assert bool(torch.all(err <= (x.abs() + 1 / 255) * step + 1e-6))
    assert 0.020 < float(err.max()) <= 0.0220  # coarse at full scale ...
    assert float(err[x.abs() < 1e-3].max()) <= 1.1e-4  # ... and fine near silence
    assert mulaw_decode(torch.tensor([0, 255])).tolist() == [-1.0, 1.0]
    assert int(mulaw_encode(torch.tensor(3.0))) == 255  # clamped


@pytest.mark.parametrize("name", ["mccool-wavenet", "mccool-wavenet-ar"])
def test_cross_entropy_stage_loss_decreases(name: str) -> None:
    model = _model(name, residual_channels=4, skip_channels=8, dilations=(1, 2))
    (stage,) = model.training_stages()
    x = 0.5 * torch.randn(4, 1, 512, generator=torch.Generator().manual_seed(3))
    target = torch.tanh(3 * x)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(20):
        logits = stage.forward(model, x, torch.zeros(4, 0), target)
        assert logits.shape == (4, 256, 512)
        loss = stage.loss(logits, target)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert abs(losses[0] - math.log(256)) < 0.3  # a near-uniform guess at the start
    assert losses[-1] < losses[0] - 0.5


def test_teacher_forcing_agrees_with_generation() -> None:
    model = _model("mccool-wavenet-ar", 2, residual_channels=4, skip_channels=8, dilations=(1, 4))
    x, knobs = 0.4 * torch.randn(2, 1, 300), torch.rand(2, 2)
    with torch.no_grad():
        generated = model(x, knobs)
        # The same previous samples teacher-forced in parallel give the same outputs.
        forced = model.decode(model.logits(x, knobs, target=generated))
        assert float((forced - generated).abs().max()) <= 1e-5
        # Teacher forcing sees only earlier target samples: changing sample 150 changes
        # logits from 151 on.
        other = generated.clone()
        other[:, :, 150] += 0.5
        a, b = model.logits(x, knobs, generated), model.logits(x, knobs, other)
    assert torch.equal(a[..., :151], b[..., :151])
    assert float((a[..., 151] - b[..., 151]).abs().max()) > 1e-4


def test_argmax_decoding_lands_on_mulaw_levels() -> None:
    model = _model("mccool-wavenet", decode="argmax", residual_channels=4, dilations=(1, 2))
    with torch.no_grad():
        y = model(0.3 * torch.randn(1, 1, 200))
    assert torch.equal(mulaw_decode(mulaw_encode(y)), y)


# --- micro-TCN ------------------------------------------------------------------------------


def test_tcn_receptive_field_is_exact() -> None:
    # Kernel 3, dilations 1, 3, 9: the taps' offsets are the base-3 numbers 0..26, no gaps
    # (with a growth above the kernel, e.g. uTCN-100's 10 vs 5, the field has holes).
    model = _model("tcn", blocks=3, kernel_size=3, dilation_growth=3, channels=4).eval()
    assert model.receptive_field == 27  # 1 + 2 x (1 + 3 + 9)
    assert _support(model, 100, 120) == list(range(74, 101))


def test_tcn_knobs_act_through_film_only() -> None:
    model = _model("tcn", 2, blocks=2, kernel_size=3, channels=4).eval()
    x = 0.4 * torch.randn(2, 1, 400)
    lo, hi = torch.zeros(2, 2), torch.ones(2, 2)
    with torch.no_grad():
        assert float((model(x, lo) - model(x, hi)).abs().max()) > 1e-3
        for block in model.blocks:  # FiLM fixed at scale 1, shift 0: knobs have no effect
            torch.nn.init.zeros_(block.film.weight)
            block.film.bias.copy_(torch.cat([torch.ones(4), torch.zeros(4)]))
        assert torch.equal(model(x, lo), model(x, hi))


def test_tiny_overrides_exist_for_every_seed_preset() -> None:
    for name in SIZES:
        tiny = create_model(name, sample_rate=SR, overrides=dict(PRESETS[name].tiny))
        assert tiny.num_parameters() < 3_000


def test_wavenet_film_is_log_domain_with_a_linear_path_but_old_files_keep_theirs() -> None:
    from fxclone.models.wavenet import WaveNetConfig

    model = _model("wavenet-nano", 2)
    assert model.film_log and model.film_linear is not None
    sizes = sum(model._film_sizes)
    with torch.no_grad():  # a dB knob is linear in the exponent: 2 ln 8 per unit -> x8 at 0.5
        x, knobs = torch.randn(1, 1, 500) * 0.1, torch.tensor([[0.3, 0.5]])
        model.film_linear.weight.zero_()
        quiet = model(x, knobs)
        model.film_linear.weight[-1, 1] = 2 * math.log(8.0)
        loud = model(x, knobs)
    assert torch.allclose(loud, 8.0 * quiet, rtol=1e-5, atol=1e-7)
    assert model.film_linear.weight.shape == (sizes, 2)
    old = WaveNetConfig.from_dict({"film_hidden": 16})  # saved before film_log existed
    assert not old.film_log and WaveNetConfig().film_log
