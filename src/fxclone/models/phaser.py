"""A free-running oscillator sweeping a cascade of first-order all-pass stages: the phaser.

A phaser's notches move with an oscillator whose phase the dry input does not carry (a WaveNet
trained on one leaves about half the energy as error). This model holds the oscillator,
``theta[n] = phase + 2 pi rate n / fs``, and the structure phasers are built from:

* ``stages`` first-order all-pass sections ``A(z) = (a + z^-1) / (1 + a z^-1)``, all at one
  break frequency ``f_b``: ``a = (t - 1) / (t + 1)``, ``t = tan(pi f_b / fs)``;
* the break frequency swept on a log scale, ``log f_b = centre + s(theta)``, ``s`` a sine
  plus a few harmonics (a triangle or an exponential sweep is a few harmonics away);
* the cascade's output fed back one sample later, ``u[n] = x[n] + fb v[n - 1]``, and the
  output ``dry_gain x + wet_gain v``.

The coefficient is held over blocks of ``hold`` samples (about 0.7 ms, aligned to the start of
the stream, taking the oscillator's value at the block's centre): inside a block the loop is a
linear time-invariant state-space system, so every block's response to its own input and to
the state it starts in are computed for all blocks at once, and only the state is carried
from block to block. Streaming splits its input at the same block boundaries, so streaming
equals offline for any block size.

The stage count is fitted (a buffer: 2 to ``max_stages``); the fit
(:mod:`fxclone.models.phaser_fit`) reads the sweep from frame-wise static all-pass fits and
needs no gradient training.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor, nn

from fxclone.models.base import State, config_from_dict
from fxclone.models.closed_form import OscillatorModel
from fxclone.models.lfo import harmonic_series


@dataclass(frozen=True)
class PhaserConfig:
    """Most all-pass stages the fit may choose, harmonics of the sweep, the coefficient's hold
    time (ms; rounded to a power-of-two number of samples) and the fit's search budget (s)."""

    max_stages: int = 12
    harmonics: int = 4
    hold_ms: float = 0.67
    fit_seconds: float = 60.0

    def __post_init__(self) -> None:
        if not 1 <= self.max_stages <= 24 or self.harmonics < 1:
            raise ValueError("max_stages must be in 1..24 and harmonics >= 1")
        if not 0 < self.hold_ms <= 10:
            raise ValueError(f"hold_ms must be in (0, 10], not {self.hold_ms}")
        if self.fit_seconds < 0:
            raise ValueError(f"fit_seconds must be >= 0, not {self.fit_seconds}")

    @classmethod
    def from_dict(cls, data: dict) -> PhaserConfig:
        return config_from_dict(cls, data, "phaser config")


