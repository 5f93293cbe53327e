"""The pitch model: a streaming phase vocoder whose ratio, delays and mix are fitted."""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest
import torch

from fxclone.effects.registry import get_effect
from fxclone.metrics import mrstft
from fxclone.models import create_model
from fxclone.models.pitch import PitchModel
from fxclone.models.pitch_fit import fit_pitch
from fxclone.signals import TEST_MIX, TRAIN_MIX, synth_track
from noise import streamed

SR = 16000


def _run(model: PitchModel, dry: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model(torch.from_numpy(dry)[None, None])[0, 0].numpy()


def _f0(x: np.ndarray) -> float:
    """The strongest frequency of a steady tone (zero-padded FFT peak)."""
    spectrum = np.abs(np.fft.rfft(x * np.hanning(x.size), 1 << 20))
    return float(np.argmax(spectrum)) * SR / (1 << 20)


def test_streams_as_it_runs_offline_and_shifts_a_tone() -> None:
    model = create_model("pitch", sample_rate=SR)
    assert isinstance(model, PitchModel)
    with torch.no_grad():
        model.log_ratio.fill_(math.log(2 ** (7 / 12)))
        model.delay.fill_(100)
        model.dry_delay.fill_(50)
        model.dry_gain.fill_(0.5)
    t = np.arange(2 * SR) / SR
    tone = (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    offline = _run(model, tone)
    pieces = streamed(model, tone, [1, 37, 64, 100, 5, 2000, 64, 3, 700, 6000])
    np.testing.assert_allclose(pieces, offline[: pieces.size], atol=1e-6)
    model.dry_gain.data.fill_(0.0)
    shifted = _f0(_run(model, tone)[SR // 2 :])
    assert abs(1200 * math.log2(shifted / (220 * 2 ** (7 / 12)))) < 1.0


@functools.cache
def _pair(seconds: float, seed: int, semitones: float, mix: float) -> tuple[np.ndarray, ...]:
    material = TRAIN_MIX if seed == 1 else TEST_MIX
    dry = synth_track(seed, SR, seconds, material)
    knobs = {"semitones": semitones, "mix": mix}
    return dry, get_effect("pitch").process(dry[None], SR, knobs)[0]


@pytest.mark.parametrize(("semitones", "mix"), [(7.0, 100.0), (-12.0, 50.0)])
def test_fits_the_builtin_pitch_shifter(semitones: float, mix: float) -> None:
    """Ratio within a cent, the dry path's delay exact; the shifted spectrum far closer to
    the target's than the dry signal or silence."""
    model = create_model("pitch", sample_rate=SR)
    assert isinstance(model, PitchModel)
    dry, wet = _pair(30.0, 1, semitones, mix)
    ratio = fit_pitch(model, dry, wet)
    assert abs(1200 * math.log2(ratio) - 100 * semitones) < 1.0
    test, target = _pair(10.0, 2, semitones, mix)
    out = _run(model, test)
    distance = mrstft(target[None], out[None], SR)
    assert distance < 0.6 * mrstft(target[None], test[None], SR)
    assert distance < 0.3 * mrstft(target[None], 0 * test[None], SR)
    if mix < 100:
        from fxclone.effects.pitch import pitch_latency_samples

        assert int(model.dry_delay) == pitch_latency_samples(SR)
