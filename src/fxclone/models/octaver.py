"""An analogue octaver: flip-flop octave down, rectifier octave up, dry blend, all fitted.

Octave pedals do not shift pitch the way a vocoder does: a Boss OC-2 divides the frequency of
the note it tracks with a flip-flop, an Octavia folds the waveform with a rectifier. Neither
is reachable by a network trained sample to sample (McCool's models gave noise; a WaveNet
learns the rectifier but not the division: on the built-in octaver its MRSTFT distance is
0.6 of the dry signal's), nor by a phase vocoder (the division's output is not a shifted
copy of the input's spectrum: a sine at ``f`` comes out as a wave of period ``2 / f`` with a
timbre of its own). This model holds their circuit and fits its few values:

* **down**: the input through a tracking filter (a first-order high-pass at ``track_hz[0]``
  and a second-order Butterworth low-pass at ``track_hz[1]``, so that only the fundamental
  crosses zero), a Schmitt trigger at ``+-threshold`` and a flip-flop that toggles at every
  rising crossing; the flip-flop's +-1 switches the polarity of the tracked signal;
* **up**: full-wave rectification ``|x|`` through a first-order high-pass at ``dc_hz`` (the
  coupling capacitor that removes the rectifier's DC);
* ``y = dry_gain x + down_gain down + up_gain up``.

Causal, no latency. The flip-flop's state (the comparator's last decision and the divider's
parity) and both filters' states are carried between blocks, so streaming equals offline for
any block size. The divider's parity at the start of a recording is as arbitrary as an
oscillator's phase: the model starts, as the built-in effect and most circuits do, with the
comparator low and the divider high.

The fit (:mod:`fxclone.models.octaver_fit`) scans the filters' corners and the threshold,
solving the three gains by least squares at each point.
"""

from __future__ import annotations

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
class OctaverConfig:
    """Seconds of the training stream the fit reads (from its start: the divider's parity
    depends on everything before)."""

    fit_seconds: float = 20.0

    def __post_init__(self) -> None:
        if not 0.1 <= self.fit_seconds <= 3600.0:
            raise ValueError(f"fit_seconds must be in [0.1, 3600], not {self.fit_seconds}")

    @classmethod
    def from_dict(cls, data: dict) -> OctaverConfig:
        return config_from_dict(cls, data, "octaver config")


