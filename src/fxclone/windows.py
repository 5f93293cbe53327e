"""Training windows: which stretches of the training audio each epoch trains on.

Windows carry a warm-up prefix (the model's receptive field, or a burn-in for recurrent
models) that is excluded from the loss, so every scored sample sees its full past. An epoch's
draws depend only on the seed and the epoch number, so a resumed run sees the same batches.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset, Sampler

from fxclone.errors import FxcloneError
from fxclone.models.base import EffectModel, Items

RECURRENT_BURN_IN = 2048


def warmup_samples(model: EffectModel) -> int:
    """Samples of context before each scored target sample: the receptive field, or a burn-in.

    A look-ahead model's first scored output sits ``latency`` samples after its target (see
    models/base.py), so its context already covers that much of the receptive field."""
    if model.receptive_field <= 0:
        return RECURRENT_BURN_IN
    return max(0, model.receptive_field - 1 - model.latency_samples)


class WindowDataset(Dataset):
    """Windows of ``warmup + segment`` samples from (dry, wet, knobs) items.

    Items are left-padded with ``warmup`` zeros so windows at the very start see silence, as
    the model does at the start of a file. Window starts lie on a half-window grid; an index is
    a draw ``(window, jitter)`` from :class:`WindowSampler`.
    """

    def __init__(
        self,
        items: Items,
        warmup: int,
        segment: int,
        windows_per_epoch: int | None = None,
    ) -> None:
        self.warmup, self.segment = warmup, segment
        self.dry: list[Tensor] = []
        self.wet: list[Tensor] = []
        self.knobs: list[Tensor] = []
        self.index: list[tuple[int, int]] = []
        hop = max(1, segment // 2)
        for dry, wet, knobs in items:
            if dry.shape[1] < segment:
                continue
            pad = np.zeros((dry.shape[0], warmup), np.float32)
            self.dry.append(torch.from_numpy(np.concatenate([pad, dry], axis=1)))
            self.wet.append(torch.from_numpy(np.concatenate([pad, wet], axis=1)))
            self.knobs.append(torch.as_tensor(knobs, dtype=torch.float32))
            n = dry.shape[1]
            self.index += [(len(self.dry) - 1, s) for s in range(0, n - segment + 1, hop)]
        if not self.index:
            raise FxcloneError(
                f"the training split has no file longer than one training window ({segment} "
                "samples); generate longer material or pass a smaller --segment"
            )
        self.length = windows_per_epoch or max(1, math.ceil(len(self.index) / 2))

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, draw: tuple[int, int]) -> tuple[Tensor, Tensor, Tensor]:
        k, jitter = draw
        item, start = self.index[k]
        n = self.dry[item].shape[1] - self.warmup
        start = min(start + jitter, n - self.segment)
        sl = slice(start, start + self.warmup + self.segment)
        return self.dry[item][:, sl], self.wet[item][:, sl], self.knobs[item]


class WindowSampler(Sampler[tuple[int, int]]):
    """An epoch's window draws ``(window, jitter)``, a function of the seed and epoch alone.

    With as many draws per epoch as grid windows, an epoch is a permutation of the grid;
    otherwise windows are drawn with replacement. ``done()``, read when the epoch's first
    batch is drawn, is how many draws a run resumed mid-epoch already trained on: skipped."""

    def __init__(self, data: WindowDataset, seed: int) -> None:
        self.n, self.length, self.max_jitter = len(data.index), data.length, data.segment // 2
        self.seed, self.epoch = seed, 0
        self.done: Callable[[], int] = lambda: 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.length

    def __iter__(self) -> Iterator[tuple[int, int]]:
        g = torch.Generator().manual_seed((self.seed * 1_000_003 + self.epoch) % 2**63)
        if self.length == self.n:
            windows = torch.randperm(self.n, generator=g)
        else:
            windows = torch.randint(self.n, (self.length,), generator=g)
        jitters = torch.randint(self.max_jitter + 1, (self.length,), generator=g)
        for i in range(min(self.done(), self.length), self.length):
            yield int(windows[i]), int(jitters[i])
