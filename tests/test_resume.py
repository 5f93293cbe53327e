"""Checkpoints survive SIGKILL: atomic writes, a wall-time interval, exact mid-epoch resume."""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from fxclone.checkpoints import checkpoint_io
from fxclone.dataset import GenerateConfig, generate_dataset
from fxclone.errors import FxcloneError
from fxclone.journey import train
from fxclone.modelfile import read_metadata
from fxclone.rendering import render_dataset
from fxclone.training import TrainConfig, train_config

EPOCHS = 3
STEPS_PER_EPOCH = 8  # windows_per_epoch / batch_size
CONFIG = {
    "model": "wavenet-nano",
    "batch_size": 2,
    "segment_samples": 1024,
    "windows_per_epoch": 2 * STEPS_PER_EPOCH,
    "checkpoint_minutes": 0.0002,  # last.ckpt every 12 ms: after nearly every step
    "seed": 5,
}


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("resume")
    config = GenerateConfig(
        sample_rate=16000, train_seconds=2, val_seconds=1, test_seconds=1, segment_seconds=1
    )
    generate_dataset(root / "data", config)
    render_dataset(root / "data", "lowpass", None)
    (root / "cfg.json").write_text(json.dumps(CONFIG))
    return root


def _train(out: str, cwd: Path) -> subprocess.Popen[str]:
    """``fxclone train`` as a subprocess, in its own process group, on one CPU thread (runs
    that share the CPU stay fast, and compute identically whatever else is running)."""
    args = ["train", "data", "--out", out, "--epochs", str(EPOCHS), "--config", "cfg.json"]
    return subprocess.Popen(
        [sys.executable, "-m", "fxclone", *args],
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        cwd=cwd,
    )


def _progress(ckpt: Path) -> tuple[int, int]:
    """(global step, batches done in the current epoch) of a checkpoint."""
    c = torch.load(ckpt, map_location="cpu", weights_only=True)
    batches = c["loops"]["fit_loop"]["epoch_loop.batch_progress"]["current"]["processed"]
    return int(c["global_step"]), int(batches)


def _kill_mid_epoch(proc: subprocess.Popen[str], last: Path, timeout: float = 120) -> None:
    """SIGKILL the run once ``last`` is a mid-epoch checkpoint and training went on past it.

    The process group is frozen (SIGSTOP) while the checkpoint is inspected, so the file read
    is the one on disk at the moment of the kill.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.02)
        if not last.exists():
            continue
        os.killpg(proc.pid, signal.SIGSTOP)
        step, batches = _progress(last)
        if step > STEPS_PER_EPOCH and 0 < batches < STEPS_PER_EPOCH:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            return
        os.killpg(proc.pid, signal.SIGCONT)
    proc.kill()
    pytest.fail(f"no mid-epoch checkpoint seen before the run ended (rc {proc.poll()})")


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return {k: v for k, v in load_file(str(path)).items() if not k.startswith("__")}


def test_sigkill_mid_epoch_then_resume_matches_uninterrupted(work: Path) -> None:
    reference = _train("ref.safetensors", cwd=work)
    killed = _train("m.safetensors", cwd=work)
    try:
        _kill_and_resume(work, killed)
    finally:
        for proc in (reference, killed):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
        _, err = reference.communicate(timeout=300)
    assert reference.returncode == 0, err
    ref = read_metadata(work / "ref.safetensors")["training"]
    summary = read_metadata(work / "m.safetensors")["training"]
    assert ref["resumed"] is False and ref["steps"] == EPOCHS * STEPS_PER_EPOCH
    # Resumed mid-epoch, the run saw the same batches with the same optimiser state and
    # learning rate as the uninterrupted one: bit-identical weights and scores.
    assert summary["best_val_esr"] == ref["best_val_esr"]
    got, want = _weights(work / "m.safetensors"), _weights(work / "ref.safetensors")
    assert got.keys() == want.keys()
    assert all(torch.equal(got[k], want[k]) for k in want)
    # Asking for fewer epochs than the run already has is refused in one line, not a crash.
    fewer = {**CONFIG, "max_epochs": EPOCHS - 1}
    with pytest.raises(FxcloneError, match=f"already trained {EPOCHS} epochs, more than the 2"):
        train(work / "data", work / "m.safetensors", train_config(fewer), progress=False)


def _kill_and_resume(work: Path, killed: subprocess.Popen[str]) -> None:
    ckpt_dir = work / "m.safetensors.run" / "checkpoints"
    _kill_mid_epoch(killed, ckpt_dir / "last.ckpt")
    assert killed.returncode == -signal.SIGKILL
    assert not (work / "m.safetensors").exists()
    # The checkpoint on disk at the kill loads, with the trusted-types-only unpickler.
    step, batches = _progress(ckpt_dir / "last.ckpt")
    assert 0 < batches < STEPS_PER_EPOCH and step % STEPS_PER_EPOCH == batches
    # A temporary file as a kill during a checkpoint write leaves it: removed on resume.
    leftover = ckpt_dir / ".last.ckpt.x1y2z3.part"
    leftover.write_bytes(b"\x00" * 100)

    again = _train("m.safetensors", cwd=work)
    _, err = again.communicate(timeout=300)
    assert again.returncode == 0, err
    assert not leftover.exists()
    summary = read_metadata(work / "m.safetensors")["training"]
    assert summary["resumed"] is True
    assert summary["resumed_from_step"] == step
    assert summary["steps"] == EPOCHS * STEPS_PER_EPOCH
    assert summary["epochs"] == EPOCHS


def test_failed_checkpoint_write_keeps_previous(tmp_path: Path) -> None:
    io = checkpoint_io()
    last = tmp_path / "last.ckpt"
    io.save_checkpoint({"global_step": 7, "w": torch.ones(100)}, last)
    before = last.read_bytes()
    # The file-size limit makes the write fail part-way at the OS level, as a full disk does.
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (64_000, hard))
    try:
        with pytest.raises(FxcloneError, match="disk full or file too large") as exc:
            io.save_checkpoint({"global_step": 8, "w": torch.ones(1_000_000)}, last)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    assert str(last) in str(exc.value)
    assert last.read_bytes() == before
    assert torch.load(last, weights_only=True)["global_step"] == 7
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.ckpt"]


def test_checkpoint_interval_is_not_part_of_the_run_signature() -> None:
    from fxclone.training import _STOPPING

    assert "checkpoint_minutes" in _STOPPING
    assert TrainConfig().checkpoint_minutes == 2.0
    with pytest.raises(FxcloneError, match="checkpoint_minutes"):
        TrainConfig.from_dict({"checkpoint_minutes": 0})
