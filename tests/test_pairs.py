"""The user's own recordings: finding pairs, aligning, splitting, training on them as they are."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from fxclone.align import estimate_latency, fractional_delay
from fxclone.capture import capture_signal
from fxclone.dataset import load_dataset, load_pairs
from fxclone.effects import get_effect
from fxclone.errors import FxcloneError
from fxclone.export import export_model
from fxclone.journey import train
from fxclone.metrics import esr
from fxclone.modelfile import read_metadata
from fxclone.pairs import ImportConfig, find_pairs, import_pairs
from fxclone.signals import TRAIN_MIX, synth_track

SR = 16000
TINY = {
    "model": "wavenet-nano",
    "batch_size": 4,
    "segment_samples": 2048,
    "windows_per_epoch": 8,
    "max_epochs": 1,
    "seed": 1,
}


def _effect(dry: np.ndarray) -> np.ndarray:
    return np.asarray(get_effect("distortion").render(dry, SR, None), np.float32)


def _recording(dry: np.ndarray, latency: float, seed: int = 0) -> np.ndarray:
    """What an interface would record: the effect, delayed, with noise and a DC offset."""
    wet = fractional_delay(_effect(dry), latency)
    rng = np.random.default_rng(seed)
    return (0.7 * wet + 0.003 + 1e-4 * rng.standard_normal(wet.shape)).astype(np.float32)


def _music(seconds: float, seed: int = 0) -> np.ndarray:
    return synth_track(seed, SR, seconds, TRAIN_MIX)[None, :].astype(np.float32)


def _write(path: Path, audio: np.ndarray, subtype: str = "FLOAT", sr: int = SR) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, audio.T, sr, subtype=subtype)
    return path


def test_find_pairs_layouts(tmp_path: Path) -> None:
    tone = 0.1 * np.ones((1, 100), np.float32)
    for name in ("a", "b"):
        _write(tmp_path / "sub" / "dry" / f"{name}.wav", tone)
        _write(tmp_path / "sub" / "wet" / f"{name}.flac", tone, "PCM_16")
    assert [(d.name, w.name) for d, w in find_pairs([tmp_path / "sub"])] == [
        ("a.wav", "a.flac"),
        ("b.wav", "b.flac"),
    ]
    _write(tmp_path / "flat" / "song_dry.wav", tone)
    _write(tmp_path / "flat" / "song_wet.wav", tone)
    _write(tmp_path / "flat" / "input.wav", tone)
    _write(tmp_path / "flat" / "output.wav", tone)
    names = sorted((d.name, w.name) for d, w in find_pairs([tmp_path / "flat"]))
    assert names == [("input.wav", "output.wav"), ("song_dry.wav", "song_wet.wav")]
    (tmp_path / "sub" / "wet" / "b.flac").unlink()
    with pytest.raises(FxcloneError, match="'b'"):
        find_pairs([tmp_path / "sub"])
    with pytest.raises(FxcloneError, match="no dry/wet pairs"):
        find_pairs([tmp_path / "sub" / "dry"])


def test_single_pair_is_aligned_and_split(tmp_path: Path) -> None:
    dry = _music(40.0)
    wet = _recording(dry, 1234.0)
    notices: list[str] = []
    import_pairs(
        [(_write(tmp_path / "dry.wav", dry), _write(tmp_path / "wet.wav", wet, "PCM_24"))],
        tmp_path / "data",
        ImportConfig(item_seconds=10.0),
        notice=notices.append,
    )
    info = load_dataset(tmp_path / "data")
    assert info.effect is not None and info.effect["kind"] == "recording"
    report = info.effect["pairs"][0]
    # The effect's filters delay it a little on their own; the recording adds 1234 samples.
    own = estimate_latency(dry, _effect(dry), SR)
    assert abs(report["latency_samples"] - own - 1234.0) < 0.1
    assert report["kept_samples"] == pytest.approx(16.0)  # 1 ms at 16 kHz stays in place
    assert any(f"latency {1234 + own:.2f}" in n for n in notices), notices
    seconds = {s: sum(i["samples"] for i in info.split_items(s)) / SR for s in ("train", "val")}
    assert seconds["train"] == pytest.approx(32.0, abs=0.2)
    assert seconds["val"] == pytest.approx(4.0, abs=0.2)
    # The test split is the last 10 %, and its wet lines up with the effect of its dry.
    test = load_pairs(info, "test")
    effect = 0.7 * _effect(np.concatenate([p.dry for p in test], axis=1))
    target = fractional_delay(effect, 16.0 - own)
    got = np.concatenate([p.wet for p in test], axis=1)
    assert esr(target[:, 2000:-2000], got[:, 2000:-2000]) < 1e-3
    assert sum(p.dry.shape[1] for p in test) == pytest.approx(4.0 * SR, abs=0.2 * SR)


def test_capture_signal_layout_and_repeatability(tmp_path: Path) -> None:
    capture = capture_signal(SR)
    wet = fractional_delay(_effect(capture.audio), 37.5)
    import_pairs(
        [(_write(tmp_path / "capture.wav", capture.audio), _write(tmp_path / "rec.wav", wet))],
        tmp_path / "data",
    )
    info = load_dataset(tmp_path / "data")
    effect = info.effect or {}
    assert effect["pairs"][0]["capture_signal"] is True
    assert effect["repeatability_esr"] is not None and effect["repeatability_esr"] < 1e-6
    want = {
        split: sum(r.end - r.start for r in capture.regions if r.split == split)
        for split in ("train", "val", "test")
    }
    for split, samples in want.items():
        got = sum(item["samples"] for item in info.split_items(split))
        assert abs(got - samples) <= SR // 2, (split, got, samples)


def test_three_pairs_keep_whole_recordings_for_test(tmp_path: Path) -> None:
    pairs = []
    for k, seconds in enumerate((6.0, 12.0, 30.0)):
        dry = _music(seconds, seed=k)
        d = _write(tmp_path / "songs" / "dry" / f"song{k}.wav", dry)
        w = _write(tmp_path / "songs" / "wet" / f"song{k}.wav", _recording(dry, 10.0, k))
        pairs.append((d, w))
    import_pairs(find_pairs([tmp_path / "songs"]), tmp_path / "data")
    info = load_dataset(tmp_path / "data")
    by_split = {
        s: {item["material"] for item in info.split_items(s)} for s in ("train", "val", "test")
    }
    assert by_split["test"] == {"recording:song0.wav"}
    assert by_split["val"] == {"recording:song1.wav"}
    assert by_split["train"] == {"recording:song2.wav"}


def test_clipped_recording_is_refused(tmp_path: Path) -> None:
    dry = _music(10.0)
    wet = np.clip(8.0 * _effect(dry), -1.0, 1.0)
    pair = [(_write(tmp_path / "dry.wav", dry), _write(tmp_path / "wet.wav", wet))]
    with pytest.raises(FxcloneError, match="clipped"):
        import_pairs(pair, tmp_path / "data")
    assert not (tmp_path / "data" / "manifest.json").exists()
    import_pairs(pair, tmp_path / "data2", ImportConfig(allow_clipping=True))
    assert (tmp_path / "data2" / "manifest.json").is_file()


def test_train_on_a_pair_records_calibration_and_reuses_the_import(tmp_path: Path) -> None:
    dry = _music(20.0)
    d = _write(tmp_path / "input.wav", dry)
    w = _write(tmp_path / "output.wav", _recording(dry, 300.25))
    notes: list[str] = []
    config = ImportConfig(input_level_dbu=12.2, output_level_dbu=9.8)
    out = tmp_path / "model.safetensors"
    train([d, w], out, TINY, progress=False, recordings=config, notice=notes.append)
    meta = read_metadata(out)
    assert meta["training"]["calibration"] == {"input_level_dbu": 12.2, "output_level_dbu": 9.8}
    nam = json.loads(export_model(out, tmp_path / "model.nam").read_text())
    assert nam["metadata"]["input_level_dbu"] == 12.2  # where NAM players read it
    assert nam["metadata"]["output_level_dbu"] == 9.8
    manifest = json.loads((out.parent / "model.safetensors.run/dataset/manifest.json").read_text())
    own = estimate_latency(dry, _effect(dry), SR)
    assert abs(manifest["effect"]["pairs"][0]["latency_samples"] - own - 300.25) < 0.1
    notes.clear()
    train([d, w], out, TINY, progress=False, recordings=config, notice=notes.append)
    assert any("already imported" in n for n in notes), notes
