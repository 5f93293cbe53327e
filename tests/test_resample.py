"""The integer-factor resampling wrapper for models designed for a lower sample rate."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fxclone.models.base import EffectModel, State
from fxclone.models.resample import ResampledModel, resampling_factor
from fxclone.models.rnn import RecurrentModel, RNNConfig


class _Identity(EffectModel):
    """Output = input delayed by ``latency`` samples (a stand-in inner model)."""

    family = "identity"

    def __init__(self, latency: int = 0, **kwargs) -> None:
        super().__init__(None, **kwargs)
        self.lat = latency

    @property
    def receptive_field(self) -> int:
        return self.lat + 1

    @property
    def latency_samples(self) -> int:
        return self.lat

    def init_state(self, batch_size: int) -> State:
        return (torch.zeros(batch_size, self.channels, self.lat),)

    def step(self, x, knobs, state):
        buf = torch.cat([state[0], x], dim=2)
        return buf[:, :, : x.shape[2]], (buf[:, :, x.shape[2] :],)


def _sine(freq: float, n: int = 24000, sr: int = 48000) -> torch.Tensor:
    t = np.arange(n) / sr
    return torch.from_numpy(0.5 * np.sin(2 * np.pi * freq * t)).float()[None, None]


@pytest.mark.parametrize("inner_latency", [0, 5])
def test_passband_is_transparent_after_the_declared_latency(inner_latency: int) -> None:
    model = ResampledModel(_Identity(inner_latency, sample_rate=16000), 3, 48000)
    assert model.latency_samples == 2 * 36 + 3 * inner_latency
    for freq in (100.0, 1000.0, 5000.0):
        x = _sine(freq)
        with torch.no_grad():
            y = model(x, None)
        lat = model.latency_samples
        err = (y[..., lat + 2000 :] - x[..., 2000 : x.shape[2] - lat]).abs().max()
        assert float(err) < 0.01 * 0.5, freq  # within 1 % of the amplitude (-40 dB)


def test_stopband_is_removed() -> None:
    model = ResampledModel(_Identity(sample_rate=16000), 3, 48000)
    with torch.no_grad():
        y = model(_sine(12000.0), None)  # above the internal Nyquist (8 kHz)
    assert float(y[..., 2000:].abs().max()) < 0.5 * 10 ** (-60 / 20)


@pytest.mark.parametrize("sizes", [[1], [7], [64], [1, 300, 17, 0, 64, 4096, 2, 999]])
def test_streaming_equals_offline(sizes: list[int]) -> None:
    torch.manual_seed(0)
    inner = RecurrentModel(RNNConfig(hidden_size=8), sample_rate=16000)
    model = ResampledModel(inner, 3, 48000).eval()
    x = 0.3 * torch.randn(2, 1, 3001)
    knobs = torch.zeros(2, 0)
    with torch.no_grad():
        offline = model(x, knobs)
        state, outs, i, k = model.init_state(2), [], 0, 0
        while i < x.shape[2]:
            b = sizes[k % len(sizes)]
            y, state = model.step(x[:, :, i : i + b], knobs, state)
            outs.append(y)
            i, k = i + b, k + 1
    assert float((torch.cat(outs, dim=2) - offline).abs().max()) <= 1e-6
    assert float(offline.abs().max()) > 1e-3


def test_factor_choice() -> None:
    assert resampling_factor(16000, 48000) == 3
    assert resampling_factor(16000, 44100) == 3  # runs at 14.7 kHz
    assert resampling_factor(16000, 32000) == 2
    assert resampling_factor(16000, 22050) == 1  # close enough: runs at the data's rate
    assert resampling_factor(None, 48000) == 1
