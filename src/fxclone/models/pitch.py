"""A streaming phase-vocoder pitch shifter with a fitted ratio, delay and mix.

Sample-to-sample networks collapse on pitch shifting (McCool's models gave noise): every output
frequency is a multiple of an input one, which no short filter or memoryless nonlinearity
makes. This model holds the structure pitch shifters share:

* a short-time Fourier transform (periodic Hann window of ``n_fft`` samples, hop ``n_fft /
  overlap``); in each frame every bin's true frequency is read from its phase advance since
  the frame before;
* each bin moved to ``ratio`` times its frequency (magnitudes landing in one bin add up, their
  frequencies averaged by magnitude) and resynthesised with phases accumulated from those
  frequencies, then windowed and overlap-added;
* ``voices`` shifted voices (an octaver's octave down and up), each at its own ratio and gain
  (``wet_gain``), delayed by the analysis (``n_fft`` samples) plus a fitted ``delay``, and
  the dry signal by its own fitted ``dry_delay`` and gain.

Frames sit at fixed positions of the stream (frame ``m`` reads samples ``(m + 1) hop - n_fft``
to ``(m + 1) hop - 1``), and every state the vocoder carries (the samples of the frame being
filled, the last analysis phases, the synthesis phases, the overlap-add tail and the finished
samples waiting for their delay) is explicit, so streaming equals offline for any block size.
The model is causal: its delay is part of what it reproduces (a pitch pedal's own latency),
not a look-ahead.

The fit (:meth:`PitchModel.fit_closed_form`, :mod:`fxclone.models.pitch_fit`) reads the ratio
from the wet signal's spectrum against the dry one's on a log-frequency axis, the delays from
envelope cross-correlation and the gains by least squares; nothing is trained by gradient.
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
from fxclone.models.closed_form import StreamFitted


@dataclass(frozen=True)
class PitchConfig:
    """Analysis frame (ms; rounded to a power-of-two number of samples), frames per frame
    length, the longest delay (ms) the fit may give either path, and how many shifted voices
    (an octaver's down and up) the model holds."""

    frame_ms: float = 43.0
    overlap: int = 4
    max_delay_ms: float = 250.0
    voices: int = 2

    def __post_init__(self) -> None:
        if not 1.0 <= self.frame_ms <= 500.0:
            raise ValueError(f"frame_ms must be in [1, 500], not {self.frame_ms}")
        if self.overlap not in (2, 4, 8, 16):
            raise ValueError(f"overlap must be 2, 4, 8 or 16, not {self.overlap}")
        if not 0.0 <= self.max_delay_ms <= 2000.0:
            raise ValueError(f"max_delay_ms must be in [0, 2000], not {self.max_delay_ms}")
        if not 1 <= self.voices <= 8:
            raise ValueError(f"voices must be in 1..8, not {self.voices}")

    @classmethod
    def from_dict(cls, data: dict) -> PitchConfig:
        return config_from_dict(cls, data, "pitch config")


class PitchModel(StreamFitted):
    """Phase-vocoder pitch shift by a fitted ratio, mixed with the (delayed) dry signal."""

    family = "pitch"
    onnx_refusal: ClassVar[str | None] = "its pitch shifter runs in NumPy"
    config_class = PitchConfig

    def __init__(self, config: PitchConfig, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        self.n_fft = 2 ** max(3, round(math.log2(config.frame_ms * 1e-3 * self.sample_rate)))
        self.hop = self.n_fft // config.overlap
        self.log_ratio = nn.Parameter(torch.zeros(config.voices))  # ln(ratio) per voice
        self.dry_gain = nn.Parameter(torch.tensor(0.0))
        self.wet_gain = nn.Parameter(torch.eye(1, config.voices)[0])
        self.delay: Tensor
        self.dry_delay: Tensor
        self.register_buffer("delay", torch.tensor(0))  # samples beyond the analysis frame
        self.register_buffer("dry_delay", torch.tensor(0))
        self.max_delay = int(config.max_delay_ms * 1e-3 * self.sample_rate)
        window = torch.hann_window(self.n_fft, periodic=True, dtype=torch.float64)
        self.window: Tensor
        self.register_buffer("window", window, persistent=False)
        # overlap-added squared windows sum to this constant
        self.norm = float(torch.sum(window**2)) / self.hop

    @property
    def receptive_field(self) -> int:
        return self.n_fft + self.max_delay + 1

    @property
    def ratio(self) -> float:
        """The loudest voice's pitch ratio."""
        loudest = int(torch.argmax(self.wet_gain.detach().abs()))
        return float(torch.exp(self.log_ratio.detach()[loudest]))

    def init_state(self, batch_size: int) -> State:
        rows, bins = batch_size * self.channels, self.n_fft // 2 + 1
        zeros = torch.zeros
        return (
            zeros(rows, self.n_fft - self.hop, dtype=torch.float64),  # frame being filled
            zeros(rows, bins, dtype=torch.float64),  # last analysis phases
            zeros(rows, self.config.voices, bins, dtype=torch.float64),  # synthesis phases
            zeros(rows, self.n_fft - self.hop, dtype=torch.float64),  # overlap-add tail
            zeros(rows, 0, dtype=torch.float64),  # finished samples not yet due
            zeros(rows, self.max_delay, dtype=torch.float64),  # dry history
            torch.zeros(1, dtype=torch.int64),  # samples seen
        )

    def shift_frames(self, frames: Tensor, last: Tensor, psi: Tensor) -> tuple[Tensor, Tensor,
                                                                              Tensor]:  # fmt: skip
        """Pitch-shift frames ``(R, M, n_fft)`` given the phases of the frame before (``last``,
        ``(R, bins)``) and each voice's synthesis phases so far (``psi``, ``(R, voices,
        bins)``); returns the synthesised frames (all voices, with their gains, windowed
        again) and the new ``last`` and ``psi``."""
        n, hop = self.n_fft, self.hop
        spectrum = torch.fft.rfft(frames * self.window, dim=-1)
        magnitude, phase = spectrum.abs(), spectrum.angle()
        bins = torch.arange(n // 2 + 1, dtype=torch.float64)
        advance = 2.0 * math.pi * hop / n
        previous = torch.cat([last[:, None], phase[:, :-1]], 1)
        deviation = phase - previous - advance * bins
        deviation = deviation - 2.0 * math.pi * torch.round(deviation / (2.0 * math.pi))
        frequency = bins + deviation / advance  # in bins
        total = torch.zeros_like(spectrum)
        ends = []
        for voice in range(self.log_ratio.numel()):
            ratio = torch.exp(self.log_ratio.detach()[voice].double())
            target = torch.round(bins * ratio).long()
            share = magnitude * (target < bins.numel()).double()
            target = target.clamp(max=bins.numel() - 1).expand_as(magnitude)
            moved = torch.zeros_like(magnitude).scatter_add_(-1, target, share)
            weighted = torch.zeros_like(magnitude).scatter_add_(-1, target, share * frequency)
            heard = torch.where(moved > 0, ratio * weighted / moved.clamp_min(1e-300), bins)
            phases = psi[:, voice, None] + torch.cumsum(advance * heard, 1)
            phases = torch.remainder(phases, 2.0 * math.pi)
            total = total + torch.polar(moved * self.wet_gain[voice].double(), phases)
            ends.append(phases[:, -1])
        out = torch.fft.irfft(total, n=n, dim=-1) * self.window / self.norm
        return out, phase[:, -1], torch.stack(ends, 1)

    def step(self, x: Tensor, knobs: Tensor, state: State) -> tuple[Tensor, State]:
        filling, last, psi, tail, ready, dry_history, seen = state
        b, c, count = x.shape
        if count == 0:
            return x, state
        n, hop = self.n_fft, self.hop
        rows = x.double().reshape(b * c, count)
        start = int(seen.item())
        # frames m whose last sample, (m + 1) hop - 1, falls inside this block
        first, end = start // hop, (start + count) // hop
        buffer = torch.cat([filling, rows], 1)  # from sample (first + 1) hop - n on
        if end > first:
            frames = buffer[:, : (end - first - 1) * hop + n].unfold(1, n, hop)
            out, last, psi = self.shift_frames(frames, last, psi)
            summed = torch.nn.functional.fold(
                out.transpose(1, 2), (1, (frames.shape[1] - 1) * hop + n), (1, n), stride=(1, hop)
            )[:, 0, 0]
            summed[:, : n - hop] += tail
            done = frames.shape[1] * hop
            ready, tail = torch.cat([ready, summed[:, :done]], 1), summed[:, done:]
        filling = buffer[:, buffer.shape[1] - (n - hop + (start + count) % hop) :]

        # The shifted voice: finished sample t (from (1 - n / hop) hop on) plays at t + n + delay.
        lag = n + int(self.delay)
        origin = hop - n  # absolute index of the first finished sample
        behind = origin + end * hop - ready.shape[1]  # absolute index of ready[:, 0]
        want = torch.arange(start, start + count) - lag - behind
        shifted = rows.new_zeros(rows.shape)
        if ready.shape[1]:
            valid = (want >= 0) & (want < ready.shape[1])
            shifted = torch.where(valid, ready[:, want.clamp(0, ready.shape[1] - 1)], 0.0)
        keep_from = max(0, start + count - lag - behind)
        ready = ready[:, keep_from:]

        history = torch.cat([dry_history, rows], 1)
        d = int(self.dry_delay)
        total = history.shape[1]
        delayed = history[:, total - count - d : total - d]
        y = self.dry_gain.double() * delayed + shifted
        state = (filling, last, psi, tail, ready, history[:, total - self.max_delay :],
                 seen + count)  # fmt: skip
        return y.reshape(b, c, count).to(x.dtype), state

    def fit_closed_form(self, items: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> None:
        """Fit ratio, delays and gains to the training split (its items in order, one
        stream), see :mod:`fxclone.models.pitch_fit`."""
        from fxclone.models.pitch_fit import fit_pitch

        fit_pitch(self, *self.mono_stream(items))
