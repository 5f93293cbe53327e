"""apply_file streams from disk to disk and matches the offline model output."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch

from fxclone.audio import write_audio
from fxclone.errors import FxcloneError
from fxclone.models import KnobSpec, create_model
from fxclone.streaming import StreamProcessor, apply_file, knob_tensor, process_array

SR = 48000


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return create_model("wavenet-nano", sample_rate=SR).eval()


def _offline(model, audio: np.ndarray) -> np.ndarray:
    """The model's offline output for ``audio`` after silence (a stream starts from the
    state silence leaves)."""
    warm = model.receptive_field - 1
    padded = np.concatenate([np.zeros((audio.shape[0], warm), np.float32), audio], axis=1)
    with torch.no_grad():
        return model(torch.from_numpy(padded)[:, None, :]).numpy()[:, 0, warm:]


def test_stream_starts_from_the_state_silence_leaves(model) -> None:
    """Silence in gives the model's settled output from the first sample (no thump); from
    the zero state (``warm=False``, the offline ``forward``) it does not."""
    silence = np.zeros((1, 3000), np.float32)
    settled = process_array(model, silence)
    assert np.ptp(settled) < 1e-6
    cold = process_array(model, silence, warm=False)
    assert np.ptp(cold) > 100 * max(np.ptp(settled), 1e-9)
    np.testing.assert_allclose(cold, _forward(model, silence), atol=1e-6)
    proc = StreamProcessor(model)
    first = proc.process(silence)
    proc.reset()
    np.testing.assert_allclose(proc.process(silence), first, atol=1e-7)


def _forward(model, audio: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model(torch.from_numpy(audio)[:, None, :]).numpy()[:, 0, :]


@pytest.mark.parametrize("block_size", [1000, 4096, 100_000])
def test_apply_file_equals_offline(model, tmp_path, block_size) -> None:
    rng = np.random.default_rng(0)
    audio = (0.3 * rng.standard_normal((2, 12_345))).astype(np.float32)  # stereo, odd length
    src = write_audio(tmp_path / "in.wav", audio, SR)
    dst = apply_file(model, src, tmp_path / "out.wav", block_size=block_size)
    got, sr = sf.read(dst, dtype="float32", always_2d=True)
    assert sr == SR and got.shape == (12_345, 2)
    np.testing.assert_allclose(got.T, _offline(model, audio), atol=1e-5)


def test_apply_file_resamples_input(model, tmp_path) -> None:
    t = np.arange(44_100) / 44_100
    audio = (0.5 * np.sin(2 * np.pi * 440 * t))[None].astype(np.float32)
    src = write_audio(tmp_path / "in44.wav", audio, 44_100)
    dst = apply_file(model, src, tmp_path / "out.wav", block_size=4096)
    info = sf.info(dst)
    assert info.samplerate == SR
    assert abs(info.frames - SR) <= 1


def test_process_array_matches_stream(model) -> None:
    audio = (0.2 * np.random.default_rng(1).standard_normal((1, 9000))).astype(np.float32)
    whole = process_array(model, audio, block_size=1 << 20)
    proc = StreamProcessor(model)
    parts = [proc.process(audio[:, i : i + 333]) for i in range(0, 9000, 333)]
    np.testing.assert_allclose(np.concatenate(parts, axis=1), whole, atol=1e-5)


def test_knob_values_validated() -> None:
    m = create_model("lstm", sample_rate=SR, knobs=[KnobSpec("drive", 0, 40, "dB")])
    assert torch.allclose(knob_tensor(m, {"drive": 10}), torch.tensor([[0.25]]))
    with pytest.raises(FxcloneError, match="outside its range"):
        knob_tensor(m, {"drive": 50})
    with pytest.raises(FxcloneError, match="drive"):
        knob_tensor(m, {"gain": 1})


def test_failed_apply_leaves_no_file(model, tmp_path) -> None:
    bad = np.zeros((1, 5000), np.float32)
    bad[0, 4000] = np.nan
    src = tmp_path / "nan.wav"
    sf.write(src, bad.T, SR, subtype="FLOAT")
    with pytest.raises(FxcloneError, match="NaN"):
        apply_file(model, src, tmp_path / "out.wav", block_size=1024)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["nan.wav"]
