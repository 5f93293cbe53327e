"""The catalogue of named presets: a family, a configuration and the name users type
(``fxclone train --model wavenet-standard``), with the training settings each model's authors
used and a tiny size for the contract tests. ``fxclone models`` lists them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from fxclone.models.afx_base import THESIS_TINY, THESIS_TRAINING
from fxclone.models.cafx import CAFxConfig, CEQConfig
from fxclone.models.compressor import CompressorConfig
from fxclone.models.crafx import CRAFxConfig, CWAFxConfig
from fxclone.models.csafx import CSAFxConfig
from fxclone.models.ffwavenet import FFWaveNetConfig
from fxclone.models.hammerstein import HammersteinConfig
from fxclone.models.ir import IRConfig
from fxclone.models.kth import KTHCNNConfig, KTHRNNConfig
from fxclone.models.lfo import LFOConfig
from fxclone.models.mccool import (
    McCoolCNNConfig,
    McCoolLSTMConfig,
    McCoolMLPConfig,
)
from fxclone.models.mulaw import MuLawConfig
from fxclone.models.octaver import OctaverConfig
from fxclone.models.phaser import PhaserConfig
from fxclone.models.pitch import PitchConfig
from fxclone.models.rnn import RNNConfig
from fxclone.models.rotary import RotaryConfig
from fxclone.models.splice import SpliceConfig
from fxclone.models.tape import TapeConfig
from fxclone.models.tcn import TCNConfig
from fxclone.models.wavenet import LayerArrayConfig, WaveNetConfig


def _kth_training(segment_samples: int, batch_size: int) -> dict[str, Any]:
    """KTH's recipe: Adam, early stopping after 100 epochs without progress (K:350); short
    scored windows and validation because each output sample runs the whole window."""
    return {
        "val_seconds": 0.25,
        "segment_samples": segment_samples,
        "batch_size": batch_size,
        "learning_rate": 1e-3,
        "patience": 100,
    }


# fxclone's recipe for the NAM WaveNets: a rate of 0.008 (the trainer's default is 0.003) and
# windows of 8,192 scored samples (16,384 by default), so twice the optimiser steps for the
# same audio. At ten minutes of CPU it lowers the standard WaveNet's test ESR by 44-58 % on
# the fuzz, the amp and cabinet and mda Combo (docs/benchmarks.md). Gradients are held to 3x
# their recent median norm: without that, the high rate makes the validation ESR jump
# several-fold now and then, and over a thirty-minute budget the run ends worse than NAM's.
WAVENET_TRAINING: Mapping[str, Any] = {
    "learning_rate": 8e-3,
    "segment_samples": 8192,
    "clip_gradients": 3.0,
}


# The block-oriented distortion model has a hundred-odd parameters, each with a direct meaning
# (a gain in nepers, a corner in log-Hz, a curve weight, a tap): Adam moves them by about the
# rate per step, so the rate is several times the WaveNets' (at 0.2 training diverges, 0.05 and
# 0.1 give the same results on the mda Overdrive test). It starts as a linear filter and
# cannot fall into an all-zero output, so windows are scored each on their own from the start:
# quiet knob settings count as much as loud ones.
HAMMERSTEIN_TINY: Mapping[str, Any] = {
    "pre_taps": 4,
    "post_taps": 3,
    "tanh_biases": (0.0, 0.3),
    "context_samples": 64,
}
HAMMERSTEIN_TRAINING: Mapping[str, Any] = {
    "learning_rate": 5e-2,
    "segment_samples": 8192,
    "esr_per_window": True,
}
# With the square root as its only curve the model is identifiable, and a Levenberg-Marquardt
# finish (fxclone.polish) takes it to float rounding. The tanh dictionary is not: on a
# gain/tone/level chain the polish took two unseen settings from 5e-4 to 4e-9 and 3e-8 but
# a third from 3.4e-4 to 8e-4 (tests/test_hammerstein.py's chain), so that preset does not.
HAMMERSTEIN_SQRT_TRAINING: Mapping[str, Any] = {**HAMMERSTEIN_TRAINING, "polish": 0.25}


@dataclass(frozen=True)
class Preset:
    """A named configuration of a family."""

    name: str
    family: str
    config: Any
    description: str
    # Training settings this model's authors used (window length, batch, learning rate),
    # applied where the user's settings are silent.
    train_defaults: Mapping[str, Any] = field(default_factory=dict)
    # Config overrides giving a tiny model of the same family, for the contract tests.
    tiny: Mapping[str, Any] = field(default_factory=dict)


def _nam_small(channels: int, head: int) -> WaveNetConfig:
    """NAM's lite/feather/nano layout: 7 + 13 layers, two arrays."""
    return WaveNetConfig(
        layers=(
            LayerArrayConfig(channels=channels, head_size=head, dilations=(1, 2, 4, 8, 16, 32, 64)),
            LayerArrayConfig(
                channels=head,
                head_size=1,
                head_bias=True,
                dilations=(128, 256, 512, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512),
            ),
        )
    )


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset(
            "wavenet-standard",
            "wavenet",
            WaveNetConfig(),
            "NAM standard WaveNet: 16/8 channels, kernel 3, dilations 1..512 twice",
            train_defaults=WAVENET_TRAINING,
        ),
        Preset(
            "wavenet-lite",
            "wavenet",
            _nam_small(12, 6),
            "NAM lite WaveNet: 12/6 channels",
            train_defaults=WAVENET_TRAINING,
        ),
        Preset(
            "wavenet-feather",
            "wavenet",
            _nam_small(8, 4),
            "NAM feather WaveNet: 8/4 channels",
            train_defaults=WAVENET_TRAINING,
        ),
        Preset(
            "wavenet-nano",
            "wavenet",
            _nam_small(4, 2),
            "NAM nano WaveNet: 4/2 channels",
            train_defaults=WAVENET_TRAINING,
        ),
        Preset(
            "lstm",
            "rnn",
            RNNConfig(cell="lstm", hidden_size=32, skip=True),
            "Wright et al. LSTM, 32 units, input skip",
        ),
        Preset(
            "gru",
            "rnn",
            RNNConfig(cell="gru", hidden_size=32, skip=True),
            "GRU, 32 units, input skip",
        ),
        Preset(
            "nam-lstm",
            "rnn",
            RNNConfig(cell="lstm", hidden_size=24, num_layers=1, skip=False),
            "NAM standard LSTM: 1 layer of 24 units, linear head, no skip",
        ),
        Preset(
            "ir",
            "ir",
            IRConfig(),
            "linear impulse response, 2 s: least squares in closed form, then fine-tuned;"
            " for delays, reverbs and cabinets (FFT convolution)",
            # Adam moves every tap by about the rate per step, and a reverb tail's taps are
            # 1e-4 and smaller: fine-tuning must nudge the least-squares fit, not redo it.
            train_defaults={"learning_rate": 1e-6, "batch_size": 4},
            tiny={"seconds": 0.004, "cg_iterations": 5},
        ),
        Preset(
            "ir-nl",
            "ir",
            IRConfig(branches=(1.0, 3.0, 10.0)),
            "parallel Hammerstein: the 2-s linear response plus one per saturating branch"
            " tanh(k x) / k, k = 1, 3, 10, all fitted in closed form; for springs and tape"
            " echoes driven into saturation",
            train_defaults={"learning_rate": 1e-6, "batch_size": 4},
            tiny={"seconds": 0.004, "cg_iterations": 5, "branches": (2.0,)},
        ),
        Preset(
            "lfo",
            "lfo",
            LFOConfig(),
            "free-running oscillator driving 3 swept delay voices with feedback and an output"
            " gain: for tremolo, vibrato, chorus and flanger; rate and sweeps estimated from the"
            " wet signal, then refined on the training stream",
            tiny={
                "voices": 2,
                "echoes": 2,
                "harmonics": 2,
                "max_delay_ms": 2.0,
                "fit_seconds": 0.5,
            },
        ),
        Preset(
            "phaser",
            "phaser",
            PhaserConfig(),
            "free-running oscillator sweeping 2-12 first-order all-pass stages with feedback,"
            " mixed with the dry signal: for phasers; sweep, stages and gains read from"
            " frame-wise all-pass fits of the wet signal",
            tiny={"max_stages": 4, "harmonics": 2, "fit_seconds": 0.5},
        ),
        Preset(
            "pitch",
            "pitch",
            PitchConfig(),
            "streaming phase-vocoder pitch shifter (43-ms frames, 4x overlap) mixed with the"
            " dry signal: ratio read from log-frequency spectra, delays from cross-correlation,"
            " gains in closed form",
            tiny={"frame_ms": 8.0, "max_delay_ms": 20.0},
        ),
        Preset(
            "octaver",
            "octaver",
            OctaverConfig(),
            "analogue octaver: flip-flop octave down from a tracking filter and Schmitt"
            " trigger, rectifier octave up, dry blend; corners, threshold and gains fitted",
            tiny={"fit_seconds": 0.5},
        ),
        Preset(
            "tape",
            "tape",
            TapeConfig(),
            "tape echo: a delay wobbling with fitted wow and flutter in a saturating feedback"
            " loop with high- and low-pass filters, mixed with the dry signal; delay and wobble"
            " read from cross-correlation, the loop's values scanned",
            tiny={"max_delay_ms": 20.0, "fit_seconds": 0.5},
        ),
        Preset(
            "splice",
            "splice",
            SpliceConfig(),
            "delay-line pitch shifter / detuner: two taps sliding through a window, Hann"
            " crossfaded, mixed with the dry signal; window and slope read from the wet"
            " signal's delayed copies, refined on the waveform",
            tiny={"max_window_ms": 20.0, "fit_seconds": 0.5},
        ),
        Preset(
            "rotary",
            "rotary",
            RotaryConfig(),
            "rotary speaker (Leslie): a crossover, a drum on the low band and a horn on the"
            " high band, each turning at its own speed after a spin-up, with tremolo and a"
            " Doppler tap; speeds read from each band's level, gains by least squares",
            tiny={"crossover_taps": 64, "fit_seconds": 1.0},
        ),
        Preset(
            "hammerstein",
            "hammerstein",
            HammersteinConfig(),
            "knob-conditioned Wiener-Hammerstein distortion: 32-tap pre-filter, input gain, a"
            " weighted dictionary of static curves (linear and 3 biased tanh; signed square"
            " root and cubic on request), 2 one-pole low-passes, DC blocker, 32-tap"
            " post-filter, level; every gain, weight and log-corner affine in the knobs, so one"
            " model follows a pedal's knobs (78 parameters plus 11 per knob)",
            train_defaults=HAMMERSTEIN_TRAINING,
            tiny=HAMMERSTEIN_TINY,
        ),
        Preset(
            "hammerstein-sqrt",
            "hammerstein",
            HammersteinConfig(curves=("ssqrt",), lowpass_taper="step"),
            "the hammerstein model for power-law drives in digital plug-ins rather than"
            " clipping: a signed square root blended with the linear path as its curve, and"
            " low-passes whose step size (not corner) is log-affine in the knobs (mda"
            " Overdrive's muffle)",
            train_defaults=HAMMERSTEIN_SQRT_TRAINING,
            tiny=HAMMERSTEIN_TINY,
        ),
        Preset(
            "compressor",
            "compressor",
            CompressorConfig(),
            "feed-forward compressor: peak detector, soft-knee curve, attack/release smoother"
            " and makeup, each setting an affine function of the knobs (grey box; follows"
            " releases of seconds)",
            # Adam only refines the Levenberg-Marquardt start (and trains the optional MLP):
            # a small rate, so it cannot undo in a step what the fit found.
            train_defaults={"learning_rate": 1e-3, "esr_per_window": True},
            tiny={"memory_ms": 5.0, "fit_items": 2, "fit_iterations": 3},
        ),
        # --- seed presets: McCool, KTH, micro-TCN ---
        Preset(
            "mccool-cnn",
            "mccool-cnn",
            McCoolCNNConfig(),
            "McCool (Glasgow 2018) report CNN: 6 convs (32 ch, kernel 5) + max-pool + 3 linear;"
            " causal 64-sample window -> 1 sample (sizes ours; the report gives only the layers)",
            train_defaults={"segment_samples": 64, "batch_size": 150, "learning_rate": 1e-4},
            tiny={"window": 16, "channels": 4, "kernel_size": 3, "hidden": (8, 4)},
        ),
        Preset(
            "mccool-mlp",
            "mccool-mlp",
            McCoolMLPConfig(),
            "McCool's final code 'CNN': MLP 64-800-800-700-500-250-100-50-25-10-1 over the"
            " samples n-32..n+32 without n (32 samples look-ahead)",
            train_defaults={"segment_samples": 96, "batch_size": 150, "learning_rate": 1e-4},
            tiny={"context": 4, "widths": (8, 4)},
        ),
        Preset(
            "mccool-lstm",
            "rnn",
            RNNConfig(cell="lstm", hidden_size=800, num_layers=7, skip=False),
            "McCool (Glasgow 2018) report LSTM: 7 layers x 800 units over the sample stream,"
            " linear head",
            # Batch 4: 16 windows of 4,096 steps (2,048 of burn-in) through 7 x 800 units held
            # 21 GB of activations; 4 hold about 3 GB.
            train_defaults={
                "val_seconds": 0.25,
                "segment_samples": 2048,
                "batch_size": 4,
                "learning_rate": 1e-4,
            },
            tiny={"hidden_size": 8, "num_layers": 2},
        ),
        Preset(
            "mccool-lstm-code",
            "mccool-window-lstm",
            McCoolLSTMConfig(),
            "McCool's code LSTM: 8 layers x 800 units, one step per sample fed the 64 samples"
            " around n-32 (32 samples look-ahead)",
            train_defaults={
                "val_seconds": 0.25,
                "segment_samples": 2048,
                "batch_size": 4,
                "learning_rate": 1e-4,
            },
            tiny={"context": 4, "hidden_size": 8, "num_layers": 2},
        ),
        Preset(
            "mccool-wavenet",
            "mulaw-wavenet",
            MuLawConfig(),
            "McCool's µ-law WaveNet idea: gated WaveNet (32/64 ch, dilations 1..512 x 2) giving"
            " 256 µ-law classes from the dry input, cross-entropy; outputs the expected value",
            train_defaults={"segment_samples": 4096, "batch_size": 16, "learning_rate": 1e-3},
            tiny={"residual_channels": 4, "skip_channels": 8, "dilations": (1, 2, 4)},
        ),
        Preset(
            "mccool-wavenet-ar",
            "mulaw-wavenet",
            MuLawConfig(autoregressive=True),
            "mccool-wavenet, autoregressive: the previous output sample fed back (teacher"
            " forcing in training); generates sample by sample, slowly",
            # Its validation ESR needs generation (about 25x slower than real time on one
            # core), so it is taken on the first second of each validation item.
            train_defaults={
                "val_seconds": 1.0,
                "segment_samples": 4096,
                "batch_size": 16,
                "learning_rate": 1e-3,
            },
            tiny={"residual_channels": 4, "skip_channels": 8, "dilations": (2,)},
        ),
        Preset(
            "kth-lstm",
            "kth-rnn",
            KTHRNNConfig(cell="lstm", hidden_size=384, window=1024),
            "del Tejo Catala & Masia Fuster (KTH 2017) LSTM: 384 units run over the last 1,024"
            " samples for each output sample, tanh output",
            train_defaults=_kth_training(segment_samples=16, batch_size=16),
            tiny={"hidden_size": 4, "window": 16},
        ),
        Preset(
            "kth-lstm-reduced",
            "kth-rnn",
            KTHRNNConfig(cell="lstm", hidden_size=160, window=512),
            "KTH 2017 reduced LSTM: 160 units over the last 512 samples, tanh output",
            train_defaults=_kth_training(segment_samples=64, batch_size=32),
            tiny={"hidden_size": 4, "window": 16},
        ),
        Preset(
            "kth-gru",
            "kth-rnn",
            KTHRNNConfig(cell="gru", hidden_size=160, window=512),
            "KTH 2017 GRU: 160 units over the last 512 samples, tanh output",
            train_defaults=_kth_training(segment_samples=64, batch_size=32),
            tiny={"hidden_size": 4, "window": 16},
        ),
        Preset(
            "kth-cnn",
            "kth-cnn",
            KTHCNNConfig(),
            "KTH 2017 CNN: 4 x [strided conv, dilated conv, max-pool] (128..16 filters, kernels"
            " 128..16, 'same' padding), FC 8-4-2-1 added to the last input sample; 1,024 window",
            train_defaults=_kth_training(segment_samples=32, batch_size=8),
            tiny={"window": 64, "filters": 8, "kernel_size": 8},
        ),
        Preset(
            "tcn",
            "tcn",
            TCNConfig(),
            "Steinmetz & Reiss micro-TCN uTCN-300, causal: 4 blocks, kernel 13, dilation growth"
            " 10, 32 channels, FiLM on the knobs (receptive field 13,333 samples)",
            train_defaults={
                "segment_samples": 65536,
                "batch_size": 32,
                "learning_rate": 3e-4,
                "mrstft_weight": 1.0,
            },
            tiny={"blocks": 3, "kernel_size": 3, "dilation_growth": 4, "channels": 4},
        ),
        Preset(
            "tcn-300",
            "tcn",
            TCNConfig(blocks=10, kernel_size=15, dilation_growth=2),
            "Steinmetz & Reiss TCN-300, causal: 10 blocks, kernel 15, dilations 1..512, 32"
            " channels, FiLM on the knobs (receptive field 14,323 samples)",
            train_defaults={
                "segment_samples": 65536,
                "batch_size": 32,
                "learning_rate": 3e-4,
                "mrstft_weight": 1.0,
            },
            tiny={"blocks": 4, "kernel_size": 3, "channels": 4},
        ),
        # --- end seed presets ---
        # --- thesis presets: Martinez Ramirez ---
        # Martinez Ramirez (QMUL 2020) thesis models, native 16 kHz (resampled above it).
        # Training as the thesis code: Adam 1e-4, no decay, patience 25; one window per
        # batch, of 3 x (latency + the samples one thesis batch scored) samples, i.e. sized
        # at 48 kHz (docs/models-thesis.md).
        Preset(
            "ceq",
            "ceq",
            CEQConfig(),
            "Martinez Ramirez (QMUL 2020) CEQ, thesis Ch. 4: EQ matching with an adaptive"
            " front-end, per-channel latent FCs and a tied deconvolution; 1,024-sample Hann"
            " frames at hop 256, KL + spectral MSE + 0.1 MAE loss; 561,473 parameters",
            train_defaults={**THESIS_TRAINING, "segment_samples": 3 * (64000 + 1023)},
            tiny={**THESIS_TINY, "hop_samples": 8},
        ),
        Preset(
            "cafx",
            "cafx",
            CAFxConfig(),
            "Martinez Ramirez (QMUL 2020) CAFx, thesis Ch. 5/7 and its code: CEQ's front-end"
            " and latent plus a dense/SAAF back-end for nonlinear effects; 4,096-sample"
            " frames at hop 2,048, MAE; 604,545 parameters",
            train_defaults={**THESIS_TRAINING, "segment_samples": 3 * (40960 + 4095)},
            tiny={**THESIS_TINY, "hidden": (4, 2)},
        ),
        Preset(
            "wavenet-ff",
            "ffwavenet",
            FFWaveNetConfig(),
            "Martinez Ramirez (QMUL 2020) feedforward WaveNet (after Rethage et al.), thesis"
            " Ch. 7: non-causal gated WaveNet, 16 channels, dilations 1..128 twice, 2048/256"
            " output convs, 5,118 samples in -> 4,096 out at hop 2,048, MAE; 1,707,585"
            " parameters",
            train_defaults={**THESIS_TRAINING, "segment_samples": 3 * (40960 + 4606)},
            tiny={
                "frame_samples": 32,
                "hop_samples": 16,
                "channels": 4,
                "dilations": (1, 2),
                "stacks": 1,
                "final": (8, 4),
            },
        ),
        Preset(
            "crafx",
            "crafx",
            CRAFxConfig(),
            "Martinez Ramirez (QMUL 2020) CRAFx, thesis Ch. 6: front-end over +-4 context"
            " frames, Bi-LSTM latent (64/32/16), DNN-SAAF + SE back-end for modulation effects"
            " and long memory; 4,096-sample frames, MAE; 275,073 parameters",
            train_defaults={**THESIS_TRAINING, "segment_samples": 3 * (40960 + 12287)},
            tiny={**THESIS_TINY, "lstm_units": (4, 2), "dnn_units": (4, 2)},
        ),
        Preset(
            "cwafx",
            "cwafx",
            CWAFxConfig(),
            "Martinez Ramirez (QMUL 2020) CWAFx, thesis Ch. 6: CRAFx with a latent WaveNet"
            " (dilations 1..64 twice, 32 channels) in place of the Bi-LSTMs; MAE; 205,057"
            " parameters",
            train_defaults={**THESIS_TRAINING, "segment_samples": 3 * (40960 + 12287)},
            tiny={
                **THESIS_TINY,
                "dnn_units": (4, 2),
                "wavenet_channels": 4,
                "dilations": (1, 2),
                "stacks": 1,
                "final": (4, 4),
            },
        ),
        Preset(
            "csafx",
            "csafx",
            CSAFxConfig(),
            "Martinez Ramirez (QMUL 2020) CSAFx, thesis Ch. 8 and its plate/spring code:"
            " +-4 context frames, Bi-LSTM branches for envelopes and a learned sparse FIR"
            " (512 taps per frame) correlated with the filter bank, SE-LSTM back-end;"
            " pre-emphasised MAE + 1e-4 dB-spectrogram MSE; 410,977 parameters",
            train_defaults={**THESIS_TRAINING, "segment_samples": 3 * (40960 + 12287)},
            tiny={
                **THESIS_TINY,
                "dnn_units": (4, 2),
                "shared_units": 4,
                "sfir_units": (4, 2),
                "envelope_units": 2,
                "sfir_taps": 8,
            },
        ),
        # --- end thesis presets ---
    )
}
