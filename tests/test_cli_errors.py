"""Bad input through the real CLI: one clear line, non-zero exit, no traceback, no output.

Each case runs ``python -m fxclone ...`` in a process of its own. To keep dozens of cases
fast, the processes are forked from one server that has already imported fxclone and its
dependencies (torch, lightning) without computing anything; each child then runs the
``fxclone`` module as ``__main__`` exactly as ``python -m fxclone`` does, with its own
stdout/stderr files, working folder and file-size limit. ``test_forked_cases_match_a_plain_
subprocess`` checks that a plain ``python -m fxclone`` subprocess behaves the same.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from safetensors.torch import load_file, save_file

from cli_harness import (
    SR,
    Cli,
    assert_clean_failure,
    no_output,
    nonblank_lines,
    plain_cli,
    write_wav,
)
from fxclone.audio import write_audio
from fxclone.dataset import GenerateConfig, generate_dataset
from fxclone.modelfile import load_model, save_model
from fxclone.models import KnobSpec, create_model
from fxclone.rendering import render_dataset
from fxclone.streaming import process_array

FULL_DISK = 64_000  # bytes: RLIMIT_FSIZE for the simulated full disk


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cli")
    save_model(root / "model.safetensors", create_model("wavenet-nano", sample_rate=SR))
    knobbed = create_model("wavenet-nano", sample_rate=SR, knobs=(KnobSpec("drive", 0, 10, "dB"),))
    save_model(root / "knobs.safetensors", knobbed)
    write_audio(root / "tone.wav", 0.3 * np.sin(np.linspace(0, 900, SR))[None], SR)
    (root / "afile.txt").write_text("a file, not a folder\n")
    config = GenerateConfig(train_seconds=2, val_seconds=1, test_seconds=1, segment_seconds=1)
    generate_dataset(root / "data", config)
    render_dataset(root / "data", "lowpass", None)
    tiny = {"model": "wavenet-nano", "batch_size": 1, "segment_samples": 512}
    (root / "tiny.json").write_text(json.dumps({**tiny, "windows_per_epoch": 2}))
    return root


def _clone_dataset(work: Path, name: str) -> Path:
    dst = work / name
    if dst.exists():
        shutil.rmtree(dst)
    shutil.copytree(work / "data", dst)
    return dst


def _input_file(work: Path, kind: str) -> Path:
    path = work / f"{kind}.wav"
    tone = (0.3 * np.sin(np.arange(4000) / 7.0)).astype(np.float32)[None]
    if kind == "folder":
        path.mkdir(exist_ok=True)
    elif kind == "notaudio":
        path.write_text("this is not audio\n" * 20)
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "one_sample":
        write_wav(path, tone[:, :1])
    elif kind in ("nan", "inf"):
        tone[0, 1234] = np.nan if kind == "nan" else np.inf
        write_wav(path, tone)
    elif kind == "header_only":  # a WAV header whose data never arrived
        data = write_wav(path, tone).read_bytes()
        path.write_bytes(data[: data.index(b"data") + 8])
    return path


@pytest.mark.parametrize(
    ("kind", "needles"),
    [
        ("missing", ("no such file", "check the path")),
        ("folder", ("is a folder", "pass a file inside it")),
        ("empty", ("is empty (0 bytes)", "re-export")),
        ("one_sample", ("holds only 1 sample", "longer recording")),
        ("notaudio", ("not a readable audio file", "give a wav")),
        ("nan", ("NaN or Inf", "first at sample 1234", "re-export")),
        ("inf", ("NaN or Inf", "first at sample 1234", "re-export")),
        ("header_only", ("truncated", "promises 4000 samples but 0 are present", "re-export")),
    ],
)
def test_apply_bad_input(cli: Cli, work: Path, kind: str, needles: tuple[str, ...]) -> None:
    src = _input_file(work, kind)
    out = work / f"out_{kind}.wav"
    proc = cli("apply", "model.safetensors", src.name, out.name, cwd=work)
    assert_clean_failure(proc, src.name, *needles)
    no_output(out)


def _applied(cli: Cli, work: Path, src: Path) -> tuple[np.ndarray, int, list[str]]:
    out = work / f"out_{src.stem}.wav"
    proc = cli("apply", "model.safetensors", src.name, out.name, cwd=work)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    no_output(work / f"{out.name}.missing")  # (checks the folder for temporary files)
    got, rate = sf.read(out, dtype="float32", always_2d=True)
    return got.T, rate, nonblank_lines(proc.stderr)


def _model_output(work: Path, audio: np.ndarray) -> np.ndarray:
    return process_array(load_model(work / "model.safetensors").model, audio)


def test_apply_silent_input_is_processed(cli: Cli, work: Path) -> None:
    # Silence is legitimate input (a gap in a recording, a test signal): the model's response
    # to it is written, which for a model with bias terms is a small constant, not an error.
    src = write_wav(work / "silent.wav", np.zeros((1, 6000), np.float32))
    got, rate, notes = _applied(cli, work, src)
    assert rate == SR and got.shape == (1, 6000) and notes == []
    np.testing.assert_allclose(got, _model_output(work, np.zeros((1, 6000), np.float32)), atol=1e-6)
    assert float(np.ptp(got[:, 5000:])) < 1e-6  # settled: constant once past the receptive field


def test_apply_truncated_wav_is_read_as_far_as_it_goes(cli: Cli, work: Path) -> None:
    # A WAV cut inside its data (an interrupted recording or copy): the samples present are
    # processed, and one note says how many the header promised.
    audio = (0.3 * np.sin(np.arange(20_000) / 5.0)).astype(np.float32)[None]
    data = write_wav(work / "whole.wav", audio).read_bytes()
    cut = len(data) - 4 * 8_000  # 8000 float samples missing
    (work / "cut.wav").write_bytes(data[:cut])
    got, rate, notes = _applied(cli, work, work / "cut.wav")
    assert rate == SR and got.shape == (1, 12_000)
    assert len(notes) == 1 and notes[0].startswith("note: "), notes
    assert "cut.wav is truncated" in notes[0] and "20000 samples but only 12000" in notes[0]
    np.testing.assert_allclose(got, _model_output(work, audio[:, :12_000]), atol=1e-5)


def test_apply_8bit_input(cli: Cli, work: Path) -> None:
    audio = (0.5 * np.sin(np.arange(9_000) / 9.0)).astype(np.float32)[None]
    src = write_wav(work / "u8.wav", audio, subtype="PCM_U8")
    got, rate, notes = _applied(cli, work, src)
    assert rate == SR and got.shape == (1, 9_000) and notes == []
    as_read = sf.read(src, dtype="float32", always_2d=True)[0].T  # 8-bit steps of 1/128
    np.testing.assert_allclose(got, _model_output(work, as_read), atol=1e-5)


def test_apply_96k_input_comes_out_at_the_model_rate(cli: Cli, work: Path) -> None:
    # The input is resampled (soxr) to the model's 48 kHz and the output stays there: the
    # model only knows how the effect behaves at its own rate.
    audio = (0.3 * np.sin(np.arange(19_200) / 20.0)).astype(np.float32)[None]
    src = write_wav(work / "hi.wav", audio, rate=96_000)
    got, rate, notes = _applied(cli, work, src)
    assert rate == SR and got.shape == (1, 9_600) and notes == []
    assert np.all(np.isfinite(got)) and float(np.max(np.abs(got))) > 0


def _bad_model(work: Path, kind: str) -> Path:
    path = work / f"{kind}.safetensors"
    good = (work / "model.safetensors").read_bytes()
    if kind == "truncated":
        path.write_bytes(good[: len(good) // 2])
    elif kind == "random":
        path.write_bytes(np.random.default_rng(0).integers(0, 256, 5000, np.uint8).tobytes())
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "corrupt":
        path.write_bytes(good[:100] + b"\x00" * 50 + good[150:])
    elif kind == "future":
        tensors = load_file(str(work / "model.safetensors"))
        with open(work / "model.safetensors", "rb") as f:
            header = json.loads(f.read(int.from_bytes(f.read(8), "little")))
        meta = json.loads(header["__metadata__"]["fxclone"])
        save_file(
            tensors, str(path), metadata={"fxclone": json.dumps({**meta, "format_version": 99})}
        )
    return path


@pytest.mark.parametrize(
    ("kind", "needles"),
    [
        ("truncated", ("truncated or corrupt", "re-copy it or retrain")),
        ("random", ("not a readable fxclone model", "re-copy it or retrain")),
        ("empty", ("is empty (0 bytes)", "retrain or re-copy")),
        ("corrupt", ("retrain",)),
        ("future", ("format version 99", "upgrade fxclone")),
    ],
)
def test_apply_bad_model(cli: Cli, work: Path, kind: str, needles: tuple[str, ...]) -> None:
    bad = _bad_model(work, kind)
    out = work / f"out_model_{kind}.wav"
    proc = cli("apply", bad.name, "tone.wav", out.name, cwd=work)
    assert_clean_failure(proc, bad.name, *needles)
    no_output(out)


@pytest.mark.parametrize(
    ("knob", "needles"),
    [
        ("drive=20", ("drive=20", "outside its range 0..10 dB", "choose a value in that range")),
        ("gain=1", ("unknown knob(s) gain", "this model's knobs: drive")),
    ],
)
def test_apply_bad_model_knob(cli: Cli, work: Path, knob: str, needles: tuple[str, ...]) -> None:
    out = work / "out_knob.wav"
    proc = cli("apply", "knobs.safetensors", "tone.wav", out.name, "--knob", knob, cwd=work)
    assert_clean_failure(proc, *needles)
    no_output(out)


@pytest.mark.parametrize(
    ("out", "needles"),
    [
        ("afile.txt/out.wav", ("afile.txt is a file, not a folder",)),
        ("/proc/fxclone_out.wav", ("/proc does not accept new files",)),
    ],
)
def test_apply_unwritable_output(cli: Cli, work: Path, out: str, needles: tuple[str, ...]) -> None:
    proc = cli("apply", "model.safetensors", "tone.wav", out, cwd=work)
    assert_clean_failure(proc, out, *needles, "choose a folder that can be written")
    assert not Path(out).exists()


def test_apply_full_disk(cli: Cli, work: Path) -> None:
    long = write_wav(work / "long.wav", 0.1 * np.ones((1, 5 * SR), np.float32))  # 960 kB out
    proc = cli("apply", "model.safetensors", long.name, "full.wav", cwd=work, fsize=FULL_DISK)
    assert_clean_failure(
        proc, "could not write full.wav (disk full or file too large)", "free some space"
    )
    no_output(work / "full.wav")


def test_train_full_disk_keeps_no_partial_checkpoint(cli: Cli, work: Path) -> None:
    out = work / "full.safetensors"
    args = ("train", "data", "--out", out.name, "--epochs", "1", "--config", "tiny.json")
    proc = cli(*args, cwd=work, fsize=FULL_DISK)  # a checkpoint is ~130 kB
    assert_clean_failure(proc, ".ckpt (disk full or file too large)", "free some space")
    no_output(out)
    ckpts = work / "full.safetensors.run" / "checkpoints"
    assert not list(ckpts.glob("*.ckpt")) and not list(ckpts.glob(".*.part"))


def test_train_unwritable_output(cli: Cli, work: Path) -> None:
    args = ("train", "data", "--out", "afile.txt/m.safetensors", "--config", "tiny.json")
    proc = cli(*args, cwd=work)
    assert_clean_failure(proc, "afile.txt is a file, not a folder", "choose a folder")


def test_unknown_config_keys(cli: Cli, work: Path) -> None:
    (work / "bad_train.json").write_text(json.dumps({"learning_rat": 0.01}))
    out = work / "cfg.safetensors"
    proc = cli("train", "data", "--out", out.name, "--config", "bad_train.json", cwd=work)
    assert_clean_failure(proc, "bad_train.json", "learning_rat", "valid keys are")
    no_output(out)
    assert not (work / "cfg.safetensors.run").exists()
    (work / "bad_gen.json").write_text(json.dumps({"train_secs": 1}))
    proc = cli("generate", "gen_out", "--config", "bad_gen.json", cwd=work)
    assert_clean_failure(proc, "train_secs", "train_seconds")
    assert not (work / "gen_out").exists()


def test_train_silent_wet(cli: Cli, work: Path) -> None:
    data = _clone_dataset(work, "silent")
    wet = data / "wet" / "train_000.wav"
    info = sf.info(wet)
    sf.write(wet, np.zeros(info.frames, np.float32), info.samplerate, subtype="FLOAT")
    out = work / "silent.safetensors"
    proc = cli("train", "silent", "--out", out.name, "--epochs", "1", cwd=work)
    assert_clean_failure(proc, "train_000.wav", "silent")
    assert not out.exists() and not (work / "silent.safetensors.run").exists()


def test_train_sample_rate_mismatch(cli: Cli, work: Path) -> None:
    data = _clone_dataset(work, "rates")
    wet = data / "wet" / "train_000.wav"
    audio, sr = sf.read(wet, dtype="float32")
    sf.write(wet, audio, 44100, subtype="FLOAT")
    out = work / "rates.safetensors"
    proc = cli("train", "rates", "--out", out.name, "--epochs", "1", cwd=work)
    assert_clean_failure(proc, "train_000.wav", "44100 Hz", "48000 Hz")
    assert not out.exists()


def test_render_bad_effect_and_knobs(cli: Cli, work: Path) -> None:
    data = _clone_dataset(work, "knobs")
    before = sorted(p.name for p in (data / "wet").iterdir())
    proc = cli("render", "knobs", "--effect", "fuzzbox", cwd=work)
    assert_clean_failure(proc, "fuzzbox", "fxclone effects")
    proc = cli("render", "knobs", "--effect", "lowpass", "--knob", "cutof=100", cwd=work)
    assert_clean_failure(proc, "cutof")
    proc = cli("render", "knobs", "--effect", "lowpass", "--knob", "cutoff=1e9", cwd=work)
    assert_clean_failure(proc, "cutoff", "20..20000 Hz", "in that range")
    assert sorted(p.name for p in (data / "wet").iterdir()) == before


def test_forked_cases_match_a_plain_subprocess(cli: Cli, work: Path) -> None:
    write_wav(work / "long2.wav", 0.1 * np.ones((1, 5 * SR), np.float32))
    args = ("apply", "model.safetensors", "long2.wav", "full2.wav")
    forked = cli(*args, cwd=work, fsize=FULL_DISK)
    plain = plain_cli(*args, cwd=work, fsize=FULL_DISK)
    assert (forked.returncode, forked.stderr, forked.stdout) == (
        plain.returncode,
        plain.stderr,
        plain.stdout,
    )
    assert_clean_failure(plain, "could not write full2.wav (disk full or file too large)")
    no_output(work / "full2.wav")
