"""The KTH models (del Tejo Catalá & Masiá Fuster 2017; MODELS.md §3): window -> sample
networks for a 440 Hz high-pass task at 44.1 kHz.

Each maps the last W input samples to one output sample, ``y[n] = f(x[n-W+1 .. n])``
(K:358: samples 1..1024 -> y[1024]); nothing carries over between windows, so every output
sample runs the whole network over its window (K:418: 0.8 ms per sample on a GPU).

* :class:`KTHRecurrent` — an LSTM (§3.1: 384 units, 1,024-sample window; §3.2 reduced: 160
  units, 512) or a GRU (§3.3: sizes implied equal to the reduced LSTM's), run from a zero state
  over the window; the output is ``tanh(Linear(h))`` at the last step (K:360). One layer: the
  layer count is unstated and "384 hidden layers" (K:399) reads as 384 units. The cells are
  TensorFlow's (K:385): one bias per gate, so the recurrent bias of PyTorch's cell is frozen;
  for the LSTM it holds TensorFlow's constant ``forget_bias = 1.0``, and the GRU's gate biases
  start at TensorFlow's 1.0. PyTorch's GRU applies the reset gate after the recurrent matrix
  product (the cuDNN form) where Chung et al. (K:227-243) apply it before; same size.
* :class:`KTHCNN` — §3.4: four groups of conv A (strided) -> conv B (dilated) -> max-pool,
  tanh after every conv, then 4 fully connected layers 8 -> 4 -> 2 -> 1 whose output is added
  to the last input sample. With 'valid' padding a 1,024-sample window dies in group 3
  (MODELS.md §3.4), so every conv and pool pads TensorFlow's 'same' way (output length
  ``ceil(n / stride)``, the odd pad sample on the right; pools pad with -inf): a 1,024-sample
  window then ends in 16 filters x 1 sample. Padding inside a window of past samples keeps
  the model causal. Max pooling and tanh between the FC layers are our choices (unstated).

Knob values enter as constant extra input channels (the LSTM's "+1 input size" of K:509-513).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from fxclone.models.base import config_from_dict
from fxclone.models.windowed import WindowedModel, knob_channels


@dataclass(frozen=True)
class KTHRNNConfig:
    """Cell (``lstm``/``gru``), units, window length W (samples) and stacked layers."""

    cell: str = "lstm"
    hidden_size: int = 384
    window: int = 1024
    num_layers: int = 1

    def __post_init__(self) -> None:
        if self.cell not in ("lstm", "gru"):
            raise ValueError(f"cell must be 'lstm' or 'gru', not {self.cell!r}")
        if min(self.hidden_size, self.window, self.num_layers) < 1:
            raise ValueError("hidden_size, window and num_layers must be positive")

    @classmethod
    def from_dict(cls, data: dict) -> KTHRNNConfig:
        return config_from_dict(cls, data, "KTH recurrent config")


class KTHRecurrent(WindowedModel):
    """``y[n] = tanh(w . h_W + b)``, ``h_W`` the last state of the RNN run over the window."""

    family = "kth-rnn"
    config_class = KTHRNNConfig

    def __init__(self, config: KTHRNNConfig, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        rnn_class = nn.LSTM if config.cell == "lstm" else nn.GRU
        inputs = self.channels + self.n_knobs
        self.rnn = rnn_class(inputs, config.hidden_size, config.num_layers, batch_first=True)
        self.head = nn.Linear(config.hidden_size, self.channels)
        h = config.hidden_size
        with torch.no_grad():
            for layer in range(config.num_layers):
                recurrent_bias = getattr(self.rnn, f"bias_hh_l{layer}")
                recurrent_bias.zero_().requires_grad_(False)
                if config.cell == "lstm":  # PyTorch gate order i, f, g, o
                    recurrent_bias[h : 2 * h] = 1.0
                else:  # r, z, n: TensorFlow starts the gate biases at 1
                    getattr(self.rnn, f"bias_ih_l{layer}")[: 2 * h] = 1.0

    @property
    def window_samples(self) -> int:
        return self.config.window

    @property
    def feature_width(self) -> int:
        return self.config.hidden_size

    def window_net(self, windows: Tensor, knobs: Tensor) -> Tensor:
        seq = knob_channels(windows, knobs).transpose(1, 2)  # (N, W, C + n_knobs)
        out, _ = self.rnn(seq)
        return torch.tanh(self.head(out[:, -1]))


@dataclass(frozen=True)
class KTHCNNConfig:
    """§3.4: group 1 has ``filters`` filters of ``kernel_size``; each later group halves both
    and doubles conv A's stride, conv B's dilation and the pool size and stride (1, 2, 4, 8).
    ``fc`` are the hidden FC widths; the last FC layer outputs one value per channel.
    The window (1,024, as the main LSTM's) is our choice; the card leaves it unstated."""

    window: int = 1024
    filters: int = 128
    kernel_size: int = 128
    groups: int = 4
    fc: tuple[int, ...] = (8, 4, 2)

    def __post_init__(self) -> None:
        if self.groups < 1 or self.window < 1 or min(self.fc, default=1) < 1:
            raise ValueError("groups, window and the fc widths must be positive")
        if (self.filters >> (self.groups - 1)) < 1 or (self.kernel_size >> (self.groups - 1)) < 1:
            raise ValueError(
                f"filters ({self.filters}) and kernel_size ({self.kernel_size}) halve in each "
                f"of {self.groups} groups; both must be at least 2 ** (groups - 1)"
            )

    @classmethod
    def from_dict(cls, data: dict) -> KTHCNNConfig:
        return config_from_dict(cls, data, "KTH CNN config")


def same_padding(length: int, kernel: int, stride: int, dilation: int) -> tuple[int, int, int]:
    """TensorFlow 'same' padding: ``(left, right, output length)`` for a conv or pool."""
    out = -(-length // stride)
    total = max((out - 1) * stride + (kernel - 1) * dilation + 1 - length, 0)
    return total // 2, total - total // 2, out


class _SameConv(nn.Module):
    """Conv1d + tanh on a fixed input length, padded TensorFlow's 'same' way."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, dilation: int, n: int):
        super().__init__()
        self.conv = nn.Conv1d(cin, cout, kernel, stride=stride, dilation=dilation)
        left, right, self.length = same_padding(n, kernel, stride, dilation)
        self.pad = (left, right)

    def forward(self, x: Tensor) -> Tensor:
        return torch.tanh(self.conv(F.pad(x, self.pad)))


class KTHCNN(WindowedModel):
    """Window ``(C, W)`` -> 4 x [conv A -> conv B -> max-pool] -> FC 8-4-2-C, + ``x[n]``."""

    family = "kth-cnn"
    config_class = KTHCNNConfig

    def __init__(self, config: KTHCNNConfig, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        convs: list[_SameConv] = []
        self.pools: list[tuple[int, tuple[int, int]]] = []  # (size = stride, padding)
        width, length = self.channels + self.n_knobs, config.window
        for g in range(config.groups):
            f, k, s = config.filters >> g, config.kernel_size >> g, 1 << g
            convs += [_SameConv(width, f, k, s, 1, length)]
            convs += [_SameConv(f, f, k, 1, s, convs[-1].length)]
            left, right, length = same_padding(convs[-1].length, s, s, 1)
            self.pools.append((s, (left, right)))
            width = f
        self.convs = nn.ModuleList(convs)
        self._convs = convs  # typed view of the same modules
        sizes = (width * length, *config.fc, self.channels)
        self.fc = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:], strict=True))

    @property
    def window_samples(self) -> int:
        return self.config.window

    @property
    def feature_width(self) -> int:
        return self.config.filters

    def window_net(self, windows: Tensor, knobs: Tensor) -> Tensor:
        h = knob_channels(windows, knobs)
        for g, (size, pad) in enumerate(self.pools):
            h = self._convs[2 * g + 1](self._convs[2 * g](h))
            if size > 1:
                h = F.max_pool1d(F.pad(h, pad, value=float("-inf")), size, size)
        h = h.flatten(1)
        for i, layer in enumerate(self.fc):
            h = layer(h) if i == len(self.fc) - 1 else torch.tanh(layer(h))
        return windows[:, :, -1] + h  # the residual of K:314


__all__ = ["KTHCNN", "KTHCNNConfig", "KTHRNNConfig", "KTHRecurrent", "same_padding"]
