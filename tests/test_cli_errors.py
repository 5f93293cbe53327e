"""Bad input through the real CLI: one clear line, non-zero exit, no traceback, no output."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from fxclone.audio import write_audio
from fxclone.dataset import GenerateConfig, generate_dataset
from fxclone.modelfile import save_model
from fxclone.models import create_model
from fxclone.rendering import render_dataset

SR = 48000


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fxclone", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cli")
    save_model(root / "model.safetensors", create_model("wavenet-nano", sample_rate=SR))
    write_audio(root / "tone.wav", 0.3 * np.sin(np.linspace(0, 900, SR))[None], SR)
    config = GenerateConfig(train_seconds=2, val_seconds=1, test_seconds=1, segment_seconds=1)
    generate_dataset(root / "data", config)
    render_dataset(root / "data", "lowpass", None)
    return root


def _clone_dataset(work: Path, name: str) -> Path:
    import shutil

    dst = work / name
    if dst.exists():
        shutil.rmtree(dst)
    shutil.copytree(work / "data", dst)
    return dst


def _assert_clean_failure(proc: subprocess.CompletedProcess[str], *needles: str) -> None:
    text = proc.stdout + proc.stderr
    assert proc.returncode != 0, text
    assert "Traceback" not in text, text
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, text
    for needle in needles:
        assert needle in lines[0], lines[0]


def _corrupt_model(work: Path) -> Path:
    bad = work / "corrupt.safetensors"
    data = (work / "model.safetensors").read_bytes()
    bad.write_bytes(data[:100] + b"\x00" * 50 + data[150:])
    return bad


def _input_file(work: Path, kind: str) -> Path:
    path = work / f"{kind}.wav"
    if kind == "notaudio":
        path.write_text("this is not audio\n" * 20)
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "nan":
        audio = np.zeros((1, 4000), np.float32)
        audio[0, 100] = np.nan
        sf.write(path, audio.T, SR, subtype="FLOAT")
    return path


@pytest.mark.parametrize(
    ("kind", "needle"),
    [
        ("missing", "no such file"),
        ("notaudio", "not a readable audio file"),
        ("empty", "is empty"),
        ("nan", "NaN"),
    ],
)
def test_apply_bad_input(work: Path, kind: str, needle: str) -> None:
    src = _input_file(work, kind)
    out = work / f"out_{kind}.wav"
    proc = run_cli("apply", str(work / "model.safetensors"), str(src), str(out), cwd=work)
    _assert_clean_failure(proc, src.name, needle)
    assert not out.exists()
    assert not list(work.glob(f".out_{kind}.wav*"))


def test_apply_corrupt_model(work: Path) -> None:
    bad = _corrupt_model(work)
    out = work / "out_corrupt.wav"
    proc = run_cli("apply", str(bad), str(work / "tone.wav"), str(out), cwd=work)
    _assert_clean_failure(proc, "corrupt.safetensors", "retrain")
    assert not out.exists()


def test_train_silent_wet(work: Path) -> None:
    data = _clone_dataset(work, "silent")
    wet = data / "wet" / "train_000.wav"
    info = sf.info(wet)
    sf.write(wet, np.zeros(info.frames, np.float32), info.samplerate, subtype="FLOAT")
    out = work / "silent.safetensors"
    proc = run_cli("train", str(data), "--out", str(out), "--epochs", "1", cwd=work)
    _assert_clean_failure(proc, "train_000.wav", "silent")
    assert not out.exists() and not (work / "silent.safetensors.run").exists()


def test_train_sample_rate_mismatch(work: Path) -> None:
    data = _clone_dataset(work, "rates")
    wet = data / "wet" / "train_000.wav"
    audio, sr = sf.read(wet, dtype="float32")
    sf.write(wet, audio, 44100, subtype="FLOAT")
    out = work / "rates.safetensors"
    proc = run_cli("train", str(data), "--out", str(out), "--epochs", "1", cwd=work)
    _assert_clean_failure(proc, "train_000.wav", "44100 Hz", "48000 Hz")
    assert not out.exists()


def test_unknown_effect_and_knob(work: Path) -> None:
    data = _clone_dataset(work, "knobs")
    proc = run_cli("render", str(data), "--effect", "fuzzbox", cwd=work)
    _assert_clean_failure(proc, "fuzzbox", "fxclone effects")
    proc = run_cli("render", str(data), "--effect", "lowpass", "--knob", "cutof=100", cwd=work)
    _assert_clean_failure(proc, "cutof")
