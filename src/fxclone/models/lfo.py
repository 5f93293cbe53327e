"""A free-running oscillator driving delay taps and a gain: tremolo, vibrato, chorus, flanger.

Time-varying effects hold a low-frequency oscillator (LFO) whose phase the dry input does not
carry, so a network that sees only the input cannot learn them (McCool's models gave a
constant or noise; a WaveNet on a phaser leaves half the energy as error). This model holds
the oscillator itself, ``theta[n] = phase + 2 pi rate n / fs``, and uses it to drive the
parts these effects are built from:

* ``voices`` taps reading the input from a delay line at ``d_v[n] = delay_v + depth_v
  s(theta + phase_v)`` (linear interpolation), each with a gain and a feedback loop. The
  loop ``w = x(n - d) + fb w(n - d)`` is unrolled into ``echoes`` reads along the chain
  ``t_0 = n, t_{k+1} = t_k - d(t_k)``, each evaluated in closed form (the LFO is known at any
  time), so no state but the input history is kept;
* a dry tap, and a gain ``1 + a(theta)`` on the whole output (tremolo).

``s`` is a sine plus ``harmonics - 1`` higher harmonics, ``a`` a sum of ``harmonics`` of them:
a triangle or a rotary speaker's uneven sweep is a few harmonics away. A thru-zero flanger's
sweep, a sawtooth folded into ``1 - 2 |saw|^p`` (a cusp at its lowest point, where the
delay passes through zero), is not: ``sweep_power`` p > 0 makes ``s`` that instead.
Everything is in closed form in ``theta``, so forward and streaming agree and a long render
costs a few gathers per sample (``voices x echoes`` of them).

Training: windows drawn at random positions do not tell the model where its oscillator stands,
so the usual window training does not apply. :meth:`LFOModel.fit_closed_form` estimates the
rate from the wet signal's modulation, each voice's sweep from frame-wise cross-correlation
and the gains by least squares, then refines everything by gradient descent on windows at
known positions of the training stream (:mod:`fxclone.models.lfo_fit`). The splits of a
dataset are rendered as one continuous stream each, so the oscillator's phase at the start of
a split is the phase at the start of the render; where it is not (a recording that starts
anywhere), :func:`fxclone.models.phase.refit_phase` fits the phase alone on a few seconds.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from fxclone.models.base import State, config_from_dict
from fxclone.models.closed_form import OscillatorModel


@dataclass(frozen=True)
class LFOConfig:
    """Delay voices, feedback echoes unrolled per voice, LFO harmonics, the longest delay a
    voice may sweep to (ms), and the wall time (s) of the gradient refinement of the fit."""

    voices: int = 3
    echoes: int = 8
    harmonics: int = 6
    max_delay_ms: float = 40.0
    fit_seconds: float = 90.0

    def __post_init__(self) -> None:
        if self.voices < 0 or self.echoes < 1 or self.harmonics < 1:
            raise ValueError("voices must be >= 0, echoes and harmonics >= 1")
        if not 0 < self.max_delay_ms <= 500:
            raise ValueError(f"max_delay_ms must be in (0, 500], not {self.max_delay_ms}")
        if self.fit_seconds < 0:
            raise ValueError(f"fit_seconds must be >= 0, not {self.fit_seconds}")

    @classmethod
    def from_dict(cls, data: dict) -> LFOConfig:
        return config_from_dict(cls, data, "LFO config")


def harmonic_series(
    theta: Tensor, coefficients: Tensor, first: tuple[Tensor, Tensor] | None = None
) -> Tensor:
    """``sum_h c[h, 0] cos((h + 1) theta) + c[h, 1] sin((h + 1) theta)`` for ``c (H, 2)``.

    The harmonics come from the first by the angle-addition recurrence (four products each,
    no further sines); ``first`` may pass ``(cos theta, sin theta)`` already computed."""
    c1, s1 = first if first is not None else (torch.cos(theta), torch.sin(theta))
    c, s = c1, s1
    total = coefficients[0, 0] * c + coefficients[0, 1] * s
    for h in range(1, coefficients.shape[0]):
        c, s = c * c1 - s * s1, s * c1 + c * s1
        total = total + coefficients[h, 0] * c + coefficients[h, 1] * s
    return total


class LFOModel(OscillatorModel):
    """An oscillator-driven multi-tap delay with feedback and a modulated output gain."""

    family = "lfo"
    config_class = LFOConfig

    def __init__(self, config: LFOConfig, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        v, h = config.voices, config.harmonics
        self.log_rate = nn.Parameter(torch.tensor(math.log(1.0)))
        self.phase = nn.Parameter(torch.tensor(0.0))
        self.dry_gain = nn.Parameter(torch.tensor(1.0))
        # per voice: centre delay and depth (ms), phase offset (rad), gain, feedback
        self.delay_ms = nn.Parameter(torch.linspace(1.0, 0.5 * config.max_delay_ms, v))
        self.depth_ms = nn.Parameter(torch.full((v,), 0.1))
        self.voice_phase = nn.Parameter(torch.zeros(v))
        self.voice_gain = nn.Parameter(torch.zeros(v))
        self.feedback = nn.Parameter(torch.zeros(v))
        self.gain_shape = nn.Parameter(torch.zeros(h, 2))  # output gain 1 + a(theta)
        self.delay_shape = nn.Parameter(torch.zeros(h - 1, 2))  # harmonics 2.. of the sweep
        # 0: the sweep is that sine and harmonics; p > 0: a cusped sawtooth 1 - 2 |saw|^p
        self.sweep_power: Tensor
        self.register_buffer("sweep_power", torch.tensor(0.0))
        self.max_delay = config.max_delay_ms * 1e-3 * self.sample_rate
        self.history = int(math.ceil(config.echoes * self.max_delay)) + 2

    @property
    def receptive_field(self) -> int:
        return self.history + 1

    def init_state(self, batch_size: int) -> State:
        history = self.dry_gain.new_zeros(batch_size, self.channels, self.history)
        return history, torch.zeros(1, dtype=torch.float64)  # samples since the start

    def theta(self, samples: Tensor) -> Tensor:
        """The oscillator's phase (float32 radians) at float64 sample indices ``samples``."""
        omega = 2.0 * math.pi * torch.exp(self.log_rate.double()) / self.sample_rate
        return (self.phase.double() + torch.remainder(omega * samples, 2.0 * math.pi)).float()

    def render(self, buffer: Tensor, positions: Tensor, samples: Tensor) -> Tensor:
        """Output at ``positions (P,)`` (int64 indices into ``buffer (B, C, T)``, each with at
        least ``history`` samples before it) whose absolute sample indices (float64, for
        the oscillator) are ``samples (P,)``: ``(B, C, P)``."""
        theta = self.theta(samples)
        x_now = buffer[..., positions]
        out = self.dry_gain * x_now
        if self.voice_gain.numel():
            weight = self.voice_gain[:, None].expand(-1, positions.numel())
            taps = buffer.new_zeros(buffer.shape[0], buffer.shape[1], positions.numel())
            for back in self.echo_delays(theta):
                reads = read_delayed(buffer, positions, back)
                taps = taps + torch.einsum("vp,bcvp->bcp", weight, reads)
                weight = weight * self.feedback[:, None]
            out = out + taps
        return out * (1.0 + harmonic_series(theta, self.gain_shape))

    def echo_delays(self, theta: Tensor) -> list[Tensor]:
        """Each echo's total delay (samples, ``(voices, P)``) for outputs at LFO phase
        ``theta (P,)``: the chain ``t_{k+1} = t_k - d(t_k)`` back through the feedback loop."""
        omega = 2.0 * math.pi * torch.exp(self.log_rate) / self.sample_rate
        t = theta[None].expand(self.voice_gain.numel(), -1)
        back = torch.zeros_like(t)
        delays = []
        for _ in range(self.config.echoes):
            d = self.sweep(t)
            back = torch.clamp(back + d, max=self.history - 1)
            t = t - omega * d
            delays.append(back)
        return delays

    def sweep(self, theta: Tensor, voices: slice = slice(None)) -> Tensor:
        """Delay (samples) of ``voices`` (all by default) at their LFO phase ``theta (V, P)``."""
        u = theta + self.voice_phase[voices, None]
        power = float(self.sweep_power)
        if power > 0.0:  # peak at u = 0, the cusp at u = pi (a thru-zero flanger's sweep)
            saw = torch.remainder(u / math.pi + 1.0, 2.0) - 1.0
            shape = 1.0 - 2.0 * saw.abs() ** power
        else:
            sine = torch.sin(u)
            shape = sine
            if self.delay_shape.shape[0]:
                coefficients = torch.cat([self.delay_shape.new_zeros(1, 2), self.delay_shape])
                shape = shape + harmonic_series(u, coefficients, (torch.cos(u), sine))
        ms = self.delay_ms[voices, None] + self.depth_ms[voices, None] * shape
        return torch.clamp(ms * (1e-3 * self.sample_rate), 0.0, self.max_delay)

    def _load_from_state_dict(self, state_dict: dict, prefix: str, *args: Any) -> None:
        # model files saved before the cusped sweep existed hold the sine sweep
        state_dict.setdefault(prefix + "sweep_power", torch.tensor(0.0))
        super()._load_from_state_dict(state_dict, prefix, *args)

    def step(self, x: Tensor, knobs: Tensor, state: State) -> tuple[Tensor, State]:
        history, count = state
        buffer = torch.cat([history, x], dim=2)
        n = x.shape[-1]
        positions = torch.arange(self.history, self.history + n, device=x.device)
        samples = count + torch.arange(n, dtype=torch.float64, device=x.device)
        y = self.render(buffer, positions, samples)
        return y, (buffer[..., buffer.shape[-1] - self.history :], count + n)

    def fit_closed_form(self, items: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> None:
        """Fit the oscillator, the voices and the gains to the training split, taken as one
        continuous stream (its items in order), see :mod:`fxclone.models.lfo_fit`."""
        from fxclone.models.lfo_fit import fit_lfo

        fit_lfo(self, *self.mono_stream(items))


def read_delayed(buffer: Tensor, positions: Tensor, delay: Tensor) -> Tensor:
    """``buffer[..., positions - delay]`` by linear interpolation: ``positions (P,)`` int64,
    ``delay (V, P)`` float in ``[0, positions)``; returns ``(B, C, V, P)``."""
    whole = torch.floor(delay)
    frac = delay - whole
    i0 = positions[None] - whole.long()
    a, b = buffer[..., i0], buffer[..., (i0 - 1).clamp(min=0)]
    return a + frac * (b - a)
