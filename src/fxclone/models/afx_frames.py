"""Frame-based models that stream exactly: framing, overlap-add and the look-ahead they cost.

The thesis models (MODELS.md §0.1) cut the input into frames of ``N`` samples at hop ``H``,
map each frame (with ``k`` context frames on either side, and for the feedforward WaveNet
``m`` extra input samples on either side) to an output frame of ``N`` samples, and overlap-add
the output frames, each multiplied by a periodic Hann(N) and by ``2H/N`` (unity gain for
``N/H`` an integer >= 2). Inside a frame the maths is non-causal (``same`` padding,
bidirectional LSTMs), so a frame can be computed only when its last input sample (and the last
sample of its last context frame) has arrived.

Streaming form. Frames sit on a grid fixed at the stream start: a frame "completes" at every
input index ``t`` with ``(t + 1) % H == 0``; the frame that completes at ``t`` takes its input
span (``2k + 1`` frames of ``N + 2m`` samples, hop ``H``) from the ``N + 2m + 2kH`` samples
ending at ``t``, and its output frame is added to output indices ``t .. t + N - 1``. So output
index ``n`` holds the estimate of the wet sample ``n - L`` with

    ``L = latency_samples = N - 1 + m + k * H``,

and it depends on input samples up to ``n`` only (the frame completing at ``n`` is the last to
add to it). Its earliest input lies ``2N + 2kH + 2m - 1`` samples back: the
``receptive_field``. Before the stream start the input is silence, which the model still
processes (silent frames give bias-driven output), exactly as the thesis' all-zero frames
outside a recording.

Streaming state: the last ``N + 2m + 2kH - 1`` input samples, the overlap-add tail (the
``N - 1`` output samples the completed frames have started), and the input position modulo
``H``. ``forward`` is ``step`` from silence, so ``step`` over any block sizes equals it; every
frame completing inside a block is computed in one batch (``unfold``), never in a Python loop.
"""

from __future__ import annotations

import math
from abc import abstractmethod
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from fxclone.models.base import EffectModel, State

# Without gradients (playback, validation) the frames of a long buffer go through the network
# in chunks, so that one chunk's widest feature map (batch x frames x input samples x width)
# stays near 128 MB in float32; with gradients autograd keeps every chunk's activations anyway.
CHUNK_ELEMENTS = 1 << 25

# A frame function maps input frames (batch, frames, channels, N + 2m) and knobs
# (batch, n_knobs) to output frames (batch, frames - 2k, channels, N).
FrameFunction = Callable[[Tensor, Tensor], Tensor]


def periodic_hann(n: int) -> Tensor:
    """Periodic Hann window of ``n`` samples (``w[0] = 0``), as TF/Keras and scipy build it."""
    i = torch.arange(n, dtype=torch.float64)
    return (0.5 - 0.5 * torch.cos(2 * math.pi * i / n)).float()


def overlap_add(frames: Tensor, hop: int) -> Tensor:
    """``(batch, frames, channels, N)`` -> ``(batch, channels, (frames - 1) * hop + N)``."""
    b, f, c, n = frames.shape
    length = (f - 1) * hop + n
    cols = frames.permute(0, 2, 3, 1).reshape(b * c, n, f)
    out = F.fold(cols, output_size=(1, length), kernel_size=(1, n), stride=(1, hop))
    return out.view(b, c, length)


def check_framing(frame_samples: int, hop_samples: int) -> None:
    """Refuse frame/hop pairs for which Hann overlap-add is not a constant gain."""
    if hop_samples < 1 or frame_samples < 2 * hop_samples or frame_samples % hop_samples:
        raise ValueError(
            f"frame_samples ({frame_samples}) must be a multiple of hop_samples ({hop_samples})"
            " and at least twice it, so that Hann overlap-add has a constant gain"
        )


