"""McCool's models (Glasgow 2018; MODELS.md §2): the report's CNN, his code's MLP, and his
code's LSTM over 64-sample windows. (The report's 7 x 800 LSTM over the sample stream is the
``rnn`` family; see the ``mccool-lstm`` preset.)

* :class:`McCoolCNN` — the report's distortion CNN (M4:312): 6 conv layers with ReLU, one
  max-pool, 3 linear layers, a window of samples -> one output sample. Kernel, channels,
  window and pool size are unstated (MODELS.md §2.1); ours are in :class:`McCoolCNNConfig`.
* :class:`McCoolMLP` — the final "CNN" of his code (net.py:90-120, MODELS.md §2.5): the 64
  samples at ``i-32 .. i-1`` and ``i+1 .. i+32``, sample i itself left out, enter a
  Conv1d(64 -> 800, kernel 1) stack as channels of length 1, which is an MLP
  64-800-800-700-500-250-100-50-25-10-1 with ReLU between. It looks 32 samples ahead, so its
  output at n estimates the wet sample n - 32 (latency 32).
* :class:`McCoolWindowLSTM` — his code's ``nn.LSTM(64, 800, 8)`` + ``Linear(800, 1)`` fed the
  same 64-sample window at every time step (MODELS.md §2.5). His code read a minibatch of
  windows as one short sequence and never carried the hidden state on; a streaming model must
  carry it, so here the LSTM steps once per sample over the whole stream, its input at step n
  the window around n - 32 (latency 32), its state carried from block to block.

Knob values are appended to the flattened window (MLP, LSTM) or as constant channels (CNN).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from fxclone.models.base import EffectModel, State, broadcast_knobs, config_from_dict
from fxclone.models.windowed import WindowedModel, knob_channels, sliding_windows


def _mlp(sizes: tuple[int, ...]) -> nn.Sequential:
    """Linear layers ``sizes[0] -> ... -> sizes[-1]`` with ReLU between (not after the last)."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def _he_init(layers: nn.Module) -> None:
    """He initialisation for layers followed by ReLU (our choice; the seeds give none).
    PyTorch's default scales each layer's output variance by about 1/6 after a ReLU, so six
    convolutions leave the input's influence on the output near 1e-5 at the start."""
    for m in layers.modules():
        if isinstance(m, (nn.Linear, nn.Conv1d)):
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def _without_centre(windows: Tensor, context: int) -> Tensor:
    """``(..., C, 2 * context + 1)`` -> ``(..., C * 2 * context)``: the samples before and after
    the centre, the centre dropped, in McCool's order (data.py:21-50)."""
    both = torch.cat([windows[..., :context], windows[..., context + 1 :]], dim=-1)
    return both.flatten(-2)


@dataclass(frozen=True)
class McCoolCNNConfig:
    """The report's CNN (M4:312). Only the layer counts are the report's: the window (64, the
    window size of McCool's final code, globals.py:6, here causal), 32 channels, kernel 5,
    'valid' convolutions, pool 2 and the hidden widths 64 and 16 are our choices (MODELS.md
    §2.1 leaves them unstated)."""

    window: int = 64
    channels: int = 32
    kernel_size: int = 5
    conv_layers: int = 6
    pool: int = 2
    hidden: tuple[int, ...] = (64, 16)

    def __post_init__(self) -> None:
        if min(self.channels, self.kernel_size, self.conv_layers, self.pool) < 1:
            raise ValueError("channels, kernel_size, conv_layers and pool must be positive")
        if self.window - self.conv_layers * (self.kernel_size - 1) < self.pool:
            raise ValueError(
                f"a {self.window}-sample window is too short for {self.conv_layers} 'valid' "
                f"convolutions of kernel {self.kernel_size} and a pool of {self.pool}"
            )

    @classmethod
    def from_dict(cls, data: dict) -> McCoolCNNConfig:
        return config_from_dict(cls, data, "McCool CNN config")


