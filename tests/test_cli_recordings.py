"""Recordings through the real CLI: a capture signal, misaligned and odd files, and bad pairs.

Every refusal is one ``error:`` line naming the file and the fix, with no dataset left behind;
every file that can be handled is handled, with a note saying what was done.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from cli_harness import Cli, assert_clean_failure, nonblank_lines, write_wav
from fxclone.align import fractional_delay
from fxclone.capture import recognise
from fxclone.effects import get_effect
from fxclone.signals import TRAIN_MIX, synth_track

SR = 16000
MISALIGNED = 1234


def _effect(dry: np.ndarray, sr: int = SR) -> np.ndarray:
    return np.asarray(get_effect("distortion").render(dry, sr, None), np.float32)


@pytest.fixture(scope="module")
def rec(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("recordings")
    dry = synth_track(0, SR, 20.0, TRAIN_MIX)[None, :].astype(np.float32)
    wet = fractional_delay(_effect(dry), MISALIGNED)
    write_wav(root / "dry.wav", dry, SR)
    write_wav(root / "wet.wav", 0.5 * wet + 0.01, SR, "PCM_24")
    write_wav(root / "wet_stereo.wav", np.concatenate([wet, wet]), SR)
    write_wav(root / "wet_clipped.wav", np.clip(10 * wet, -1, 1), SR, "PCM_16")
    write_wav(root / "wet_short.wav", wet[:, : 12 * SR], SR)
    write_wav(root / "wet_silent.wav", np.zeros_like(wet), SR)
    noise = np.random.default_rng(5).standard_normal(wet.shape).astype(np.float32)
    write_wav(root / "wet_other.wav", 0.1 * noise, SR)
    # The same recording at 96 kHz in 8-bit: handled by resampling to the dry's rate.
    dry96 = synth_track(1, 96000, 8.0, TRAIN_MIX)[None, :].astype(np.float32)
    write_wav(root / "dry96.wav", dry96, 96000)
    write_wav(root / "wet96_u8.wav", _effect(dry96, 96000), 96000, "PCM_U8")
    tiny = {"model": "wavenet-nano", "batch_size": 2, "segment_samples": 1024}
    (root / "tiny.json").write_text(json.dumps({**tiny, "windows_per_epoch": 2}))
    return root


def test_capture_signal_is_written_and_recognised(cli: Cli, rec: Path) -> None:
    proc = cli("generate", "capture.wav", "--capture-signal", "--sample-rate", str(SR), cwd=rec)
    assert proc.returncode == 0, proc.stderr
    audio, sr = sf.read(rec / "capture.wav", dtype="float32", always_2d=True)
    layout = json.loads((rec / "capture.json").read_text())
    assert sr == SR and recognise(audio.T, sr) is not None
    assert 180 <= audio.shape[0] / sr <= 210
    assert {"train", "val", "test"} <= {r["split"] for r in layout["regions"]}


def test_misaligned_recording_is_aligned_with_a_notice(cli: Cli, rec: Path) -> None:
    proc = cli("import", "dry.wav", "wet.wav", "--out", "aligned", cwd=rec)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    manifest = json.loads((rec / "aligned" / "manifest.json").read_text())
    latency = manifest["effect"]["pairs"][0]["latency_samples"]
    assert MISALIGNED < latency < MISALIGNED + 20  # plus the effect's own short delay
    assert f"latency {latency:.2f} samples" in proc.stdout
    assert "DC offset 0.0100 removed" in proc.stdout


def test_train_on_a_misaligned_pair(cli: Cli, rec: Path) -> None:
    args = ("train", "dry.wav", "wet.wav", "--out", "m.safetensors", "--config", "tiny.json")
    proc = cli(*args, "--epochs", "1", "--input-dbu", "10", cwd=rec)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    assert any("latency" in line for line in nonblank_lines(proc.stderr)), proc.stderr
    assert (rec / "m.safetensors").is_file()


@pytest.mark.parametrize(
    ("dry", "wet", "note"),
    [
        ("dry.wav", "wet_stereo.wav", "2 channels; using mix"),
        ("dry96.wav", "wet96_u8.wav", "latency"),
    ],
)
def test_odd_recordings_are_handled(cli: Cli, rec: Path, dry: str, wet: str, note: str) -> None:
    out = f"odd_{Path(wet).stem}"
    proc = cli("import", dry, wet, "--out", out, cwd=rec)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert note in proc.stdout, proc.stdout
    manifest = json.loads((rec / out / "manifest.json").read_text())
    assert manifest["sample_rate"] in (SR, 96000)
    assert manifest["effect"]["pairs"][0]["correlation"] > 0.5


@pytest.mark.parametrize(
    ("dry", "wet", "needles"),
    [
        ("dry.wav", "wet_clipped.wav", ("wet_clipped.wav", "clipped", "gain lower")),
        ("dry.wav", "wet_short.wav", ("wet_short.wav", "shorter", "record the whole")),
        ("dry.wav", "wet_silent.wav", ("wet_silent.wav", "silent")),
        ("dry.wav", "wet_other.wav", ("wet_other.wav", "belong")),
        ("dry.wav", "missing.wav", ("missing.wav", "no such file")),
        ("dry.wav", "tiny.json", ("tiny.json", "not a readable audio file")),
    ],
)
def test_bad_pairs_are_refused(
    cli: Cli, rec: Path, dry: str, wet: str, needles: tuple[str, ...]
) -> None:
    out = rec / f"bad_{Path(wet).stem}"
    proc = cli("import", dry, wet, "--out", out.name, cwd=rec)
    assert_clean_failure(proc, *needles)
    assert not (out / "manifest.json").exists()
    model = rec / f"bad_{Path(wet).stem}.safetensors"
    proc = cli("train", dry, wet, "--out", model.name, "--config", "tiny.json", cwd=rec)
    assert_clean_failure(proc, *needles)
    assert not model.exists()


def test_align_command_writes_the_aligned_file(cli: Cli, rec: Path) -> None:
    proc = cli("align", "dry.wav", "wet.wav", "--out", "aligned.wav", "--report", "a.json", cwd=rec)
    assert proc.returncode == 0, proc.stderr
    report = json.loads((rec / "a.json").read_text())
    aligned, _ = sf.read(rec / "aligned.wav", dtype="float32")
    dry, _ = sf.read(rec / "dry.wav", dtype="float32")
    assert aligned.shape == dry.shape
    # Level matched: the aligned wet has the dry's RMS where the recording covers it.
    span = slice(report["trimmed_start"], len(dry) - report["trimmed_end"])
    ratio_db = 10 * np.log10(np.mean(aligned[span] ** 2) / np.mean(dry[span] ** 2))
    assert abs(ratio_db) < 0.1 and report["gain_db"] is not None
