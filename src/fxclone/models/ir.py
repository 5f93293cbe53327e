"""A linear impulse-response model for long-memory linear effects (delays, reverbs, cabinets).

The effect is modelled as ``y = h * x``, one causal FIR filter ``h`` of ``seconds`` of taps
per channel, applied by FFT convolution. ``h`` is estimated in closed form before any
gradient step (:meth:`ImpulseResponse.fit_closed_form`: regularised least squares, solved by
conjugate gradients with FFT products, started from the cross-spectrum over the
auto-spectrum), then fine-tuned with the usual loss at a small rate.

Streaming state: the last ``taps - 1`` input samples. ``step`` convolves them with the block
by FFT, so its cost per block grows with ``taps``; :mod:`fxclone.realtime.ir` holds the
partitioned-convolution kernel used for real-time work.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import scipy.fft
import torch
from torch import Tensor, nn

from fxclone.models.base import EffectModel, State, config_from_dict


@dataclass(frozen=True)
class IRConfig:
    """Impulse-response length in seconds, the least-squares ridge (relative to the dry
    power), the number of conjugate-gradient iterations of the closed-form fit, and the
    gains ``k`` of the nonlinear branches: each adds ``h_k * (tanh(k x) / k)`` to the output
    (a parallel Hammerstein model, for effects that saturate before a long linear tail)."""

    seconds: float = 2.0
    ridge: float = 1e-6
    cg_iterations: int = 50
    branches: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        if not 0 < self.seconds <= 30:
            raise ValueError(f"seconds must be in (0, 30], not {self.seconds}")
        if self.ridge < 0 or self.cg_iterations < 0:
            raise ValueError("ridge and cg_iterations must be non-negative")
        if any(not k > 0 for k in self.branches):
            raise ValueError(f"branch gains must be positive, not {self.branches}")

    @classmethod
    def from_dict(cls, data: dict) -> IRConfig:
        return config_from_dict(cls, data, "impulse-response config")


def fft_convolve(x: Tensor, h: Tensor) -> Tensor:
    """Causal convolution of ``x (B, C, [branches,] T)`` with ``h (C, [branches,] K)``, summed
    over the branches; the first ``T`` samples, ``(B, C, T)``."""
    n = x.shape[-1] + h.shape[-1] - 1
    size = scipy.fft.next_fast_len(n, real=True)
    spec = torch.fft.rfft(x, size) * torch.fft.rfft(h, size)
    if spec.ndim == 4:
        spec = spec.sum(dim=2)
    return torch.fft.irfft(spec, size)[..., : x.shape[-1]].contiguous()


class ImpulseResponse(EffectModel):
    """``y = h * x (+ sum_k h_k * tanh(k x) / k)`` per channel, fitted in closed form then
    fine-tuned."""

    family = "ir"
    config_class = IRConfig
    takes_knobs = False
    onnx_refusal: ClassVar[str | None] = (
        "its FFT convolution has no opset-17 form (export the response with --format wav for"
        " a convolution plugin)"
    )

    def __init__(self, config: IRConfig, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        if self.n_knobs:
            raise ValueError(
                "the impulse-response model is not knob-conditioned; capture one setting at a "
                "time, or choose a WaveNet for a dataset rendered across knob settings"
            )
        self.taps = max(1, int(round(config.seconds * self.sample_rate)))
        h = torch.zeros(self.channels, self.taps)
        h[:, 0] = 1.0  # the identity until fitted
        self.h = nn.Parameter(h)
        self.gains = tuple(float(k) for k in config.branches)
        # the nonlinear branches' responses, (channels, branches, taps); zero until fitted
        self.hn = nn.Parameter(torch.zeros(self.channels, len(self.gains), self.taps))

    def _branches(self, x: Tensor) -> Tensor:
        """``(B, C, T)`` -> ``(B, C, 1 + branches, T)``: x, then tanh(k x) / k for each k."""
        return torch.stack([x, *(torch.tanh(k * x) / k for k in self.gains)], dim=2)

    def _convolve(self, x: Tensor) -> Tensor:
        if not self.gains:
            return fft_convolve(x, self.h)
        return fft_convolve(self._branches(x), torch.cat([self.h[:, None], self.hn], dim=1))

    @property
    def receptive_field(self) -> int:
        return self.taps

    def init_state(self, batch_size: int) -> State:
        return (self.h.new_zeros(batch_size, self.channels, self.taps - 1),)

    def step(self, x: Tensor, knobs: Tensor, state: State) -> tuple[Tensor, State]:
        full = torch.cat([state[0], x], dim=2)
        y = self._convolve(full)[..., full.shape[-1] - x.shape[-1] :]
        return y, (full[..., full.shape[-1] - (self.taps - 1) :],)

    def forward(self, x: Tensor, knobs: Tensor | None = None) -> Tensor:
        self.check_inputs(x, knobs)
        return self._convolve(x)

    @torch.no_grad()
    def fit_closed_form(self, items: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> None:
        """Set the responses to the regularised least-squares fit from ``(dry, wet, knobs)``
        items (every branch at once: the model is linear in them)."""
        for c in range(self.channels):
            dry = [d[c].astype(np.float64) for d, _, _ in items]
            if self.gains:
                dry = [np.stack([d, *(np.tanh(k * d) / k for k in self.gains)]) for d in dry]
            wet = [w[c].astype(np.float64) for _, w, _ in items]
            # A split rendered as one stream carries tails across item boundaries: score
            # each item's wet only where its own dry covers the whole response.
            skip = [min(self.taps - 1, w.shape[-1] // 2) for w in wet]
            h = least_squares_ir(dry, wet, self.taps, self.config.ridge,
                                 self.config.cg_iterations, skip)  # fmt: skip
            h = np.atleast_2d(h)
            self.h[c] = torch.from_numpy(h[0]).to(self.h)
            self.hn[c] = torch.from_numpy(h[1:]).to(self.hn)


def least_squares_ir(
    dry: Sequence[np.ndarray],
    wet: Sequence[np.ndarray],
    taps: int,
    ridge: float = 1e-6,
    iterations: int = 50,
    skip: Sequence[int] | None = None,
) -> np.ndarray:
    """The causal FIR ``h`` of ``taps`` minimising ``sum ||wet - (h * dry)[:N]||^2 + ridge P
    ||h||^2`` over the signals (``P`` the dry power; each dry taken as silent before it
    starts, each wet scored only where it was recorded).

    Each dry may also be ``(branches, N)``: then ``h`` is ``(branches, taps)`` and the model
    is ``sum_b h_b * dry_b`` (a parallel Hammerstein model when the branches are functions of
    one signal). Conjugate gradients on the normal equations, applying ``D^T D`` (``D`` each
    signal's convolution matrix) by FFT in O(N log N) per iteration, without forming a
    matrix; the first branch starts from the ratio of the cross- and auto-spectra, which is
    already close when the effect is linear, the others from zero.

    ``skip`` (one count per signal) leaves each wet's first samples out of the objective:
    where a recording continues an earlier one (a dataset split rendered as one stream), its
    start holds tails of input that is not in this signal.
    """
    single = dry[0].ndim == 1
    dry = [np.atleast_2d(d) for d in dry]
    branches = dry[0].shape[0]
    sizes = [scipy.fft.next_fast_len(d.shape[1] + taps, real=True) for d in dry]
    specs = [scipy.fft.rfft(d, n, axis=1) for d, n in zip(dry, sizes, strict=True)]
    samples = sum(d.shape[1] for d in dry)
    power = max(sum(float(np.sum(d[0] ** 2)) for d in dry) / max(1, samples), 1e-30)
    reg = ridge * power * samples + 1e-30

    skips = list(skip) if skip is not None else [0] * len(dry)

    def correlate(u: list[np.ndarray]) -> np.ndarray:
        """``sum_i D_i^T u_i``: the lags 0..taps-1 of each u_i (its skipped start zeroed)
        against each dry branch."""
        out = np.zeros((branches, taps))
        for spec, ui, n, k in zip(specs, u, sizes, skips, strict=True):
            ui = np.concatenate([np.zeros(k), ui[k:]])
            out += scipy.fft.irfft(spec.conj() * scipy.fft.rfft(ui, n), n, axis=1)[:, :taps]
        return out

    def apply(v: np.ndarray) -> np.ndarray:
        convolved = [
            scipy.fft.irfft(np.sum(spec * scipy.fft.rfft(v, n, axis=1), axis=0), n)[: d.shape[1]]
            for spec, n, d in zip(specs, sizes, dry, strict=True)
        ]
        return correlate(convolved) + reg * v

    p = correlate(list(wet))
    # Start: the (circular) least-squares solution of the first branch from the pooled
    # spectra, cut to taps.
    n = max(sizes)
    auto = np.zeros(n // 2 + 1)
    cross = np.zeros(n // 2 + 1, complex)
    for d, w in zip(dry, wet, strict=True):
        spec = scipy.fft.rfft(d[0], n)
        auto += np.abs(spec) ** 2
        cross += spec.conj() * scipy.fft.rfft(w, n)
    h = np.zeros((branches, taps))
    h[0] = scipy.fft.irfft(cross / (auto + reg + 1e-9 * float(np.max(auto))), n)[:taps]
    residual = p - apply(h)
    direction = residual.copy()
    rr = float(np.sum(residual * residual))
    floor = 1e-16 * float(np.sum(p * p))
    for _ in range(iterations):
        if rr <= floor:
            break
        ad = apply(direction)
        alpha = rr / float(np.sum(direction * ad))
        h = h + alpha * direction
        residual -= alpha * ad
        new = float(np.sum(residual * residual))
        direction = residual + (new / rr) * direction
        rr = new
    return h[0] if single else h
