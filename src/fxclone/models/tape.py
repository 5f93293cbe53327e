"""A tape echo: a wobbling delay in a saturating, band-limited feedback loop, all fitted.

A tape echo's repeats are neither a fixed impulse response (the tape's speed wobbles, so
each repeat arrives a little early or late and its pitch bends: the linear model leaves that
as error) nor a static nonlinearity of one (the record head saturates what is fed back, so
each repeat is clipped again). This model holds the machine:

* the record head: ``record = tanh(G (dry + feedback * playback)) / G``, ``G = exp(log_drive)``
  (small signals pass at unit gain, loud ones are squashed on every pass);
* the playback head reads ``record`` ``d(t) = delay + sum_k depth_k sin(2 pi rate_k t +
  phase_k)`` samples earlier (linear interpolation between samples): ``components``
  sinusoids, wow (below a hertz) and flutter (several hertz), with the stream's time ``t``
  counted from its first sample, so the wobble runs on as the machine's capstan does;
* the playback passes a second-order Butterworth high-pass and low-pass (``loop_hz``: the
  head bump and the gap loss), and ``y = dry_gain x + wet_gain playback``.

The loop only reads samples at least ``d`` old, so it runs in blocks shorter than the
shortest delay, each reading only what earlier blocks recorded (the result equals the
per-sample recursion). Causal, no latency; the state (the record history, the filters' state
and the samples seen) is carried between blocks, so streaming equals offline for any block
size. The fit (:mod:`fxclone.models.tape_fit`) reads the delay and its wobble from the wet
signal and scans the loop's values.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from scipy import signal
from torch import Tensor, nn

from fxclone.models.base import State, config_from_dict
from fxclone.models.closed_form import StreamFitted


@dataclass(frozen=True)
class TapeConfig:
    """The longest delay the fit may find (ms), how many wobble sinusoids the playback head
    follows, and the seconds of the training stream the loop's values are fitted on."""

    max_delay_ms: float = 1200.0
    components: int = 3
    fit_seconds: float = 30.0

    def __post_init__(self) -> None:
        if not 2.0 <= self.max_delay_ms <= 5000.0:
            raise ValueError(f"max_delay_ms must be in [2, 5000], not {self.max_delay_ms}")
        if not 0 <= self.components <= 8:
            raise ValueError(f"components must be in 0..8, not {self.components}")
        if not 0.1 <= self.fit_seconds <= 3600.0:
            raise ValueError(f"fit_seconds must be in [0.1, 3600], not {self.fit_seconds}")

    @classmethod
    def from_dict(cls, data: dict) -> TapeConfig:
        return config_from_dict(cls, data, "tape config")


