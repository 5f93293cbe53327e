"""A rotary speaker: two rotors, each a band of a crossover, with a Doppler tap and tremolo.

A Leslie cabinet splits the signal at a crossover (about 800 Hz) between a bass drum and a
treble horn that turn at different speeds (5-7 Hz fast, under 1 Hz slow) and take seconds to
get there after a switch. Each rotor changes the level of its band as it faces toward and
away from the listener, and the horn's mouth moving toward and away makes a Doppler shift
(a delay that swings by a fraction of a millisecond). One oscillator driving delay taps
(:mod:`fxclone.models.lfo`) cannot hold two speeds or a band split; this model holds both:

* the crossover: a low band through two equal one-pole low-pass sections (pole ``pole``),
  the high band the input less the low band, applied as an FIR of ``crossover_taps``;
* per rotor ``r`` an oscillator ``theta_r(t) = phase_r + 2 pi rate_r (t - spin_r (1 -
  exp(-t / spin_r)))`` (t in seconds from the stream's start): the rotor spins up from rest
  with time constant ``spin_r`` (0: already at speed) and turns at ``rate_r`` after that;
* per rotor a direct tap and a Doppler tap reading the band at a delay ``delay_r +
  s_r(theta_r)`` samples; each tap's gain is a harmonic series in ``theta_r`` (the
  tremolo, and the level change of the rotor's facing), ``s_r`` another.

Every gain and the sweep are harmonic series of ``harmonics`` terms, so the cubed cosine of
a horn's throb (harmonics 1 and 3) and its product with a second rotation term (up to 4)
are held exactly. Given the oscillators, the crossover and the sweeps, the output is linear
in the gains, which the fit (:mod:`fxclone.models.rotary_fit`) solves by least squares.
Causal, no latency; the state (the input history and the samples seen) is carried between
blocks, so streaming equals offline for any block size. ``phase`` holds both rotors'
phases, which :func:`fxclone.models.phase.refit_phase` fits for a recording that starts
anywhere.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import scipy.signal
import torch
from torch import Tensor, nn

from fxclone.models.base import State, config_from_dict
from fxclone.models.closed_form import StreamFitted, read

ROTORS = ("low", "high")  # the drum on the low band, the horn on the high band
TAPS = 2  # direct and Doppler


@dataclass(frozen=True)
class RotaryConfig:
    """Harmonics of each gain and sweep, the Doppler tap's longest delay (ms), the crossover
    FIR's length and the seconds of the training stream the fit's searches score."""

    harmonics: int = 4
    max_delay_ms: float = 3.0
    crossover_taps: int = 1024
    fit_seconds: float = 12.0

    def __post_init__(self) -> None:
        if not 1 <= self.harmonics <= 16:
            raise ValueError(f"harmonics must be in [1, 16], not {self.harmonics}")
        if not 0.1 <= self.max_delay_ms <= 50.0:
            raise ValueError(f"max_delay_ms must be in [0.1, 50], not {self.max_delay_ms}")
        if not 64 <= self.crossover_taps <= 16384:
            raise ValueError(f"crossover_taps must be in [64, 16384], not {self.crossover_taps}")
        if not 1.0 <= self.fit_seconds <= 600.0:
            raise ValueError(f"fit_seconds must be in [1, 600], not {self.fit_seconds}")

    @classmethod
    def from_dict(cls, data: dict) -> RotaryConfig:
        return config_from_dict(cls, data, "rotary config")


def harmonic_basis(theta: np.ndarray, harmonics: int) -> np.ndarray:
    """``[1, cos theta, sin theta, ..., cos H theta, sin H theta]``: ``(2H + 1, T)``."""
    c1, s1 = np.cos(theta), np.sin(theta)
    rows = [np.ones_like(theta), c1, s1]
    c, s = c1, s1
    for _ in range(1, harmonics):
        c, s = c * c1 - s * s1, s * c1 + c * s1
        rows += [c, s]
    return np.stack(rows)


class RotaryModel(StreamFitted):
    """Two rotors on the bands of a crossover; see the module docstring."""

    family = "rotary"
    config_class = RotaryConfig
    free_running: ClassVar[bool] = True  # the rotors turn on from the start of a stream
    onnx_refusal: ClassVar[str | None] = "its rotors and delay lines run in NumPy"

    def __init__(self, config: RotaryConfig, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        f64, h = torch.float64, config.harmonics
        self.level = nn.Parameter(torch.tensor(1.0))  # an output trim (the fit leaves it at 1)
        self.rate: Tensor  # Hz, per rotor
        self.phase: Tensor  # rad at the stream's first sample, per rotor
        self.spin: Tensor  # s: the spin-up's time constant, per rotor
        self.pole: Tensor  # the crossover's low-pass pole
        self.delay: Tensor  # samples: the Doppler taps' centre
        self.sweep: Tensor  # (rotor, 2H + 1): the Doppler tap's swing (constant term 0)
        self.gains: Tensor  # (rotor, tap, 2H + 1)
        self.register_buffer("rate", torch.tensor([0.8, 1.0], dtype=f64))
        self.register_buffer("phase", torch.zeros(2, dtype=f64))
        self.register_buffer("spin", torch.zeros(2, dtype=f64))
        corner = math.exp(-2 * math.pi * 800 / self.sample_rate)  # an 800-Hz crossover
        self.register_buffer("pole", torch.tensor(corner, dtype=f64))
        self.register_buffer("delay", torch.zeros(2, dtype=f64))
        self.register_buffer("sweep", torch.zeros(2, 2 * h + 1, dtype=f64))
        gains = torch.zeros(2, TAPS, 2 * h + 1, dtype=f64)
        gains[:, 0, 0] = 1.0  # both bands straight through: the input unchanged
        self.register_buffer("gains", gains)
        self.max_delay = config.max_delay_ms * 1e-3 * self.sample_rate
        self.history = config.crossover_taps + int(math.ceil(self.max_delay)) + 2

    @property
    def receptive_field(self) -> int:
        return self.history + 1

    @property
    def rates_hz(self) -> tuple[float, float]:
        return float(self.rate[0]), float(self.rate[1])

    @property
    def rate_hz(self) -> float:
        """The horn's (high rotor's) speed once spun up."""
        return float(self.rate[1])

    def has_doppler(self, rotor: int) -> bool:
        return bool(float(self.delay[rotor]) != 0.0 or torch.any(self.sweep[rotor] != 0.0))

    def depth_ms(self, rotor: int = 1) -> float:
        """Half the Doppler tap's swing (ms) for ``rotor``."""
        d = self.doppler(rotor, np.linspace(0.0, 2.0 * math.pi, 1025)[:-1])
        return float(0.5 * (d.max() - d.min()) * 1e3 / self.sample_rate)

    def theta(self, rotor: int, t: np.ndarray) -> np.ndarray:
        """Rotor ``rotor``'s angle (rad) at stream samples ``t`` (float64)."""
        seconds = t / self.sample_rate
        spin = float(self.spin[rotor])
        if spin > 0.0:
            seconds = seconds + spin * np.expm1(-seconds / spin)
        turns = np.mod(float(self.rate[rotor]) * seconds, 1.0)
        return float(self.phase[rotor]) + 2.0 * math.pi * turns

    def doppler(self, rotor: int, theta: np.ndarray) -> np.ndarray:
        """The Doppler tap's delay (samples) at angles ``theta``."""
        basis = harmonic_basis(theta, self.config.harmonics)
        d = float(self.delay[rotor]) + self.sweep[rotor].numpy() @ basis
        return np.clip(d, 0.0, self.max_delay)

    def crossover(self) -> np.ndarray:
        """The low band's FIR: two one-pole sections, ``(1 - p)^2 (n + 1) p^n``."""
        p = float(np.clip(float(self.pole), 0.0, 0.999))
        n = np.arange(self.config.crossover_taps)
        return (1.0 - p) ** 2 * (n + 1) * p**n

    def columns(self, line: np.ndarray, t: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        """For input ``line (R, history + P)`` whose last ``P`` samples are at stream times
        ``t (P,)``: per rotor and tap, ``(basis (2H + 1, P), signal (R, P))`` such that the
        output is ``sum gains[r, k] @ basis * signal``."""
        # the bands from the line's sample ``taps`` on (the first with a whole FIR behind it
        # is ``taps - 1``, the valid convolution's first output)
        start = self.config.crossover_taps
        low = scipy.signal.oaconvolve(line, self.crossover()[None], mode="valid", axes=-1)[:, 1:]
        bands = (low, line[:, start:] - low)
        now = self.history - start + np.arange(t.size)
        out = []
        for r, band in enumerate(bands):
            theta = self.theta(r, t)
            basis = harmonic_basis(theta, self.config.harmonics)
            delayed = read(band, now - self.doppler(r, theta))
            out += [(basis, band[:, now]), (basis, delayed)]
        return out

    def render(self, line: np.ndarray, t: np.ndarray) -> np.ndarray:
        gains = self.gains.numpy().reshape(2 * TAPS, -1)
        return sum(
            (g @ basis) * signal
            for g, (basis, signal) in zip(gains, self.columns(line, t), strict=True)
        )

    def init_state(self, batch_size: int) -> State:
        rows = batch_size * self.channels
        return (
            torch.zeros(rows, self.history, dtype=torch.float64),  # the input, oldest first
            torch.zeros(1, dtype=torch.int64),  # samples seen
        )

    def step(self, x: Tensor, knobs: Tensor, state: State) -> tuple[Tensor, State]:
        b, c, n = x.shape
        past, seen = (s.numpy() for s in state)
        rows = x.detach().double().reshape(b * c, n).cpu().numpy()
        line = np.concatenate([past, rows], axis=1)
        t = np.arange(int(seen[0]), int(seen[0]) + n, dtype=np.float64)
        y = self.render(line, t)
        state = (torch.from_numpy(line[:, n:].copy()), torch.from_numpy(seen + n))
        return self.level * torch.from_numpy(y.reshape(b, c, n)).to(x), state

    def fit_closed_form(self, items: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> None:
        """Fit rotors, crossover, sweeps and gains to the training split (its items in order,
        one stream), see :mod:`fxclone.models.rotary_fit`."""
        from fxclone.models.rotary_fit import fit_rotary

        fit_rotary(self, *self.mono_stream(items))
