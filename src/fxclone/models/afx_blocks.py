"""Building blocks shared by the Martínez Ramírez thesis models (MODELS.md §0).

Tensors are channels-first, ``(batch, channels, time)``, where the thesis' Keras code is
channels-last ``(time, channels)``: a Keras "Dense over channels" is :class:`ChannelDense`,
a "Dense along time" is ``nn.Linear`` on the last axis. Initialisers follow the code
(MODELS.md §0.9): lecun-uniform for the front-end convs, glorot-uniform for dense layers and
WaveNet convs, zero biases.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from fxclone.models.afx_lstm import KerasLSTM


def glorot_uniform_(w: Tensor, fan_in: int, fan_out: int) -> Tensor:
    """Keras' glorot_uniform in place: U(-a, a), ``a = sqrt(6 / (fan_in + fan_out))``."""
    limit = (6.0 / (fan_in + fan_out)) ** 0.5
    with torch.no_grad():
        return w.uniform_(-limit, limit)


def lecun_uniform_(w: Tensor, fan_in: int) -> Tensor:
    """Keras' lecun_uniform in place: U(-a, a), ``a = sqrt(3 / fan_in)``."""
    limit = (3.0 / fan_in) ** 0.5
    with torch.no_grad():
        return w.uniform_(-limit, limit)


