"""Running a model designed for a lower sample rate (the thesis models' 16 kHz) at the data's rate.

The registry wraps a family whose ``native_sample_rate`` is at least twice below the requested
rate: the audio is low-passed and decimated by ``factor = round(rate / native)``, the model
runs at ``rate / factor``, and its output is interpolated back with the same linear-phase FIR
(a Kaiser-windowed sinc, cutoff 0.45 of the internal rate, 24 taps per phase). Both are causal
and stream exactly, so ``step`` over any block sizes equals ``forward``; the price is the
filters' delay, ``2 * group_delay`` samples at the outer rate, added to the model's latency
(``factor`` times its own). The whole chain is differentiable, so training sees the same
resampling as playback.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from fxclone.models.base import EffectModel, Stage, State

TAPS_PER_PHASE = 24


def lowpass_taps(factor: int) -> np.ndarray:
    """Odd-length linear-phase low-pass FIR for resampling by ``factor`` (unit DC gain)."""
    n = TAPS_PER_PHASE * factor + 1
    t = np.arange(n) - (n - 1) / 2
    cutoff = 0.45 / factor  # cycles per sample: 0.45 of the internal rate's band
    h = 2 * cutoff * np.sinc(2 * cutoff * t) * np.kaiser(n, 8.0)
    return (h / h.sum()).astype(np.float32)


class ResampledModel(EffectModel):
    """``inner`` (running at ``sample_rate / factor``) behind a decimator and an interpolator.

    Streaming state: the last ``taps - 1`` input samples, the input position modulo
    ``factor``, the last ``ceil(taps / factor)`` internal output samples, then the inner
    model's own state."""

    onnx_refusal: ClassVar[str | None] = (
        "it runs at its architecture's lower native rate, and the block-wise resampling"
        " around it counts samples in Python"
    )

    def __init__(self, inner: EffectModel, factor: int, sample_rate: int) -> None:
        super().__init__(
            inner.config, sample_rate=sample_rate, knobs=inner.knobs, channels=inner.channels
        )
        self.family = inner.family  # type: ignore[misc]  # (an instance reads as its inner family)
        self.inner = inner
        self.factor = int(factor)
        h = torch.from_numpy(lowpass_taps(self.factor))
        self.taps = h.numel()
        self.phases = math.ceil(self.taps / self.factor)
        # Decimation: a correlation with the time-reversed filter. Interpolation: one short
        # filter per output phase r, g_r[j] = factor * h[r + j * factor].
        self.dec_kernel: Tensor
        self.poly: Tensor
        self.register_buffer("dec_kernel", h.flip(0)[None, None], persistent=False)
        padded = F.pad(h, (0, self.phases * self.factor - self.taps))
        poly = self.factor * padded.view(self.phases, self.factor).T  # (factor, phases)
        self.register_buffer("poly", poly.flip(1).contiguous(), persistent=False)

    @property
    def group_delay(self) -> int:
        return (self.taps - 1) // 2

    @property
    def latency_samples(self) -> int:
        return 2 * self.group_delay + self.factor * self.inner.latency_samples

    @property
    def receptive_field(self) -> int:
        """An upper bound: the inner model's span at the outer rate plus both filters."""
        rf = self.inner.receptive_field
        return 0 if rf <= 0 else self.factor * rf + 2 * self.taps

    def describe(self) -> dict[str, Any]:
        out = super().describe()
        out["resampling"] = {
            "factor": self.factor,
            "internal_rate": self.inner.sample_rate,
            "native_sample_rate": self.inner.native_sample_rate,
        }
        return out

    def init_state(self, batch_size: int) -> State:
        p = self.dec_kernel
        c = self.channels
        hist = torch.zeros(batch_size, c, self.taps - 1, dtype=p.dtype, device=p.device)
        uhist = torch.zeros(batch_size, c, self.phases, dtype=p.dtype, device=p.device)
        pos = torch.zeros(1, dtype=torch.long, device=p.device)
        return (hist, pos, uhist, *self.inner.init_state(batch_size))

    def decimate(self, x: Tensor, hist: Tensor, pos: int) -> tuple[Tensor, Tensor]:
        """Internal-rate samples falling in block ``x`` (input position ``pos`` mod factor)."""
        buf = torch.cat([hist, x], dim=2)
        first = (-pos) % self.factor
        b, c, n = buf.shape
        if x.shape[2] <= first:
            d = x.new_zeros(b, c, 0)
        else:
            flat = buf[:, :, first:].reshape(b * c, 1, -1)
            d = F.conv1d(flat, self.dec_kernel, stride=self.factor).view(b, c, -1)
        return d, buf[:, :, n - (self.taps - 1) :]

    def interpolate(self, u: Tensor, uhist: Tensor, pos: int, n: int) -> tuple[Tensor, Tensor]:
        """``n`` outer-rate samples from the internal samples ``u`` new in this block."""
        stream = torch.cat([uhist, u], dim=2)
        i = torch.arange(n, device=u.device)
        first = (-pos) % self.factor
        count = torch.where(i >= first, (i - first) // self.factor + 1, torch.zeros_like(i))
        windows = stream.unfold(2, self.phases, 1)  # (B, C, windows, phases), oldest first
        picked = windows[:, :, count]  # the window ending at the newest sample so far
        y = (picked * self.poly[(pos + i) % self.factor]).sum(-1)
        return y, stream[:, :, stream.shape[2] - self.phases :]

    def step(self, x: Tensor, knobs: Tensor, state: State) -> tuple[Tensor, State]:
        knobs = self.check_inputs(x, knobs)
        hist, pos_t, uhist, *inner_state = state
        pos = int(pos_t.item())
        d, hist = self.decimate(x, hist, pos)
        inner = tuple(inner_state)
        if d.shape[2]:
            u, inner = self.inner.step(d, knobs, inner)
        else:
            u = d
        y, uhist = self.interpolate(u, uhist, pos, x.shape[2])
        pos_t = pos_t.new_full((1,), (pos + x.shape[2]) % self.factor)
        return y, (hist, pos_t, uhist, *inner)

    def around(self, fn: Callable[[Tensor, Tensor], Tensor], x: Tensor, target: Tensor) -> Tensor:
        """``fn(x, target)`` computed at the internal rate, from silence, brought back up."""
        state = self.init_state(x.shape[0])
        d, _ = self.decimate(x, state[0], 0)
        t, _ = self.decimate(target, state[0], 0)
        u = fn(d, t)
        return self.interpolate(u, state[2], 0, x.shape[2])[0]

    def training_stages(self) -> tuple[Stage, ...]:
        """The inner model's protocol, each stage run through the resamplers."""
        return tuple(_outer_stage(s) for s in self.inner.training_stages())


def _outer_stage(stage: Stage) -> Stage:
    import dataclasses

    inner_forward = stage.forward
    inner_params = stage.parameters

    def forward(m: ResampledModel, x: Tensor, knobs: Tensor, target: Tensor) -> Tensor:
        if inner_forward is None:
            return m(x, knobs)
        return m.around(lambda d, t: inner_forward(m.inner, d, knobs, t), x, target)

    def parameters(m: ResampledModel) -> Any:
        return inner_params(m.inner) if inner_params else m.parameters()

    return dataclasses.replace(
        stage,
        forward=forward if inner_forward is not None else None,
        parameters=parameters if inner_params is not None else None,
    )


def resampling_factor(native: int | None, sample_rate: int) -> int:
    """The integer factor a model native to ``native`` Hz runs below ``sample_rate`` (1: none)."""
    if not native or sample_rate < 1.5 * native:
        return 1
    return int(round(sample_rate / native))