class FramedModel(EffectModel):
    """Base of the frame models: subclasses call :meth:`setup_frames` in ``__init__`` and
    implement :meth:`frame_net`."""

    frame_samples: int
    hop_samples: int
    context_frames: int
    frame_margin: int
    analysis_window: bool
    frame_width: int
    window: Tensor  # periodic Hann(N), a buffer

    def setup_frames(
        self,
        frame_samples: int,
        hop_samples: int,
        *,
        context_frames: int = 0,
        margin: int = 0,
        analysis_window: bool = False,
        width: int = 1,
    ) -> None:
        """Frame ``N`` and hop ``H`` (samples), ``k`` context frames each side, ``m`` extra
        input samples each side of a frame. With ``analysis_window`` the input frames are
        Hann-windowed (CEQ, MODELS.md §1) and the output frames are not windowed again;
        otherwise the output frames are (MODELS.md §0.1). ``width``: the most features per
        sample inside the frame network (sizes the chunks of :data:`CHUNK_ELEMENTS`)."""
        check_framing(frame_samples, hop_samples)
        if context_frames < 0 or margin < 0:
            raise ValueError("context_frames and margin must be >= 0")
        if analysis_window and margin:
            raise ValueError("an analysis window needs frames without margin")
        self.frame_samples, self.hop_samples = int(frame_samples), int(hop_samples)
        self.context_frames, self.frame_margin = int(context_frames), int(margin)
        self.analysis_window = bool(analysis_window)
        self.frame_width = max(1, int(width))
        # Recomputed, not saved: a function of the config only.
        self.register_buffer("window", periodic_hann(frame_samples), persistent=False)

    @property
    def span_samples(self) -> int:
        """Input samples of one frame, margins included: ``N + 2m``."""
        return self.frame_samples + 2 * self.frame_margin

    @property
    def history_samples(self) -> int:
        """Input samples kept between blocks: ``N + 2m + 2kH - 1``."""
        return self.span_samples + 2 * self.context_frames * self.hop_samples - 1

    @property
    def latency_samples(self) -> int:
        return self.frame_samples - 1 + self.frame_margin + self.context_frames * self.hop_samples

    @property
    def receptive_field(self) -> int:
        return self.history_samples + self.frame_samples

    @abstractmethod
    def frame_net(self, frames: Tensor, knobs: Tensor) -> Tensor:
        """Input frames ``(batch, F, channels, N + 2m)`` -> output frames
        ``(batch, F - 2k, channels, N)``; output frame ``i`` is centred on input frame
        ``i + k``."""

    def init_state(self, batch_size: int) -> State:
        p = self.window
        c = self.channels
        hist = torch.zeros(batch_size, c, self.history_samples, dtype=p.dtype, device=p.device)
        tail = torch.zeros(batch_size, c, self.frame_samples - 1, dtype=p.dtype, device=p.device)
        pos = torch.zeros(1, dtype=torch.long, device=p.device)
        return (hist, tail, pos)

    def step(self, x: Tensor, knobs: Tensor, state: State) -> tuple[Tensor, State]:
        knobs = self.check_inputs(x, knobs)
        return self.run_frames(x, knobs, state, self.frame_net)

    def run_frames(
        self, x: Tensor, knobs: Tensor, state: State, net: FrameFunction
    ) -> tuple[Tensor, State]:
        """One block ``(batch, channels, T)`` through frame function ``net`` (``frame_net``,
        or another one with the same shapes such as a pretraining autoencoder)."""
        hist, tail, pos_t = state
        pos = int(pos_t.item())
        n, hop, k = self.frame_samples, self.hop_samples, self.context_frames
        length = x.shape[2]
        buf = torch.cat([hist, x], dim=2)
        total = F.pad(tail, (0, length))  # output indices 0 .. T + N - 2 of this block
        first = (hop - 1 - pos) % hop  # block index of the first frame completion
        if length > first:
            count = (length - 1 - first) // hop + 1
            frames = buf[:, :, first:].unfold(2, self.span_samples, hop)
            frames = frames[:, :, : count + 2 * k].transpose(1, 2)  # (B, F, C, N + 2m)
            if self.analysis_window:
                frames = frames * self.window
            out = self._chunked(net, frames, knobs, count)
            if not self.analysis_window:
                out = out * self.window
            ola = overlap_add(out * (2 * hop / n), hop)
            total = total + F.pad(ola, (first, total.shape[2] - first - ola.shape[2]))
        new_pos = pos_t.new_full((1,), (pos + length) % hop)
        new_hist = buf[:, :, buf.shape[2] - self.history_samples :]
        return total[:, :, :length], (new_hist, total[:, :, length:], new_pos)

    def _chunked(self, net: FrameFunction, frames: Tensor, knobs: Tensor, count: int) -> Tensor:
        """``net`` on ``count`` output frames' inputs, in chunks when no gradient is kept."""
        size = frames.shape[0] * self.span_samples * self.frame_width
        per_chunk = max(1, CHUNK_ELEMENTS // size)
        if torch.is_grad_enabled() or count <= per_chunk:
            return net(frames, knobs)
        k2 = 2 * self.context_frames
        parts = [
            net(frames[:, a : min(a + per_chunk, count) + k2], knobs)
            for a in range(0, count, per_chunk)
        ]
        return torch.cat(parts, dim=1)

    def frames_forward(self, x: Tensor, knobs: Tensor, net: FrameFunction) -> Tensor:
        """``forward`` through another frame function (same latency and framing)."""
        return self.run_frames(x, knobs, self.init_state(x.shape[0]), net)[0]


__all__ = [
    "CHUNK_ELEMENTS",
    "FrameFunction",
    "FramedModel",
    "check_framing",
    "overlap_add",
    "periodic_hann",
]