class McCoolCNN(WindowedModel):
    """Conv(k)-ReLU x 6 -> MaxPool -> Linear-ReLU-Linear-ReLU-Linear: W samples -> 1 sample.

    Shapes per window (defaults, mono): (1, 64) -> 6 convs (32, 40) -> pool (32, 20) -> 640
    -> 64 -> 16 -> 1. Causal: the window ends at the output index."""

    family = "mccool-cnn"
    config_class = McCoolCNNConfig

    def __init__(self, config: McCoolCNNConfig, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        convs: list[nn.Module] = []
        width = self.channels + self.n_knobs
        for _ in range(config.conv_layers):
            convs += [nn.Conv1d(width, config.channels, config.kernel_size), nn.ReLU()]
            width = config.channels
        self.convs = nn.Sequential(*convs, nn.MaxPool1d(config.pool))
        length = (config.window - config.conv_layers * (config.kernel_size - 1)) // config.pool
        self.fc = _mlp((config.channels * length, *config.hidden, self.channels))
        _he_init(self.convs)
        _he_init(self.fc[:-1])

    @property
    def window_samples(self) -> int:
        return self.config.window

    @property
    def feature_width(self) -> int:
        return self.config.channels

    def window_net(self, windows: Tensor, knobs: Tensor) -> Tensor:
        return self.fc(self.convs(knob_channels(windows, knobs)).flatten(1))


@dataclass(frozen=True)
class McCoolMLPConfig:
    """McCool's final code (net.py:90-120): ``context`` samples each side of the estimated
    sample, which is left out, and the layer widths after the 64 inputs."""

    context: int = 32
    widths: tuple[int, ...] = (800, 800, 700, 500, 250, 100, 50, 25, 10)

    def __post_init__(self) -> None:
        if self.context < 1 or not self.widths or min(self.widths) < 1:
            raise ValueError("context and every width must be positive")

    @classmethod
    def from_dict(cls, data: dict) -> McCoolMLPConfig:
        return config_from_dict(cls, data, "McCool MLP config")


class McCoolMLP(WindowedModel):
    """MLP over the ``2 * context`` samples around n - context, excluding that sample.

    The code's Conv1d(k=1) layers on a length-1 input are Linear layers (same weights); its
    MaxPool1d(1) is the identity and is left out."""

    family = "mccool-mlp"
    config_class = McCoolMLPConfig

    def __init__(self, config: McCoolMLPConfig, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        inputs = self.channels * 2 * config.context + self.n_knobs
        self.net = _mlp((inputs, *config.widths, self.channels))
        _he_init(self.net[:-1])

    @property
    def window_samples(self) -> int:
        return 2 * self.config.context + 1

    @property
    def latency_samples(self) -> int:
        return self.config.context

    @property
    def feature_width(self) -> int:
        # One window's activations (the sum of the widths) as a multiple of W.
        return max(1, sum(self.config.widths) // self.window_samples)

    def window_net(self, windows: Tensor, knobs: Tensor) -> Tensor:
        return self.net(torch.cat([_without_centre(windows, self.config.context), knobs], 1))


@dataclass(frozen=True)
class McCoolLSTMConfig:
    """McCool's code LSTM (net.py:69-88): 8 layers of 800 over 64-sample windows."""

    context: int = 32
    hidden_size: int = 800
    num_layers: int = 8

    def __post_init__(self) -> None:
        if min(self.context, self.hidden_size, self.num_layers) < 1:
            raise ValueError("context, hidden_size and num_layers must be positive")

    @classmethod
    def from_dict(cls, data: dict) -> McCoolLSTMConfig:
        return config_from_dict(cls, data, "McCool window LSTM config")


class McCoolWindowLSTM(EffectModel):
    """Stacked LSTM stepping once per sample; its input at step n is the window of
    ``2 * context`` samples around n - context (centre excluded) plus the knob values.

    Streaming state: the last ``2 * context`` input samples ``(batch, channels, 2 * context)``
    and the LSTM's ``(h, c)``, each ``(num_layers, batch, hidden_size)``."""

    family = "mccool-window-lstm"
    config_class = McCoolLSTMConfig

    def __init__(self, config: McCoolLSTMConfig, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        inputs = self.channels * 2 * config.context + self.n_knobs
        self.rnn = nn.LSTM(inputs, config.hidden_size, config.num_layers, batch_first=True)
        self.head = nn.Linear(config.hidden_size, self.channels)

    @property
    def receptive_field(self) -> int:
        """0: the recurrent state makes the memory unbounded."""
        return 0

    @property
    def latency_samples(self) -> int:
        return self.config.context

    def init_state(self, batch_size: int) -> State:
        p, cfg = next(self.parameters()), self.config
        past = p.new_zeros(batch_size, self.channels, 2 * cfg.context)
        hidden = p.new_zeros(cfg.num_layers, batch_size, cfg.hidden_size)
        return (past, hidden, hidden.clone())

    def step(self, x: Tensor, knobs: Tensor, state: State) -> tuple[Tensor, State]:
        past, h, c = state
        context = self.config.context
        full = torch.cat([past, x], dim=2)
        new_past = full[:, :, full.shape[2] - 2 * context :]
        if x.shape[2] == 0:
            return x.new_zeros(x.shape), (new_past, h, c)
        frames = _without_centre(sliding_windows(full, 2 * context + 1), context)  # (B, T, F)
        if self.n_knobs:
            frames = torch.cat([frames, broadcast_knobs(knobs, x.shape[2]).transpose(1, 2)], 2)
        out, (h, c) = self.rnn(frames, (h, c))
        return self.head(out).transpose(1, 2), (new_past, h, c)


__all__ = [
    "McCoolCNN",
    "McCoolCNNConfig",
    "McCoolLSTMConfig",
    "McCoolMLP",
    "McCoolMLPConfig",
    "McCoolWindowLSTM",
]
