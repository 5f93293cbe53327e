"""A delay-line pitch shifter (a detuner): two taps sliding through a window, crossfaded.

The oldest pitch-shifter design (the rotating tape head, Eventide's H910, every chorus-like
"detune" plugin): a tap reads the input from a delay that grows (pitch down) or shrinks
(pitch up) by ``slope`` samples per sample, so what it reads plays at ``1 - slope`` times
the speed; when the delay leaves the window ``[0, window)`` it wraps round, and a second tap
half a window away takes over across a Hann crossfade, so the splice is not heard. A phase
vocoder (:mod:`fxclone.models.pitch`) cannot reproduce such a shifter's waveform (its
output is coherent with the input's delayed copies, a vocoder's is not); this model holds
the structure itself:

* tap A's delay ``d_A[n] = window * frac(phase / 2 pi + slope n / window)``, tap B's half
  a window further round, each read with linear interpolation;
* their weights ``w_A = (1 - cos(2 pi d_A / window)) / 2`` and ``w_B = 1 - w_A``;
* ``y = dry_gain x + wet_gain (w_A x[n - d_A] + w_B x[n - d_B])``.

The sweep is a free-running sawtooth (``rate_hz = |slope| fs / window``), counted from the
stream's first sample; ``phase`` sets where it stands there, so
:func:`fxclone.models.phase.refit_phase` matches a recording that starts anywhere. Causal,
no latency; the state (the last ``window`` samples and the samples seen) is carried between
blocks, so streaming equals offline for any block size. The fit
(:mod:`fxclone.models.splice_fit`) reads the window and slope from the wet signal's delayed
copies and refines them on the waveform.
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
from fxclone.models.closed_form import StreamFitted, read


@dataclass(frozen=True)
class SpliceConfig:
    """The longest window the fit may find (ms) and the seconds of the training stream the
    waveform search scores (in windows spread over the whole stream)."""

    max_window_ms: float = 200.0
    fit_seconds: float = 10.0

    def __post_init__(self) -> None:
        if not 1.0 <= self.max_window_ms <= 2000.0:
            raise ValueError(f"max_window_ms must be in [1, 2000], not {self.max_window_ms}")
        if not 0.1 <= self.fit_seconds <= 3600.0:
            raise ValueError(f"fit_seconds must be in [0.1, 3600], not {self.fit_seconds}")

    @classmethod
    def from_dict(cls, data: dict) -> SpliceConfig:
        return config_from_dict(cls, data, "splice config")


class SpliceModel(StreamFitted):
    """Two crossfaded taps sliding through a window, mixed with the dry signal; see the
    module docstring."""

    family = "splice"
    onnx_refusal: ClassVar[str | None] = "its sliding taps run in NumPy"
    config_class = SpliceConfig
    # the taps slide on from the start of a stream
    free_running: ClassVar[bool] = True

    def __init__(self, config: SpliceConfig, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        f64 = torch.float64
        self.dry_gain = nn.Parameter(torch.tensor(1.0))
        self.wet_gain = nn.Parameter(torch.tensor(0.0))
        self.slope: Tensor  # delay gained per sample (1 - the pitch ratio)
        self.window: Tensor  # samples
        self.phase: Tensor  # rad: where the sawtooth stands at the stream's first sample
        self.register_buffer("slope", torch.tensor(0.0, dtype=f64))
        self.register_buffer("window", torch.tensor(0.02 * self.sample_rate, dtype=f64))
        self.register_buffer("phase", torch.tensor(0.0, dtype=f64))
        self.history = int(math.ceil(config.max_window_ms * 1e-3 * self.sample_rate)) + 2

    @property
    def receptive_field(self) -> int:
        return self.history + 1

    @property
    def ratio(self) -> float:
        """The shifted taps' pitch ratio."""
        return 1.0 - float(self.slope)

    @property
    def rate_hz(self) -> float:
        """How often the taps wrap round the window."""
        return abs(float(self.slope)) * self.sample_rate / float(self.window)

    def taps(self, t: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(d_A, d_B, w_A)`` at stream times ``t`` (samples): the taps' delays (samples)
        and tap A's weight."""
        window = float(np.clip(float(self.window), 2.0, self.history - 2.0))
        turn = float(self.phase) / (2.0 * math.pi) + float(self.slope) / window * t
        a = window * np.mod(turn, 1.0)
        b = np.mod(a + 0.5 * window, window)
        return a, b, 0.5 - 0.5 * np.cos(2.0 * math.pi * a / window)

    def init_state(self, batch_size: int) -> State:
        rows = batch_size * self.channels
        return (
            torch.zeros(rows, self.history, dtype=torch.float64),  # the input, oldest first
            torch.zeros(1, dtype=torch.int64),  # samples seen
        )

    def shifted(self, rows: np.ndarray, state: State) -> tuple[np.ndarray, State]:
        """The taps' crossfaded output for float64 ``rows`` ``(R, T)`` and the state after."""
        past, seen = (s.numpy() for s in state)
        start, n = int(seen[0]), rows.shape[1]
        line = np.concatenate([past, rows], axis=1)
        t = np.arange(start, start + n, dtype=np.float64)
        a, b, weight = self.taps(t)
        now = self.history + np.arange(n)
        out = weight * read(line, now - a) + (1.0 - weight) * read(line, now - b)
        return out, (torch.from_numpy(line[:, n:].copy()), torch.from_numpy(seen + n))

    def step(self, x: Tensor, knobs: Tensor, state: State) -> tuple[Tensor, State]:
        b, c, n = x.shape
        rows = x.detach().double().reshape(b * c, n).cpu().numpy()
        wet, state = self.shifted(rows, state)
        shifted = torch.from_numpy(wet.reshape(b, c, n)).to(x)
        return self.dry_gain * x + self.wet_gain * shifted, state

    def fit_closed_form(self, items: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> None:
        """Fit window, slope, phase and gains to the training split (its items in order, one
        stream), see :mod:`fxclone.models.splice_fit`."""
        from fxclone.models.splice_fit import fit_splice

        fit_splice(self, *self.mono_stream(items))