class TapeModel(StreamFitted):
    """Wobbling delay in a saturating feedback loop with band-limiting filters, mixed with
    the dry signal; see the module docstring."""

    family = "tape"
    onnx_refusal: ClassVar[str | None] = "its wobbling delay line runs in NumPy"
    config_class = TapeConfig
    # the wobble runs on from the start of a stream, as the machine's capstan does
    free_running: ClassVar[bool] = True

    def __init__(self, config: TapeConfig, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        k = config.components
        self.dry_gain = nn.Parameter(torch.tensor(1.0))
        self.wet_gain = nn.Parameter(torch.tensor(0.0))
        f64 = torch.float64
        self.delay: Tensor  # samples
        self.rates: Tensor  # Hz
        self.phases: Tensor  # rad at the stream's first sample
        self.depths: Tensor  # samples
        self.feedback: Tensor
        self.log_drive: Tensor
        self.loop_hz: Tensor  # high-pass, low-pass corners
        self.register_buffer("delay", torch.tensor(0.1 * self.sample_rate, dtype=f64))
        self.register_buffer("rates", torch.ones(k, dtype=f64))
        self.register_buffer("phases", torch.zeros(k, dtype=f64))
        self.register_buffer("depths", torch.zeros(k, dtype=f64))
        self.register_buffer("feedback", torch.tensor(0.0, dtype=f64))
        self.register_buffer("log_drive", torch.tensor(0.0, dtype=f64))
        self.register_buffer("loop_hz", torch.tensor([20.0, 0.45 * self.sample_rate], dtype=f64))
        self.history = int(math.ceil(config.max_delay_ms * 1e-3 * self.sample_rate)) + 2
        self._designed: tuple[tuple[float, ...], np.ndarray] | None = None

    @property
    def receptive_field(self) -> int:
        return 1  # a recursive loop: its state is its memory

    def delays(self, t: np.ndarray) -> np.ndarray:
        """The playback head's delay (samples) at stream times ``t`` (samples)."""
        d = np.full(t.shape, float(self.delay))
        seconds = t / self.sample_rate
        for rate, phase, depth in zip(self.rates.tolist(), self.phases.tolist(),
                                      self.depths.tolist(), strict=True):  # fmt: skip
            d += depth * np.sin(2.0 * math.pi * rate * seconds + phase)
        return np.clip(d, 1.0, self.history - 2.0)

    def shortest_delay(self) -> float:
        return max(1.0, float(self.delay) - float(self.depths.abs().sum()))

    def loop_filter(self) -> np.ndarray:
        """The playback filters' second-order sections (designed again only when the
        corners change: a stream calls this every block)."""
        corners = tuple(self.loop_hz.tolist())
        if self._designed is None or self._designed[0] != corners:
            nyquist = 0.49 * self.sample_rate
            hp, lp = (min(max(f, 1.0), nyquist) for f in corners)
            sos = np.vstack(
                [
                    signal.butter(2, hp, "highpass", fs=self.sample_rate, output="sos"),
                    signal.butter(2, lp, "lowpass", fs=self.sample_rate, output="sos"),
                ]
            )
            self._designed = (corners, sos)
        return self._designed[1]

    def init_state(self, batch_size: int) -> State:
        rows = batch_size * self.channels
        return (
            torch.zeros(rows, self.history, dtype=torch.float64),  # recorded, oldest first
            torch.zeros(2, rows, 2, dtype=torch.float64),  # loop filter
            torch.zeros(1, dtype=torch.int64),  # samples seen
        )

    def playback(self, rows: np.ndarray, state: State) -> tuple[np.ndarray, State]:
        """The playback head's output for float64 ``rows`` ``(R, T)`` and the state after."""
        recorded, zi, seen = (s.numpy() for s in state)
        start, n = int(seen[0]), rows.shape[1]
        sos, drive, fb = self.loop_filter(), math.exp(float(self.log_drive)), float(self.feedback)
        block = max(1, int(math.floor(self.shortest_delay())) - 1)
        history = self.history
        tape = np.concatenate([recorded, np.zeros((rows.shape[0], n))], axis=1)
        out = np.empty_like(rows)
        for a in range(0, n, block):
            b = min(a + block, n)
            t = np.arange(start + a, start + b, dtype=np.float64)
            position = history + np.arange(a, b) - self.delays(t)  # index into tape
            i = np.floor(position).astype(np.int64)
            frac = position - i
            heard = (1.0 - frac) * tape[:, i] + frac * tape[:, i + 1]
            heard, zi = signal.sosfilt(sos, heard, axis=-1, zi=zi)
            out[:, a:b] = heard
            fed = rows[:, a:b] + fb * heard
            tape[:, history + a : history + b] = np.tanh(drive * fed) / drive
        new = (torch.from_numpy(tape[:, n:]), torch.from_numpy(zi),
               torch.from_numpy(seen + n))  # fmt: skip
        return out, new

    def step(self, x: Tensor, knobs: Tensor, state: State) -> tuple[Tensor, State]:
        b, c, n = x.shape
        rows = x.detach().double().reshape(b * c, n).cpu().numpy()
        played, state = self.playback(rows, state)
        wet = torch.from_numpy(played.reshape(b, c, n)).to(x)
        return self.dry_gain * x + self.wet_gain * wet, state

    def fit_closed_form(self, items: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> None:
        """Fit delay, wobble, loop and gains to the training split (its items in order, one
        stream), see :mod:`fxclone.models.tape_fit`."""
        from fxclone.models.tape_fit import fit_tape

        fit_tape(self, *self.mono_stream(items))
