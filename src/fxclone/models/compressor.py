"""A feed-forward compressor whose settings follow the knobs: a grey-box dynamics model.

A compressor's error for a black-box network is the gain, which depends on the level over
the last second or two (far beyond a WaveNet's 85-ms receptive field) and on four knobs at
once. This family holds the textbook design instead (Giannoulis, Massberg & Reiss 2012,
"log domain, smooth branching"), with six settings it learns:

* the detector reads the peak level ``20 log10 |x|`` in dBFS;
* the static curve turns it into a gain change in dB: 0 below ``threshold - knee/2``,
  ``(1/ratio - 1)(level - threshold)`` above ``threshold + knee/2``, a parabola between;
* the change is smoothed by a one-pole filter whose coefficient ``exp(-1/(tau fs))`` takes
  ``tau = attack`` while the gain falls and ``tau = release`` while it recovers
  (:mod:`fxclone.ballistics`, compiled, with its adjoint for the gradient);
* ``makeup`` dB are added and the gain is applied to the input.

Knob conditioning: the settings, in their units (threshold, knee and makeup in dB, ratio as
a ratio, attack and release as log milliseconds), are affine functions of the normalised
knob vector, so a knob labelled in a setting's unit (a dB threshold, a ratio, a time on a log
scale, which is how :class:`~fxclone.models.base.KnobSpec` normalises one) maps exactly; a
small residual MLP (``hidden``) can add the bend of a knob with another taper. With no knobs
the model is a six-number capture of one setting. Causal, no latency; the streaming state is
the smoothed gain of each channel, so a knob change mid-stream moves the gain through the
attack/release ballistics rather than stepping it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor, nn

from fxclone import ballistics
from fxclone.models.base import EffectModel, State, config_from_dict

# The settings, their values at initialisation and the step one unit of a raw parameter
# makes (so one learning rate suits them all).
SETTINGS = ("threshold_db", "ratio", "knee_db", "attack_ms", "release_ms", "makeup_db")
_INIT = torch.tensor([-24.0, 4.0, 6.0, math.log(5.0), math.log(100.0), 0.0], dtype=torch.float64)
_SCALE = torch.tensor([20.0, 5.0, 6.0, 2.0, 2.0, 6.0], dtype=torch.float64)
_LEVEL_FLOOR = 1e-10  # the detector's reading of digital silence: -200 dBFS


@dataclass(frozen=True)
class CompressorConfig:
    """``memory_ms``: context given before each training window (the longest release the
    capture should follow, times about three); ``hidden``: width of the residual MLP from the
    knobs to the settings (0: affine only); ``fit_items`` training items (the first
    ``fit_item_seconds`` of each: a compressor's state starts at its item's start) and at most
    ``fit_iterations`` Levenberg-Marquardt iterations per solve for the fit the training
    starts from."""

    memory_ms: float = 2000.0
    hidden: int = 0
    fit_items: int = 40
    fit_item_seconds: float = 4.0
    fit_iterations: int = 50

    def __post_init__(self) -> None:
        if not 0.1 <= self.memory_ms <= 20000.0:
            raise ValueError(f"memory_ms must be in [0.1, 20000], not {self.memory_ms}")
        if not 0 <= self.hidden <= 1024:
            raise ValueError(f"hidden must be in 0..1024, not {self.hidden}")
        if not 1 <= self.fit_items <= 100000:
            raise ValueError(f"fit_items must be in 1..100000, not {self.fit_items}")
        if not 0.01 <= self.fit_item_seconds <= 3600.0:
            raise ValueError(
                f"fit_item_seconds must be in [0.01, 3600], not {self.fit_item_seconds}"
            )
        if not 1 <= self.fit_iterations <= 10000:
            raise ValueError(f"fit_iterations must be in 1..10000, not {self.fit_iterations}")

    @classmethod
    def from_dict(cls, data: dict) -> CompressorConfig:
        return config_from_dict(cls, data, "compressor config")


class _Smooth(torch.autograd.Function):
    """:func:`fxclone.ballistics.smooth` with its adjoint as the backward pass."""

    @staticmethod
    def forward(ctx: Any, target: Tensor, attack: Tensor, release: Tensor, y0: Tensor) -> Tensor:
        arrays = [t.detach().contiguous().numpy() for t in (target, attack, release, y0)]
        out, use_attack = ballistics.smooth(*arrays)
        ctx.arrays = (*arrays, out, use_attack)
        return torch.from_numpy(out)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, ...]:
        target, attack, release, y0, out, use_attack = ctx.arrays
        grads = ballistics.adjoint(
            grad.detach().contiguous().numpy(), target, out, y0, attack, release, use_attack
        )
        return tuple(torch.from_numpy(g) for g in grads)


def smooth(target: Tensor, attack: Tensor, release: Tensor, y0: Tensor) -> Tensor:
    """Differentiable attack/release smoother over float64 ``(rows, samples)``."""
    out: Tensor = _Smooth.apply(target, attack, release, y0)
    return out


def gain_computer(level_db: Tensor, threshold: Tensor, ratio: Tensor, knee: Tensor) -> Tensor:
    """The static curve's gain change in dB (<= 0) with a quadratic soft knee of width
    ``knee`` dB; settings broadcast against ``level_db``."""
    over = level_db - threshold
    slope = 1.0 / ratio - 1.0
    hard = slope * torch.clamp(over, min=0.0)
    knee = torch.clamp(knee, min=1e-6)
    soft = slope * (over + knee / 2.0) ** 2 / (2.0 * knee)
    return torch.where(over.abs() < knee / 2.0, soft, hard)


def settings_of(raw: Tensor) -> Tensor:
    """Raw parameters ``(batch, 6)`` as settings in their units (see :data:`SETTINGS`)."""
    s = _INIT + _SCALE * raw
    ratio = 1.0 + (s[:, 1] - 1.0).abs()  # no flat region: a ratio below 1 folds back
    knee = s[:, 2].abs()
    times = torch.exp(s[:, 3:5])
    return torch.stack([s[:, 0], ratio, knee, times[:, 0], times[:, 1], s[:, 5]], dim=1)


class Compressor(EffectModel):
    """Peak detector, soft-knee static curve, attack/release smoother and makeup, each
    setting an affine function of the knobs; see the module docstring."""

    family = "compressor"
    onnx_refusal: ClassVar[str | None] = (
        "its attack/release smoother is a compiled loop whose branch follows the signal"
    )
    config_class = CompressorConfig

    def __init__(self, config: CompressorConfig, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        n = len(SETTINGS)
        self.bias = nn.Parameter(torch.zeros(n, dtype=torch.float64))
        self.weight = nn.Parameter(torch.zeros(n, self.n_knobs, dtype=torch.float64))
        self.mlp: nn.Sequential | None = None
        if config.hidden and self.n_knobs:
            last = nn.Linear(config.hidden, n, dtype=torch.float64)
            nn.init.zeros_(last.weight)
            nn.init.zeros_(last.bias)
            self.mlp = nn.Sequential(
                nn.Linear(self.n_knobs, config.hidden, dtype=torch.float64), nn.Tanh(), last
            )

    @property
    def receptive_field(self) -> int:
        return max(1, round(self.config.memory_ms * 1e-3 * self.sample_rate)) + 1

    def raw(self, knobs: Tensor) -> Tensor:
        """The settings' raw parameters for ``(batch, n_knobs)`` knobs: ``(batch, 6)``."""
        k = knobs.to(torch.float64)
        raw = self.bias + (k - 0.5) @ self.weight.T
        if self.mlp is not None:
            raw = raw + self.mlp(k)
        return raw

    def settings(self, knobs: Tensor) -> Tensor:
        """The six settings (threshold dB, ratio, knee dB, attack ms, release ms, makeup dB)
        for ``(batch, n_knobs)`` normalised knobs: float64 ``(batch, 6)``."""
        return settings_of(self.raw(knobs))

    def describe_settings(self, knobs: Tensor) -> list[dict[str, float]]:
        """:meth:`settings` as named values, one dict per row."""
        rows = self.settings(knobs).detach().numpy()
        return [dict(zip(SETTINGS, map(float, row), strict=True)) for row in rows]

    def init_state(self, batch_size: int) -> State:
        return (torch.zeros(batch_size, self.channels, dtype=torch.float64),)

    def step(self, x: Tensor, knobs: Tensor, state: State) -> tuple[Tensor, State]:
        knobs = self.check_inputs(x, knobs)
        if x.shape[2] == 0:
            return x, state
        y, gain = self._run(x.to(torch.float64), self.raw(knobs), state[0])
        return y.to(x.dtype), (gain[:, :, -1].detach().clone(),)

    def _run(self, x: Tensor, raw: Tensor, gain0: Tensor) -> tuple[Tensor, Tensor]:
        """Float64 output and smoothed gain change (dB) of ``x`` with raw parameters ``raw``
        ``(batch, 6)``, from the gains ``gain0`` ``(batch, channels)``. ``x`` may have a
        batch of 1 for many ``raw`` rows (the fit's finite differences): its level is then
        read once."""
        _, channels, n = x.shape
        batch = raw.shape[0]
        s = settings_of(raw)[:, :, None, None]  # (batch, 6, 1, 1)
        threshold, ratio, knee, attack_ms, release_ms, makeup = s.unbind(1)
        level_db = 20.0 * torch.log10(torch.clamp(x.abs(), min=_LEVEL_FLOOR))
        change = gain_computer(level_db, threshold, ratio, knee)
        per_ms = -1e3 / self.sample_rate
        rows = batch * channels
        attack = torch.exp(per_ms / attack_ms).expand(batch, channels, 1).reshape(rows)
        release = torch.exp(per_ms / release_ms).expand(batch, channels, 1).reshape(rows)
        change = change.expand(batch, channels, n).reshape(rows, n)
        gain = smooth(change.contiguous(), attack, release, gain0.reshape(rows))
        gain = gain.reshape(batch, channels, n)
        return x * torch.pow(10.0, (gain + makeup) / 20.0), gain

    def fit_closed_form(self, items: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> None:
        """Start from a Levenberg-Marquardt fit of the settings and their knob map to the
        training items (:mod:`fxclone.models.compressor_fit`); training refines it."""
        from fxclone.models.compressor_fit import fit_compressor

        fit_compressor(self, items)


def canonical(raw: Tensor) -> Tensor:
    """The same settings with the ratio and knee on their unfolded side (the model takes
    ``|...|`` of both about their floor), so fits of different items can be averaged."""
    s = _INIT + _SCALE * raw
    s[1] = 1.0 + (s[1] - 1.0).abs()
    s[2] = s[2].abs()
    return (s - _INIT) / _SCALE


__all__ = ["SETTINGS", "Compressor", "CompressorConfig", "canonical", "gain_computer", "smooth"]
