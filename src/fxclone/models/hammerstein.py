"""Knob-conditioned Wiener-Hammerstein distortion: filter, static curve, filters, gain.

The signal path of most drive pedals and of many plug-ins is a chain of simple blocks: a
tone-shaping filter, a gain stage into a memoryless clipper, a low-pass that tames the fizz, a
coupling capacitor that removes DC, and an output level. This family models exactly that,
per channel, with every block differentiable and every knob-dependent value an affine function
of the normalised knob vector ``k`` (optionally plus a small residual MLP for odd tapers):

1. ``u = exp(gin(k)) * pre(x)``: ``pre`` a learned causal FIR (``pre_taps``, starting as the
   identity); a gain knob labelled in dB maps to ``gin`` exactly.
2. ``v = w_0(k) u + sum_j w_j(k) (phi_j(u) - u)``: the linear path plus a weighted dictionary of
   static curves (``curves``), each entering as its difference from the identity so that the
   weights do not all compete for the small-signal gain: ``tanh(u + beta(k) + b_j) -
   tanh(beta(k) + b_j)`` for learned offsets ``b_j`` (asymmetric soft clipping, its
   asymmetry following the knobs through ``beta``), the signed square root, smoothed as
   ``u / sqrt(|u| + e)`` (mda Overdrive's curve, which it blends with ``u`` by its drive
   knob; off by ``e / (2 sqrt|u|)``, 5e-8 at ``|u| = 0.01``, with a finite slope at 0)
   and the cubic soft clip. Each curve is 0 at ``u = 0``, so silence stays silent.
3. ``post_sections`` one-pole low-passes ``h = a h[n-1] + (1 - a) v``, on one of two tapers
   (``lowpass_taper``): ``hz``, ``a = exp(-2 pi f_c / sr)`` with ``log f_c`` affine in ``k``
   (a tone knob on a log scale in Hz maps exactly: analogue tone controls); ``step``, the step
   size ``f = 1 - a`` with ``log f`` affine in ``k`` and at most 0 (digital plug-ins that
   write ``h += f (v - h)`` with ``f = 10^(-c m)``, as mda's do, map exactly, ``f = 1``, no
   filtering, included). The two agree for corners well below ``sr / 10``. A DC blocker
   ``v - depth(k) * lowpass_dc(v)``, whose corner stays above ``sr / (pi * context_samples)``
   so that its memory fits in the training windows' warm-up (and whose depth can fall to 0
   for an effect without one); a learned causal FIR (``post_taps``, starting as the
   identity) for fixed colouring.
4. ``y = exp(gout(k) - gin(k)) * ...``: the output gain undoes the input gain, so ``gin`` sets
   where the curves bend and ``gout`` the level; a level knob in dB maps exactly.

It starts as a linear filter (``w_0 = 1``, the other weights 0) with the curves' input gain at
``drive_db``, where a guitar-level signal already bends them: their weights get a useful
gradient from the first step. The recursions carry their state across knob changes (a one-pole
with a new coefficient continues from its last output, without a click), and the streaming
state holds every filter's memory, so ``step`` over blocks equals ``forward`` on the whole
buffer. The receptive field is a practical bound (``context_samples``): the filters' memory
decays, it never ends.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from fxclone.models.base import EffectModel, State, config_from_dict
from fxclone.models.hammerstein_filters import causal_fir, one_pole

CURVES = ("tanh", "ssqrt", "cubic")
LOWPASS_TAPERS = ("hz", "step")
# The signed square root's smoothing, u / sqrt(|u| + e): its slope at 0 is 1 / sqrt(e) (the
# gradient stays bounded) and its error e / (2 sqrt|u|) vanishes as the signal grows (an
# offset form, sqrt(|u| + e) - sqrt(e), is off by sqrt(e) at every level).
SSQRT_EPS = 1e-8
# Adam moves every parameter by about the learning rate per step. The knob-dependent values
# are stored divided by a scale, so that a corner (in log-Hz) moves four times and a gain (in
# nepers) twice as fast as a curve weight; FIR taps are stored divided by FIR_SCALE and move
# ten times slower: the few corners and gains find their place before the many taps start to
# imitate them.
CORNER_SCALE = 4.0
GAIN_SCALE = 2.0
FIR_SCALE = 0.1


@dataclass(frozen=True)
class HammersteinConfig:
    """The block-oriented distortion model's sizes and starting values.

    ``curves`` picks the nonlinearity's dictionary from ``tanh`` (one curve per entry of
    ``tanh_biases``, the offsets' starting values), ``ssqrt`` and ``cubic``. The default,
    biased tanh curves only, suits analogue clipping; ``ssqrt`` fits power-law drives (mda
    Overdrive) but slows training on hard clipping, which at low gain it can imitate.
    ``drive_db`` is the curves' starting input gain. The low-pass sections start at
    ``post_hz``, two octaves apart, their knob maps on ``lowpass_taper`` (``hz``: log-corner,
    ``step``: log step size, see the module's notes); the DC blocker at ``dc_hz`` (or at its floor,
    ``sr / (pi * context_samples)``, if that is higher; ``dc_hz = 0``: no DC blocker).
    ``hidden`` adds a residual MLP of that width to the affine knob maps (its last layer starts
    at zero). ``context_samples`` is the receptive field reported for training windows'
    warm-up.
    """

    pre_taps: int = 32
    post_taps: int = 32
    curves: tuple[str, ...] = ("tanh",)
    tanh_biases: tuple[float, ...] = (0.0, 0.3, -0.3)
    post_sections: int = 2
    drive_db: float = 18.0
    post_hz: float = 1000.0
    dc_hz: float = 10.0
    lowpass_taper: str = "hz"
    hidden: int = 0
    context_samples: int = 2048

    def __post_init__(self) -> None:
        if self.pre_taps < 1 or self.post_taps < 1:
            raise ValueError("pre_taps and post_taps must be at least 1")
        if any(c not in CURVES for c in self.curves) or len(set(self.curves)) < len(self.curves):
            raise ValueError(f"curves must be distinct names from {', '.join(CURVES)}")
        if "tanh" in self.curves and not self.tanh_biases:
            raise ValueError("the tanh curve needs at least one entry in tanh_biases")
        if self.post_sections < 0 or self.hidden < 0 or self.context_samples < 1:
            raise ValueError("post_sections and hidden must be >= 0, context_samples >= 1")
        if self.lowpass_taper not in LOWPASS_TAPERS:
            raise ValueError(f"lowpass_taper must be one of {', '.join(LOWPASS_TAPERS)}")
        if not self.post_hz > 0 or self.dc_hz < 0:
            raise ValueError("post_hz must be positive and dc_hz >= 0")

    @classmethod
    def from_dict(cls, data: dict) -> HammersteinConfig:
        return config_from_dict(cls, data, "hammerstein config")


class KnobMap(nn.Module):
    """``scale * (base + W (k - 1/2))`` (``W`` starts at zero), plus ``scale * mlp(k - 1/2)``
    when ``hidden`` > 0. Centring the knobs decouples the offsets' gradients from the slopes';
    ``scale`` (fixed) sets how fast Adam moves each value."""

    scale: Tensor

    def __init__(self, base: Tensor, scale: Tensor, n_knobs: int, hidden: int) -> None:
        super().__init__()
        self.register_buffer("scale", scale.clone(), persistent=False)
        self.base = nn.Parameter(base / scale)
        self.weight = nn.Parameter(torch.zeros(len(base), n_knobs)) if n_knobs else None
        self.mlp: nn.Sequential | None = None
        if n_knobs and hidden:
            last = nn.Linear(hidden, len(base))
            nn.init.zeros_(last.weight)
            nn.init.zeros_(last.bias)
            self.mlp = nn.Sequential(nn.Linear(n_knobs, hidden), nn.Tanh(), last)

    def forward(self, knobs: Tensor) -> Tensor:
        p = self.base.expand(knobs.shape[0], -1)
        centred = knobs - 0.5
        if self.weight is not None:
            p = p + centred @ self.weight.T
        if self.mlp is not None:
            p = p + self.mlp(centred)
        return p * self.scale


class HammersteinModel(EffectModel):
    """Pre-filter and gain, a dictionary of static curves, low-passes, DC blocker, post-filter
    and output gain, each knob-dependent value affine in the knobs."""

    family = "hammerstein"
    config_class = HammersteinConfig

    def __init__(self, config: HammersteinConfig, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        c = config
        self.kinds: tuple[str, ...] = tuple(
            k for name in c.curves for k in [name] * (len(c.tanh_biases) if name == "tanh" else 1)
        )
        self.dc = c.dc_hz > 0
        # The DC blocker's lowest corner: its time constant is half the warm-up at most.
        self.dc_floor = self.sample_rate / (math.pi * c.context_samples)
        # The knob-dependent values, in order: gin, beta, w_0, the curves' weights, the
        # low-pass sections' log-corners or log step sizes (two octaves apart: equal sections
        # would stay equal), the DC blocker's log-corner (above its floor) and depth, gout.
        base = [c.drive_db * math.log(10.0) / 20.0, 0.0, 1.0] + [0.0] * len(self.kinds)
        hz = [c.post_hz * 4.0**s for s in range(c.post_sections)]
        if c.lowpass_taper == "step":  # log(1 - a) for the same starting corners
            base += [math.log(-math.expm1(-2.0 * math.pi * f / self.sample_rate)) for f in hz]
        else:
            base += [math.log(f) for f in hz]
        scale = [GAIN_SCALE] + [1.0] * (2 + len(self.kinds)) + [CORNER_SCALE] * c.post_sections
        if self.dc:
            base += [math.log(max(c.dc_hz - self.dc_floor, 0.1 * self.dc_floor)), 1.0]
            scale += [CORNER_SCALE, 1.0]
        base += [0.0]
        scale += [GAIN_SCALE]
        self.knob_map = KnobMap(torch.tensor(base), torch.tensor(scale), self.n_knobs, c.hidden)
        self.tanh_bias = nn.Parameter(torch.tensor([float(b) for b in c.tanh_biases]))
        self.pre = nn.Parameter(_identity(c.pre_taps) / FIR_SCALE)
        self.post = nn.Parameter(_identity(c.post_taps) / FIR_SCALE)

    @property
    def receptive_field(self) -> int:
        c = self.config
        return max(int(c.context_samples), c.pre_taps + c.post_taps - 1)

    def init_state(self, batch_size: int) -> State:
        """FIR histories, low-pass outputs and the DC blocker's low-pass, per channel."""
        p, c = self.pre, self.config

        def zeros(n: int) -> Tensor:
            return torch.zeros(batch_size, self.channels, n, dtype=p.dtype, device=p.device)

        return zeros(c.pre_taps - 1), zeros(c.post_sections), zeros(1), zeros(c.post_taps - 1)

    def fir_taps(self) -> tuple[Tensor, Tensor]:
        """The pre- and post-filter's taps, ``taps[k]`` weighting the input ``k`` samples ago."""
        return self.pre * FIR_SCALE, self.post * FIR_SCALE

    def pole(self, hz: Tensor) -> Tensor:
        """The one-pole coefficient ``exp(-2 pi f_c / sr)`` for corners ``hz``."""
        return torch.exp(-2.0 * math.pi / self.sample_rate * hz)

    def lowpass_poles(self, values: Tensor) -> Tensor:
        """The low-pass sections' coefficients ``a`` from their knob-mapped ``values``
        ``(rows, post_sections)`` on the configured taper."""
        if self.config.lowpass_taper == "step":
            return 1.0 - torch.exp(torch.clamp(values, max=0.0))  # a = 1 - f, f <= 1
        return self.pole(torch.exp(values))

    def static_curve(self, u: Tensor, values: Tensor) -> Tensor:
        """The nonlinearity ``w_0 u + sum_j w_j (phi_j(u) - u)`` on rows ``(rows, T)``, with
        each row's knob-dependent ``values`` (``beta`` and the weights first)."""
        beta, w = values[:, 1:2], values[:, 2 : 3 + len(self.kinds)]
        v = w[:, :1] * u
        for j, kind in enumerate(self.kinds):
            if kind == "tanh":
                b = beta + self.tanh_bias[j - self.kinds.index("tanh")]
                curve = torch.tanh(u + b) - torch.tanh(b)
            elif kind == "cubic":
                curve = _cubic(u + beta) - _cubic(beta)
            else:  # the signed square root; no bias, which would move its steepest point
                curve = u / torch.sqrt(torch.abs(u) + SSQRT_EPS)
            v = v + w[:, j + 1 : j + 2] * (curve - u)
        return v

    def step(self, x: Tensor, knobs: Tensor, state: State) -> tuple[Tensor, State]:
        if x.shape[2] == 0:
            return x, state
        c = self.config
        batch, ch, n = x.shape
        rows = batch * ch
        p = self.knob_map(knobs).repeat_interleave(ch, dim=0)  # (rows, values)
        pre_h, lp_h, dc_h, post_h = (s.reshape(rows, s.shape[2]) for s in state)
        pre_taps, post_taps = self.fir_taps()

        z, pre_h = causal_fir(x.reshape(rows, n), pre_taps, pre_h)
        v = self.static_curve(torch.exp(p[:, :1]) * z, p)
        i = 3 + len(self.kinds)
        lp_last, poles = [], self.lowpass_poles(p[:, i : i + c.post_sections])
        for s in range(c.post_sections):
            v = one_pole(v, poles[:, s], lp_h[:, s])
            lp_last.append(v[:, -1])
        lp_h = torch.stack(lp_last, dim=1) if lp_last else lp_h
        i += c.post_sections
        if self.dc:
            hz = self.dc_floor + torch.exp(p[:, i])
            low = one_pole(v, self.pole(hz), dc_h[:, 0])
            dc_h = low[:, -1:]
            v = v - p[:, i + 1 : i + 2] * low
        v, post_h = causal_fir(v, post_taps, post_h)
        y = torch.exp(p[:, -1:] - p[:, :1]) * v  # gin sets where the curves bend, not the level
        new_state = tuple(s.reshape(batch, ch, s.shape[1]) for s in (pre_h, lp_h, dc_h, post_h))
        return y.reshape(batch, ch, n), new_state


def _cubic(u: Tensor) -> Tensor:
    c = torch.clamp(u, -1.0, 1.0)
    return c - c**3 / 3.0


def _identity(taps: int) -> Tensor:
    w = torch.zeros(taps)
    w[0] = 1.0
    return w


__all__ = ["CURVES", "LOWPASS_TAPERS", "HammersteinConfig", "HammersteinModel", "KnobMap"]