class PhaserModel(OscillatorModel):
    """An oscillator-swept all-pass cascade with feedback, mixed with the dry signal."""

    family = "phaser"
    onnx_refusal: ClassVar[str | None] = "its sweep is cut into held blocks by NumPy indexing"
    config_class = PhaserConfig

    def __init__(self, config: PhaserConfig, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        self.log_rate = nn.Parameter(torch.tensor(math.log(0.5)))
        self.phase = nn.Parameter(torch.tensor(0.0))
        self.centre = nn.Parameter(torch.tensor(math.log(600.0)))  # log Hz
        sweep = torch.zeros(config.harmonics, 2)
        sweep[0, 1] = 1.0
        self.sweep = nn.Parameter(sweep)  # log-frequency excursion: harmonics of theta
        self.feedback = nn.Parameter(torch.tensor(0.0))
        self.dry_gain = nn.Parameter(torch.tensor(1.0))
        self.wet_gain = nn.Parameter(torch.tensor(0.0))
        self.stages: Tensor
        self.register_buffer("stages", torch.tensor(min(4, config.max_stages)))
        self.hold = 2 ** max(0, round(math.log2(config.hold_ms * 1e-3 * self.sample_rate)))
        self.size = config.max_stages + 1  # one state per stage, then the fed-back sample

    @property
    def receptive_field(self) -> int:
        return int(0.5 * self.sample_rate)  # an IIR loop: its memory, in practice

    def init_state(self, batch_size: int) -> State:
        state = torch.zeros(batch_size * self.channels, self.size, dtype=torch.float64)
        return state, torch.zeros(1, dtype=torch.float64)  # samples since the start

    def break_hz(self, samples: Tensor) -> Tensor:
        """The break frequency (Hz, float64) at sample indices ``samples`` (float64)."""
        omega = 2.0 * math.pi * torch.exp(self.log_rate.double()) / self.sample_rate
        theta = self.phase.double() + torch.remainder(omega * samples, 2.0 * math.pi)
        log_f = self.centre.double() + harmonic_series(theta, self.sweep.double())
        return torch.exp(log_f).clamp(10.0, 0.45 * self.sample_rate)

    def coefficient(self, samples: Tensor) -> Tensor:
        t = torch.tan(math.pi * self.break_hz(samples) / self.sample_rate)
        return (t - 1.0) / (t + 1.0)

    def _loop_step(self, a: Tensor, state: Tensor, x: Tensor) -> tuple[Tensor, Tensor]:
        """One sample of the loop for many runs at once: ``a (K, 1)``, ``state (K, N, S + 1)``
        (each stage's state, then the fed-back sample), ``x (K, N)``; returns the cascade
        output ``(K, N)`` and the next state."""
        u = x + self.feedback.double() * state[..., -1]
        zs = []
        for i in range(state.shape[-1] - 1):
            out = a * u + state[..., i]
            zs.append(u - a * out)
            u = out
        return u, torch.stack([*zs, u], -1)

    def run(self, x: Tensor, state: Tensor, start: Tensor) -> tuple[Tensor, Tensor]:
        """Cascade output ``v`` for rows ``x (N, T)`` (float64) whose first samples are number
        ``start`` (float64, ``(1,)`` or one per row, all alike modulo ``hold``) of their
        streams, from ``state (N, size)``; returns ``v`` and the state after the last sample.

        Inside a run of ``L`` samples sharing one coefficient the loop is ``s' = s M + x g``,
        ``v = s c + x d`` (row-vector state): every run's ``M, g, c, d`` come from one step of
        unit probes, the powers ``M^j c`` and ``g M^j`` (``j < hold``) by doubling, and then
        ``v_j = s M^j c + sum_i x_i h_(j-i)`` (``h = d, g c, g M c, ...``) and the end state
        ``s M^L + sum_i x_i g M^(L-1-i)`` are products. Every operation is batched over the
        runs and rows; none loops over samples."""
        rows, total = x.shape
        hold, stages = self.hold, int(self.stages)
        first = int(start[0].item()) % hold
        # Runs of samples sharing a block's coefficient: the first may begin mid-block.
        head = min(hold - first, total)
        full, tail = divmod(total - head, hold)
        lengths = np.array([head] + [hold] * full + ([tail] if tail else []))
        count = lengths.size
        block_starts = np.cumsum(lengths) - lengths - first * (np.arange(count) == 0)
        # each run takes the coefficient at the centre of its whole block
        centres = start[None] + torch.from_numpy(block_starts + (hold - 1) / 2.0)[:, None]
        a = self.coefficient(centres.expand(count, rows)).reshape(-1, 1)  # one per system
        systems = count * rows  # run k of row n is system k * rows + n

        size = stages + 1
        probe = torch.eye(size + 1, size, dtype=x.dtype).expand(systems, -1, -1)
        unit = torch.zeros(systems, size + 1, dtype=x.dtype)
        unit[:, -1] = 1.0  # the last probe: input 1 from rest
        out, nxt = self._loop_step(a, probe, unit)
        m, g, c, d = nxt[:, :size], nxt[:, size], out[:, :size], out[:, size]
        powers = [m]  # M^(2^b)
        m_c = c[..., None]  # (S, size, j): M^j c
        g_m = g[:, None]  # (S, j, size): g M^j
        while m_c.shape[-1] < hold:
            m_c = torch.cat([m_c, powers[-1] @ m_c], -1)
            g_m = torch.cat([g_m, g_m @ powers[-1]], 1)
            powers.append(powers[-1] @ powers[-1])
        m_c, g_m = m_c[..., :hold], g_m[:, :hold]
        h = torch.cat([d[:, None], torch.einsum("sp,spj->sj", g, m_c[..., : hold - 1])], 1)
        lag = torch.arange(hold)[:, None] - torch.arange(hold)[None]  # j - i
        toeplitz = torch.where(lag >= 0, h[:, lag.clamp(min=0)], 0.0)  # (S, j, i)

        slots = np.arange(count * hold).reshape(count, hold)
        index = torch.from_numpy(slots[np.arange(hold)[None] < lengths[:, None]])
        padded = x.new_zeros(rows, count * hold)
        padded[:, index] = x
        blocks = padded.view(rows, count, hold).transpose(0, 1).reshape(systems, hold)
        forced = torch.einsum("si,sji->sj", blocks, toeplitz)
        live = torch.from_numpy(lengths).repeat_interleave(rows)
        back = (live[:, None] - 1 - torch.arange(hold)[None]).clamp(min=0)  # L - 1 - i
        drive = g_m[torch.arange(systems)[:, None], back]  # (S, i, size): g M^(L-1-i)
        ends = torch.einsum("si,sip->sp", blocks, drive)
        # M^L by its binary digits (L = hold for all runs but the first and the last)
        transfer = torch.eye(size, dtype=x.dtype).expand(systems, -1, -1)
        for bit, power in enumerate(powers):
            on = ((live >> bit) & 1).bool()[:, None, None]
            if bool(on.any()):
                transfer = torch.where(on, transfer @ power, transfer)

        # Only the state is carried from run to run, s -> s M^L + e: the maps compose by a
        # parallel prefix scan (log2 of the run count batched products, not a loop).
        maps = transfer.reshape(count, rows, size, size)
        shifts = ends.reshape(count, rows, 1, size)
        reach = 1
        while reach < count:
            maps, shifts = (
                torch.cat([maps[:reach], maps[:-reach] @ maps[reach:]]),
                torch.cat([shifts[:reach], shifts[:-reach] @ maps[reach:] + shifts[reach:]]),
            )
            reach *= 2
        active = torch.cat([state[:, :stages], state[:, -1:]], 1)[None, :, None]
        after = active @ maps + shifts  # (K, N, 1, size): the state after each run
        starts = torch.cat([active, after[:-1]])[:, :, 0]
        free = torch.einsum("knp,knpj->knj", starts, m_c.reshape(count, rows, size, hold))
        v = (forced.reshape(count, rows, hold) + free).transpose(0, 1).reshape(rows, -1)
        last = after[-1, :, 0]
        state = torch.cat([last[:, :stages], state[:, stages:-1], last[:, -1:]], 1)
        return v[:, index], state

    def step(self, x: Tensor, knobs: Tensor, state: State) -> tuple[Tensor, State]:
        loop, count = state
        b, c, n = x.shape
        if n == 0:
            return x, state
        dry = x.double().reshape(b * c, n)
        v, loop = self.run(dry, loop, count)
        y = self.dry_gain.double() * dry + self.wet_gain.double() * v
        return y.reshape(b, c, n).to(x.dtype), (loop, count + n)

    def fit_closed_form(self, items: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> None:
        """Fit the oscillator, the sweep, the stage count and the gains to the training split,
        taken as one continuous stream (its items in order), see
        :mod:`fxclone.models.phaser_fit`."""
        from fxclone.models.phaser_fit import fit_phaser

        fit_phaser(self, *self.mono_stream(items))