def flip_flop(
    v: np.ndarray, threshold: float, held: np.ndarray, parity: np.ndarray, first: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A Schmitt trigger at ``+-threshold`` driving a divider, over rows of ``v``.

    Args:
        v: float64 ``(rows, samples)``, the tracked signal.
        threshold: the comparator's thresholds are ``+threshold`` and ``-threshold``.
        held: ``(rows,)`` the comparator's last decision before this block (+1 or -1; -1
            before any decision).
        parity: ``(rows,)`` rising edges counted so far, modulo 2.
        first: the block starts the stream (no edge can be counted at its first sample).

    Returns:
        the divider's output (+1 at even parity, -1 at odd) ``(rows, samples)``, and the new
        ``held`` and ``parity``.
    """
    rows, n = v.shape
    if n == 0:
        return np.zeros((rows, 0)), held, parity
    level = np.where(v > threshold, 1.0, np.where(v < -threshold, -1.0, 0.0))
    # the comparator holds its last decision between the thresholds
    last = np.maximum.accumulate(np.where(level != 0, np.arange(n), -1), axis=1)
    decided = np.take_along_axis(level, np.maximum(last, 0), axis=1)
    now = np.where(last >= 0, decided, held[:, None])
    before = np.concatenate([held[:, None], now[:, :-1]], axis=1)
    rising = (now > 0) & (before < 0)
    if first:
        rising[:, 0] = False
    count = parity[:, None] + np.cumsum(rising, axis=1)
    return 1.0 - 2.0 * (count % 2), now[:, -1].copy(), count[:, -1] % 2


class OctaverModel(StreamFitted):
    """Flip-flop octave down and rectifier octave up with their filters, mixed with the dry
    signal; see the module docstring."""

    family = "octaver"
    onnx_refusal: ClassVar[str | None] = "its tracker and divider run in NumPy and SciPy"
    config_class = OctaverConfig
    # the divider's parity runs on from the start of a stream: a split is scored as one
    free_running: ClassVar[bool] = True

    def __init__(self, config: OctaverConfig, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        self.dry_gain = nn.Parameter(torch.tensor(1.0))
        self.down_gain = nn.Parameter(torch.tensor(0.0))
        self.up_gain = nn.Parameter(torch.tensor(0.0))
        self.track_hz: Tensor
        self.threshold: Tensor
        self.dc_hz: Tensor
        self.register_buffer("track_hz", torch.tensor([40.0, 600.0], dtype=torch.float64))
        self.register_buffer("threshold", torch.tensor(3e-3, dtype=torch.float64))
        self.register_buffer("dc_hz", torch.tensor(20.0, dtype=torch.float64))
        self._designed: tuple[tuple[float, ...], tuple[np.ndarray, ...]] | None = None

    @property
    def receptive_field(self) -> int:
        return 1  # recursive filters and a flip-flop: its state is its memory

    def filters(self) -> tuple[np.ndarray, ...]:
        """The tracking filter's and the rectifier's DC block's second-order sections
        (designed again only when the corners change: a stream calls this every block)."""
        corners = (*self.track_hz.tolist(), float(self.dc_hz))
        if self._designed is None or self._designed[0] != corners:
            self._designed = (corners, self.design(self.sample_rate, *corners))
        return self._designed[1]

    @staticmethod
    def design(sr: int, hp_hz: float, lp_hz: float, dc_hz: float) -> tuple[np.ndarray, ...]:
        nyquist = 0.49 * sr
        track = np.vstack(
            [
                signal.butter(1, min(hp_hz, nyquist), "highpass", fs=sr, output="sos"),
                signal.butter(2, min(lp_hz, nyquist), "lowpass", fs=sr, output="sos"),
            ]
        )
        return track, signal.butter(1, min(dc_hz, nyquist), "highpass", fs=sr, output="sos")

    def init_state(self, batch_size: int) -> State:
        rows = batch_size * self.channels
        zeros = torch.zeros
        return (
            zeros(2, rows, 2, dtype=torch.float64),  # tracking filter
            zeros(1, rows, 2, dtype=torch.float64),  # DC block
            -torch.ones(rows, dtype=torch.float64),  # comparator's last decision
            zeros(rows, dtype=torch.float64),  # divider parity
            zeros(1, dtype=torch.int64),  # samples seen
        )

    def paths(self, rows: np.ndarray, state: State) -> tuple[np.ndarray, np.ndarray, State]:
        """The down and up paths of float64 ``rows`` ``(R, T)`` and the state after them."""
        zi_track, zi_dc, held, parity, seen = state
        track, dc = self.filters()
        tracked, zt = signal.sosfilt(track, rows, axis=-1, zi=zi_track.numpy())
        divider, h, p = flip_flop(
            tracked, float(self.threshold), held.numpy(), parity.numpy(), int(seen) == 0
        )
        up, zd = signal.sosfilt(dc, np.abs(rows), axis=-1, zi=zi_dc.numpy())
        new = (torch.from_numpy(zt), torch.from_numpy(zd), torch.from_numpy(h),
               torch.from_numpy(p.astype(np.float64)), seen + rows.shape[1])  # fmt: skip
        return divider * tracked, up, new

    def step(self, x: Tensor, knobs: Tensor, state: State) -> tuple[Tensor, State]:
        b, c, n = x.shape
        rows = x.detach().double().reshape(b * c, n).cpu().numpy()
        down, up, state = self.paths(rows, state)
        y = (
            self.dry_gain * x
            + self.down_gain * torch.from_numpy(down.reshape(b, c, n)).to(x)
            + self.up_gain * torch.from_numpy(up.reshape(b, c, n)).to(x)
        )
        return y, state

    def fit_closed_form(self, items: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> None:
        """Fit filters, threshold and gains to the training split (its items in order, one
        stream), see :mod:`fxclone.models.octaver_fit`."""
        from fxclone.models.octaver_fit import fit_octaver

        fit_octaver(self, *self.mono_stream(items))