def same_pad(x: Tensor, kernel_size: int, dilation: int = 1) -> Tensor:
    """TensorFlow's ``same`` padding on the last axis: the odd sample goes on the right."""
    total = dilation * (kernel_size - 1)
    return F.pad(x, (total // 2, total - total // 2))


def fft_size(n: int) -> int:
    """The smallest ``2^a 3^b 5^c >= n`` (sizes the FFT computes fastest)."""
    best = 1 << max(0, (n - 1).bit_length())
    p5 = 1
    while p5 < best:
        p35 = p5
        while p35 < best:
            p = p35
            while p < n:
                p *= 2
            best = min(best, p)
            p35 *= 3
        p5 *= 5
    return best


def correlate(x: Tensor, h: Tensor, left: int) -> Tensor:
    """``y[n] = sum_k x[n + k - left] h[k]`` for ``n < T``, ``x (..., T)`` zero outside, filters
    ``h (..., K)`` broadcast against ``x``: a 'same'-padded conv (TF/PyTorch cross-correlation)
    by FFT. Equal to the direct sum to float precision, and on a CPU several times faster to
    train than a depthwise or per-example ``conv1d`` with long kernels."""
    t, k = x.shape[-1], h.shape[-1]
    n = fft_size(max(t + left, t + k - 1 - left))
    c = torch.fft.irfft(torch.fft.rfft(x, n) * torch.fft.rfft(h, n).conj(), n)  # lag l at l mod n
    return torch.cat([c[..., n - left :], c[..., : t - left]], dim=-1)


def glorot_conv(cin: int, cout: int, kernel_size: int, dilation: int = 1) -> nn.Conv1d:
    """``nn.Conv1d`` with Keras' initialisers: glorot-uniform kernel, zero bias."""
    conv = nn.Conv1d(cin, cout, kernel_size, dilation=dilation)
    glorot_uniform_(conv.weight, kernel_size * cin, kernel_size * cout)
    return zero_bias(conv)


def zero_bias(conv: nn.Conv1d) -> nn.Conv1d:
    """Keras' zero bias initialiser."""
    assert conv.bias is not None
    nn.init.zeros_(conv.bias)
    return conv


class ChannelDense(nn.Module):
    """Keras ``Dense(out)`` on a ``(time, in)`` tensor: ``(N, in, T) -> (N, out, T)``."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(glorot_uniform_(torch.empty(cout, cin), cin, cout))
        self.bias = nn.Parameter(torch.zeros(cout))

    def forward(self, x: Tensor) -> Tensor:
        # baddbmm: no copies of the channels-first input (matmul would make them).
        w = self.weight.expand(x.shape[0], -1, -1)
        return torch.baddbmm(self.bias[None, :, None], w, x)


def time_dense(cin: int, cout: int) -> nn.Linear:
    """Keras ``Dense`` applied along time (the thesis' transposed FC layers)."""
    layer = nn.Linear(cin, cout)
    glorot_uniform_(layer.weight, cin, cout)
    nn.init.zeros_(layer.bias)
    return layer


class FrontEnd(nn.Module):
    """Adaptive front-end and its tied deConv1D (MODELS.md §0.2-0.4).

    ``encode``: ``X1 = Conv1D(x)`` (k=64, the residual R), ``X2 = softplus(Conv1D-Local(|X1|))``
    (depthwise, k=128), ``Z = MaxPool(X2)`` with pool = stride = ``pool``. ``decode`` is the
    deConv1D: the correlation of ``X1hat`` with the *same* kernel W1, in and out channels
    swapped and not time-flipped, plus one trainable bias per audio channel (the "1" of every
    Table C.1 total); W1 gets gradients from both ends."""

    def __init__(
        self, channels: int, filters: int, kernel_size: int, local_kernel_size: int, pool: int
    ) -> None:
        super().__init__()
        self.conv = nn.Conv1d(channels, filters, kernel_size)
        self.local = nn.Conv1d(filters, filters, local_kernel_size, groups=filters)
        self.deconv_bias = nn.Parameter(torch.zeros(channels))
        lecun_uniform_(self.conv.weight, kernel_size * channels)
        lecun_uniform_(self.local.weight, local_kernel_size)
        zero_bias(self.conv)
        zero_bias(self.local)
        self.pool = pool

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``x (N, channels, T)`` -> ``R (N, filters, T)``, ``X2`` (same) and
        ``Z (N, filters, T / pool)``."""
        r = self.conv(same_pad(x, self.conv.kernel_size[0]))
        k = self.local.kernel_size[0]
        x2 = correlate(r.abs(), self.local.weight[:, 0], (k - 1) // 2)
        bias = self.local.bias
        assert bias is not None
        x2 = F.softplus(x2 + bias[:, None])
        return r, x2, F.max_pool1d(x2, self.pool)

    def decode(self, x1: Tensor) -> Tensor:
        """``X1hat (N, filters, T)`` -> audio ``(N, channels, T)``:
        ``y_o[n] = sum_c sum_k X1hat_c[n + k - left] W1[c, o, k] + b_o``.

        Computed as one matrix product and an overlap-add (``fold``) of its rows, which on a
        CPU trains several times faster than ``conv1d`` with ``filters`` input channels."""
        w = self.conv.weight  # (filters, channels, K)
        filters, channels, k = w.shape
        t = x1.shape[2]
        w = w.flip(2).permute(1, 2, 0).reshape(channels * k, filters)
        rows = torch.bmm(w.expand(x1.shape[0], -1, -1), x1)
        out = F.fold(rows, output_size=(1, t + k - 1), kernel_size=(1, k))
        start = k - 1 - (k - 1) // 2  # out[n + start] collects output sample n
        y = out.view(x1.shape[0], channels, t + k - 1)[:, :, start : start + t]
        return y + self.deconv_bias[:, None]

    def autoencode(self, x: Tensor) -> Tensor:
        """The pretraining network (MODELS.md §0.10 step 1): front-end, masked unpooling,
        ``R x``, deConv1D. ``(N, channels, T)`` -> ``(N, channels, T)``."""
        r, x2, z = self.encode(x)
        return self.decode(r * masked_unpool(z, x2, self.pool))


def unpool(z: Tensor, pool: int) -> Tensor:
    """Nearest-neighbour upsampling on the last axis (Keras ``UpSampling1D``)."""
    return z.repeat_interleave(pool, dim=-1)


def masked_unpool(z: Tensor, x2: Tensor, pool: int) -> Tensor:
    """Pretraining's unpooling (MODELS.md §0.3): each maximum goes back only where ``X2``
    reaches it (its argmax positions, ties included); zero elsewhere."""
    up = unpool(z, pool)
    return torch.where(x2 >= up, up, torch.zeros_like(up))


class SAAF(nn.Module):
    """Smooth adaptive activation function, per channel (MODELS.md §0.5; the code's form).

    ``f_c(x) = w[S, c] x + 100 sum_s w[s, c] B_s(x)`` over ``S = 12`` segments
    ``[a_s, a_s + 1/60]``, ``a_s = -0.2 + s/30``, with the quadratic spline basis
    ``B_s(x) = 0.5 clamp(x - a_s, 0, 1/60)^2 + (1/60) relu(x - a_s - 1/60)``.
    Evaluated by table look-up rather than a sum over segments (the segments are disjoint, so
    ``x`` lies in the quadratic part of at most one and past the end of the others), which
    keeps the cost and memory of one elementwise pass; ``(13, C)`` weights, N(0, 0.05^2)."""

    SEGMENTS = 12
    START = -0.2
    STRIDE = 1.0 / 30.0
    WIDTH = 1.0 / 60.0
    SCALE = 100.0

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(0.05 * torch.randn(self.SEGMENTS + 1, channels))

    def forward(self, x: Tensor) -> Tensor:
        """``(N, channels, T)`` -> same shape."""
        s, c = self.SEGMENTS, x.shape[1]
        w = self.weight[:s].T  # (C, S)
        seg_index = torch.arange(s, dtype=x.dtype, device=x.device)
        ends = self.START + self.WIDTH + self.STRIDE * seg_index  # b_s
        zero = w.new_zeros(c, 1)
        cum_w = torch.cat([zero, w.cumsum(1)], dim=1)  # (C, S + 1): segments passed
        cum_wb = torch.cat([zero, (w * ends).cumsum(1)], dim=1)
        slope = self.SCALE * self.WIDTH * cum_w + self.weight[s][:, None]
        offset = self.SCALE * (0.5 * self.WIDTH**2 * cum_w - self.WIDTH * cum_wb)
        channel = torch.arange(c, device=x.device)[:, None] * (s + 1)
        with torch.no_grad():
            u = (x - self.START) / self.STRIDE
            seg = torch.floor(u)
            passed = torch.clamp(torch.floor(u - self.WIDTH / self.STRIDE) + 1, 0, s).long()
            inside = (seg >= 0) & (seg < s) & (u - seg < self.WIDTH / self.STRIDE)
            seg = seg.clamp(0, s - 1).long()
        idx = passed + channel
        y = x * slope.flatten()[idx] + offset.flatten()[idx]
        rise = (x - self.START - self.STRIDE * seg.to(x.dtype)) * inside
        quad = (0.5 * self.SCALE) * torch.cat([w, zero], dim=1).flatten()[seg + channel]
        return y + quad * rise * rise


class DNNSAAF(nn.Module):
    """Dense layers over channels then a SAAF (MODELS.md §0.6): ``hidden`` widths with
    ``activation`` after each, a linear layer back to ``channels``, then the SAAF."""

    def __init__(self, channels: int, hidden: tuple[int, ...], activation: str) -> None:
        super().__init__()
        widths = (channels, *hidden, channels)
        pairs = zip(widths[:-1], widths[1:], strict=True)
        self.layers = nn.ModuleList(ChannelDense(a, b) for a, b in pairs)
        self.act = {"tanh": torch.tanh, "relu": torch.relu}[activation]
        self.saaf = SAAF(channels)

    def forward(self, x: Tensor) -> Tensor:
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = self.act(x)
        return self.saaf(x)


class SqueezeExcite(nn.Module):
    """SE block (MODELS.md §0.7): ``sigmoid(W2 relu(W1 mean_t|X| + b1) + b2)``; with
    ``lstm`` the SE-LSTM of §0.7b (an LSTM of C relu units over the one-step sequence
    ``mean_t|X|`` first). ``(N, C, T)`` -> gains ``(N, C, 1)``."""

    def __init__(
        self, channels: int, ratio: int = 16, lstm: bool = False, dropout: float = 0.0
    ) -> None:
        super().__init__()
        self.lstm = (
            KerasLSTM(
                channels, channels, activation="relu", dropout=dropout, recurrent_dropout=dropout
            )
            if lstm
            else None
        )
        self.squeeze = time_dense(channels, ratio * channels)
        self.excite = time_dense(ratio * channels, channels)

    def forward(self, x: Tensor) -> Tensor:
        s = x.abs().mean(dim=2)
        if self.lstm is not None:
            s = self.lstm(s[:, None])[:, 0]
        return torch.sigmoid(self.excite(torch.relu(self.squeeze(s))))[:, :, None]


class FiLM(nn.Module):
    """Knob conditioning of a latent: ``z (1 + gamma(knobs)) + beta(knobs)`` per channel.
    Exists only when a model has knobs, so the thesis counts hold without them."""

    def __init__(self, n_knobs: int, channels: int) -> None:
        super().__init__()
        self.linear = nn.Linear(n_knobs, 2 * channels)

    def forward(self, z: Tensor, knobs: Tensor) -> Tensor:
        """``z (B, F, C, S)``, ``knobs (B, n_knobs)`` -> ``z`` modulated, same shape."""
        gamma, beta = self.linear(knobs)[:, None, :, None].chunk(2, dim=2)
        return z * (1 + gamma) + beta


class GatedStack(nn.Module):
    """WaveNet residual blocks with ``same`` padding (MODELS.md §3, §5): per dilation ``d``,
    ``a = tanh(h[:C]) sigmoid(h[C:])`` of a dilated conv ``C -> 2C``, then a 1x1 conv
    ``C -> 2C`` split into the residual (added to the block input) and the skip. Returns the
    sum of the skips, cropped to ``[crop, T - crop)``."""

    def __init__(self, channels: int, kernel_size: int, dilations: tuple[int, ...]) -> None:
        super().__init__()
        self.channels, self.kernel_size, self.dilations = channels, kernel_size, dilations
        self.convs = nn.ModuleList(
            glorot_conv(channels, 2 * channels, kernel_size, d) for d in dilations
        )
        self.mixes = nn.ModuleList(glorot_conv(channels, 2 * channels, 1) for _ in dilations)

    def forward(self, x: Tensor, crop: int = 0) -> Tensor:
        c = self.channels
        skips: Tensor | None = None
        for conv, mix, d in zip(self.convs, self.mixes, self.dilations, strict=True):
            h = conv(same_pad(x, self.kernel_size, d))
            out = mix(torch.tanh(h[:, :c]) * torch.sigmoid(h[:, c:]))
            x = x + out[:, :c]
            skip = out[:, c:, crop : out.shape[2] - crop]
            skips = skip if skips is None else skips + skip
        assert skips is not None
        return skips


__all__ = [
    "DNNSAAF",
    "SAAF",
    "ChannelDense",
    "FiLM",
    "FrontEnd",
    "GatedStack",
    "SqueezeExcite",
    "correlate",
    "fft_size",
    "glorot_conv",
    "glorot_uniform_",
    "lecun_uniform_",
    "masked_unpool",
    "same_pad",
    "time_dense",
    "unpool",
    "zero_bias",
]
