"""Test material for the stream-fitted models: noise in bursts of random level and colour."""

from __future__ import annotations

import functools

import numpy as np


@functools.cache
def bursts(seconds: float, seed: int, sample_rate: int) -> np.ndarray:
    """Noise in 50-ms bursts of random level (-30..0 dB), coloured by a one-pole filter of
    random sign (broadband, so every delay and every all-pass shows); float32, mono."""
    rng = np.random.default_rng(seed)
    n = int(seconds * sample_rate)
    hold = sample_rate // 20
    x = rng.standard_normal(n)
    x = x + 0.9 * np.concatenate([[0.0], x[:-1]]) * rng.choice([-1.0, 1.0])
    level = np.repeat(10 ** rng.uniform(-1.5, 0, n // hold + 1), hold)[:n]
    return (0.2 * x * level).astype(np.float32)


def streamed(model, dry: np.ndarray, sizes: list[int]) -> np.ndarray:
    """A stream-fitted model's output for mono ``dry`` fed through ``step`` in blocks of
    ``sizes`` (in turn, once each), from its initial state; as long as the blocks reach."""
    import torch

    state, pieces, at = model.init_state(1), [], 0
    with torch.no_grad():
        for size in sizes:
            block = torch.from_numpy(dry[at : at + size])[None, None]
            out, state = model.step(block, torch.zeros(1, 0), state)
            pieces.append(out[0, 0].numpy())
            at += size
    return np.concatenate(pieces)
