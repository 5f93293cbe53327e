"""Losses of the thesis models (MODELS.md §1-6). Each maps ``(estimate, target)`` of shape
``(batch, channels, samples)`` to a scalar.

The thesis computes its spectral losses per frame of the model's output, before overlap-add.
fxclone trains on overlap-added audio (a model's output is a waveform that streams), so the
frame losses here cut the waveforms into frames again, with the model's own frame length and
hop. At a data rate above the model's 16 kHz (the registry resamples), the frame length stays
in samples and so covers a shorter time.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from fxclone.models.afx_frames import periodic_hann


class MAELoss(nn.Module):
    """Mean absolute error between waveforms (Keras ``mae``)."""

    def forward(self, estimate: Tensor, target: Tensor) -> Tensor:
        return torch.mean(torch.abs(estimate - target))


def pre_emphasis(x: Tensor, coeff: float) -> Tensor:
    """``y[n] = x[n] - coeff x[n-1]`` along the last axis, from rest (``x[-1] = 0``)."""
    return torch.cat([x[..., :1], x[..., 1:] - coeff * x[..., :-1]], dim=-1)


def frames(x: Tensor, frame_samples: int, hop_samples: int) -> Tensor:
    """``(batch, channels, samples)`` -> ``(batch, channels, frames, frame_samples)``; a
    signal shorter than one frame is zero-padded to one."""
    if x.shape[-1] < frame_samples:
        x = F.pad(x, (0, frame_samples - x.shape[-1]))
    return x.unfold(-1, frame_samples, hop_samples)


class CEQLoss(nn.Module):
    """CEQ's loss, thesis Eq. 4.9 read as ``1.0 KL + 1.0 MSE + 0.1 MAE`` (MODELS.md §1).

    ``Y``, ``Yhat``: magnitudes of the 1,024-point FFT of Hann-windowed frames (hop 256).
    KL is Keras' ``kullback_leibler_divergence(Y, Yhat)`` of the spectra normalised to sum 1
    (both clipped to [1e-7, 1]); MSE is between the magnitudes; MAE between the waveforms.
    Sums over bins, means over frames, channels and batch as Keras does."""

    window: Tensor

    def __init__(
        self,
        frame_samples: int = 1024,
        hop_samples: int = 256,
        weights: tuple[float, float, float] = (1.0, 1.0, 0.1),
    ) -> None:
        super().__init__()
        self.frame_samples, self.hop_samples = frame_samples, hop_samples
        self.weights = weights
        self.register_buffer("window", periodic_hann(frame_samples), persistent=False)

    def spectrum(self, x: Tensor) -> Tensor:
        return torch.fft.rfft(frames(x, self.frame_samples, self.hop_samples) * self.window).abs()

    def forward(self, estimate: Tensor, target: Tensor) -> Tensor:
        y, yhat = self.spectrum(target), self.spectrum(estimate)
        p = torch.clamp(y / (y.sum(-1, keepdim=True) + 1e-12), 1e-7, 1.0)
        q = torch.clamp(yhat / (yhat.sum(-1, keepdim=True) + 1e-12), 1e-7, 1.0)
        kl = torch.mean(torch.sum(p * torch.log(p / q), dim=-1))
        mse = torch.mean((y - yhat) ** 2)
        mae = torch.mean(torch.abs(estimate - target))
        a, b, c = self.weights
        return a * kl + b * mse + c * mae


class CSAFxLoss(nn.Module):
    """CSAFx's loss (MODELS.md §6): ``MAE(P(w y), P(w yhat)) + 1e-4 MSE(S(w y), S(w yhat))``.

    ``w``: periodic Hann(N) per frame (hop H); ``P``: pre-emphasis ``1 - 0.95 z^-1`` per frame
    from rest; ``S``: KAPRE's spectrogram, one N-point DFT per frame with a Hann built into the
    DFT (so it sees ``w^2 s``), power in dB floored at 1e-10, minus the maximum over the whole
    batch, floored at -80 dB."""

    window: Tensor

    def __init__(
        self,
        frame_samples: int = 4096,
        hop_samples: int = 2048,
        pre_emphasis: float = 0.95,
        spectral_weight: float = 1e-4,
    ) -> None:
        super().__init__()
        self.frame_samples, self.hop_samples = frame_samples, hop_samples
        self.coeff, self.spectral_weight = pre_emphasis, spectral_weight
        self.register_buffer("window", periodic_hann(frame_samples), persistent=False)

    def spectrogram_db(self, windowed: Tensor) -> Tensor:
        power = torch.fft.rfft(windowed * self.window).abs() ** 2
        db = 10.0 * torch.log10(torch.clamp(power, min=1e-10))
        return torch.clamp(db - db.max(), min=-80.0)

    def forward(self, estimate: Tensor, target: Tensor) -> Tensor:
        wy = frames(target, self.frame_samples, self.hop_samples) * self.window
        wyhat = frames(estimate, self.frame_samples, self.hop_samples) * self.window
        mae = torch.mean(torch.abs(pre_emphasis(wy, self.coeff) - pre_emphasis(wyhat, self.coeff)))
        mse = torch.mean((self.spectrogram_db(wy) - self.spectrogram_db(wyhat)) ** 2)
        return mae + self.spectral_weight * mse


__all__ = ["CEQLoss", "CSAFxLoss", "MAELoss", "frames", "pre_emphasis"]
