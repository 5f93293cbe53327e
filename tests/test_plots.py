"""The report figures are valid, deterministic PNGs, written atomically."""

from __future__ import annotations

from pathlib import Path

import matplotlib.image
import numpy as np
import pytest

from fxclone.errors import FxcloneError
from fxclone.report.plots import plot_mel_spectrograms, plot_waveform_overlay

SR = 16000
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _signals() -> dict[str, np.ndarray]:
    t = np.arange(SR) / SR
    dry = (0.5 * np.sin(2 * np.pi * 220 * t) * (t > 0.3)).astype(np.float32)[None]
    target = np.tanh(4 * dry)
    model = np.tanh(3.5 * dry)
    return {"dry": dry, "target": target, "model": model}


def _check_png(path: Path, min_width: int, min_height: int) -> None:
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    image = matplotlib.image.imread(path)
    height, width = image.shape[:2]
    assert width >= min_width and height >= min_height
    # Not a blank canvas: a figure has both dark ink and a light background.
    assert image[..., :3].min() < 0.2 and image[..., :3].max() > 0.9


def test_mel_spectrograms_png(tmp_path: Path) -> None:
    path = tmp_path / "new" / "folder" / "mel.png"
    assert plot_mel_spectrograms(path, _signals(), SR, title="drive") == path
    _check_png(path, 800, 600)
    again = tmp_path / "again.png"
    plot_mel_spectrograms(again, _signals(), SR, title="drive")
    assert again.read_bytes() == path.read_bytes()


def test_waveform_overlay_png(tmp_path: Path) -> None:
    s = _signals()
    path = tmp_path / "missing" / "wave.png"
    plot_waveform_overlay(path, s["target"], s["model"], SR, dry=s["dry"])
    _check_png(path, 900, 300)
    chosen = tmp_path / "chosen.png"
    plot_waveform_overlay(chosen, s["target"][0], s["model"][0], SR, excerpts=[0.5, 0.9])
    _check_png(chosen, 600, 300)


def test_mismatched_lengths_leave_no_file(tmp_path: Path) -> None:
    s = _signals()
    short = s["model"][:, :-10]
    with pytest.raises(FxcloneError, match="length"):
        plot_mel_spectrograms(tmp_path / "mel.png", {"target": s["target"], "model": short}, SR)
    with pytest.raises(FxcloneError, match="length"):
        plot_waveform_overlay(tmp_path / "wave.png", s["target"], short, SR)
    with pytest.raises(FxcloneError, match="outside"):
        plot_waveform_overlay(tmp_path / "wave.png", s["target"], s["model"], SR, excerpts=[5.0])
    assert list(tmp_path.iterdir()) == []
