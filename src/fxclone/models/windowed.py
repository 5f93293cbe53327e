"""Window -> sample models: output sample n is a function of a fixed window of input samples.

``y[n] = f(x[n-W+1 .. n], knobs)`` with ``W = window_samples``. A model with look-ahead
``L`` (a window centred on the sample it estimates, as in McCool's code, MODELS.md §2.5) uses
the same window and declares ``latency_samples = L``: its output at n is its estimate of the
wet sample ``n - L``. Nothing carries over between windows, so the receptive field is W.

``forward`` and ``step`` batch the windows with a gather: a block of T samples becomes T
windows of W samples that ``window_net`` maps to T output samples. Streaming state is one
tensor, the last ``W - 1`` input samples ``(batch, channels, W - 1)``, so ``step`` over any
block sizes equals ``forward``. Without gradients, windows are processed in chunks to bound
memory: every output sample costs a whole network evaluation (MODELS.md §3.1 measures 0.8 ms
per sample for KTH's LSTM on a GPU), and every window of a long file at once would not fit.
With gradients, autograd keeps every chunk's activations anyway, so all go at once.

Training: the trainer prepends ``receptive_field - 1 = W - 1`` samples of context to each
training window and scores only the samples after it. :func:`scored_forward` (the training
stage's forward) evaluates just the windows that lie wholly inside the training window, which
are exactly the scored ones, instead of paying for ``W - 1`` unscored outputs per window.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from fxclone.models.base import EffectModel, Stage, State

# Elements (windows x window samples x feature width) evaluated at once without gradients:
# one chunk's widest feature map stays near 256 MB in float32 (kth-lstm: 170 windows a call).
CHUNK_ELEMENTS = 1 << 26


def sliding_windows(full: Tensor, window: int) -> Tensor:
    """``(batch, channels, W - 1 + T)`` -> ``(batch, T, channels, W)``: window t ends at
    ``full[..., W - 1 + t]``. A gather rather than ``unfold``, so that an ONNX trace keeps
    the block length dynamic."""
    count = full.shape[2] - window + 1
    idx = (
        torch.arange(window, device=full.device) + torch.arange(count, device=full.device)[:, None]
    )
    return full[:, :, idx].transpose(1, 2)


def knob_channels(windows: Tensor, knobs: Tensor) -> Tensor:
    """Append knobs ``(N, n_knobs)`` to windows ``(N, C, W)`` as constant channels."""
    if knobs.shape[1] == 0:
        return windows
    return torch.cat([windows, knobs[:, :, None].expand(-1, -1, windows.shape[2])], dim=1)


class WindowedModel(EffectModel):
    """Base class of window -> sample models (McCool's CNN and MLP, KTH's models).

    Subclasses give ``window_samples`` (W), ``window_net`` and, where the per-sample features
    are wide, ``feature_width`` (used only to size the processing chunks)."""

    @property
    @abstractmethod
    def window_samples(self) -> int:
        """W: input samples in one window, ending at the output index."""

    @property
    def feature_width(self) -> int:
        """Largest number of features per window sample inside ``window_net``."""
        return self.channels + self.n_knobs

    @abstractmethod
    def window_net(self, windows: Tensor, knobs: Tensor) -> Tensor:
        """Windows ``(N, channels, W)`` and knobs ``(N, n_knobs)`` -> ``(N, channels)``."""

    @property
    def receptive_field(self) -> int:
        return self.window_samples

    def init_state(self, batch_size: int) -> State:
        p = next(self.parameters())
        shape = (batch_size, self.channels, self.window_samples - 1)
        return (torch.zeros(shape, dtype=p.dtype, device=p.device),)

    def step(self, x: Tensor, knobs: Tensor, state: State) -> tuple[Tensor, State]:
        full = torch.cat([state[0], x], dim=2)
        keep = self.window_samples - 1
        return self.full_windows(full, knobs), (full[:, :, full.shape[2] - keep :],)

    def full_windows(self, full: Tensor, knobs: Tensor) -> Tensor:
        """Outputs for every window lying wholly inside ``full`` ``(batch, channels, S)``:
        ``(batch, channels, S - W + 1)``, the first ending at ``full[..., W - 1]``."""
        batch, window = full.shape[0], self.window_samples
        count = full.shape[2] - window + 1
        if count <= 0:
            return full.new_zeros((batch, self.channels, 0))
        per_chunk = max(1, CHUNK_ELEMENTS // (batch * window * self.feature_width))
        if count <= per_chunk or torch.is_grad_enabled():
            return self._chunk(full, knobs)
        starts = range(0, count, per_chunk)
        parts = [full[:, :, s : s + min(per_chunk, count - s) + window - 1] for s in starts]
        return torch.cat([self._chunk(part, knobs) for part in parts], dim=2)

    def _chunk(self, full: Tensor, knobs: Tensor) -> Tensor:
        """``full_windows`` in one go (no Python arithmetic on the block length, which an ONNX
        trace would freeze)."""
        windows = sliding_windows(full, self.window_samples)  # (B, T, C, W)
        flat = windows.reshape(-1, self.channels, self.window_samples)
        per_window = knobs[:, None, :].expand(-1, windows.shape[1], -1)
        per_window = per_window.reshape(flat.shape[0], self.n_knobs)
        y = self.window_net(flat, per_window)  # (B * T, C)
        return y.view(full.shape[0], -1, self.channels).transpose(1, 2)

    def training_stages(self) -> tuple[Stage, ...]:
        return (Stage(forward=scored_forward),)


def scored_forward(model: Any, x: Tensor, knobs: Tensor, target: Tensor) -> Tensor:
    """The training stage's forward: in training mode, only the windows that lie wholly inside
    ``x`` are evaluated and the ``W - 1`` outputs before them (the trainer's warm-up, never
    scored) are zeros; in evaluation mode, the model's own ``forward``."""
    if not model.training:
        return model(x, knobs)
    knobs = model.check_inputs(x, knobs)
    return F.pad(model.full_windows(x, knobs), (model.window_samples - 1, 0))


__all__ = ["CHUNK_ELEMENTS", "WindowedModel", "knob_channels", "scored_forward", "sliding_windows"]
