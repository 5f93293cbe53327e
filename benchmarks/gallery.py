"""Target against model for many effects in one figure, from `fxclone evaluate` folders.

Each ``--effect LABEL=FOLDER`` names a folder written by ``fxclone evaluate MODEL DATA --out
FOLDER`` (its ``test_dry.wav``, ``test_target.wav``, ``test_model.wav`` and
``metrics.json``). One row per effect: on the left 10 ms of waveform (dry, target, model)
in a tail (the dry signal silent, the target not) or else where the target is loudest, on
the right the short-term level (50-ms RMS, dB) over the
whole test split, where a tremolo's throb, a sweep's comb or a reverb's tails show whether
the model follows the target over time.

    python benchmarks/gallery.py --out docs/img/time-varying/gallery.png \\
        --effect flanger=/tmp/mod5/flanger/eval --effect delay=/tmp/long/delay/eval
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import soundfile as sf
from matplotlib.figure import Figure


def _mono(path: Path) -> tuple[np.ndarray, int]:
    audio, rate = sf.read(path, dtype="float64", always_2d=True)
    return audio[:, 0], rate  # the first channel, as the report draws it


def _level_db(x: np.ndarray, hop: int) -> np.ndarray:
    frames = x[: x.size // hop * hop].reshape(-1, hop)
    return 10 * np.log10(np.mean(frames**2, axis=1) + 1e-12)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="PNG to write")
    parser.add_argument("--effect", action="append", required=True, help="LABEL=EVAL_FOLDER")
    args = parser.parse_args()
    rows = []
    for spec in args.effect:
        label, _, folder = spec.partition("=")
        folder = Path(folder)
        dry, rate = _mono(folder / "test_dry.wav")
        target, _ = _mono(folder / "test_target.wav")
        model, _ = _mono(folder / "test_model.wav")
        esr = json.loads((folder / "metrics.json").read_text())["esr"]
        rows.append((label, rate, dry, target, model, esr))

    fig = Figure(figsize=(11, 1.9 * len(rows)), layout="constrained")
    axes = fig.subplots(len(rows), 2, squeeze=False, width_ratios=(1, 2.2))
    for (label, rate, dry, target, model, esr), (wave, level) in zip(rows, axes, strict=True):
        length = int(0.01 * rate)
        loud = np.convolve(target**2, np.ones(length), mode="valid")
        heard = np.convolve(dry**2, np.ones(length), mode="valid")
        # a tail (the dry signal 60 dB down, the target not) shows an echo or a reverb best
        tail = heard < 1e-6 * heard.max()
        start = int(np.argmax(np.where(tail, loud, 0.0) if tail.any() else loud))
        if loud[start] < 1e-4 * loud.max():  # no tail worth showing: where it is loudest
            start = int(np.argmax(loud))
        t = np.arange(length) / rate * 1e3
        wave.plot(t, dry[start : start + length], color="0.65", lw=1.0, label="dry")
        wave.plot(t, target[start : start + length], color="black", lw=2.0, label="target")
        wave.plot(t, model[start : start + length], color="tab:orange", lw=1.3, ls="--",
                  label="model")  # fmt: skip
        wave.set_title(f"{label}: from {start / rate:.2f} s (ESR {esr:.2g})", fontsize=9)
        wave.set_xlabel("ms", fontsize=8)
        hop = int(0.05 * rate)
        seconds = np.arange(target.size // hop) * hop / rate
        level.plot(seconds, _level_db(dry, hop), color="0.65", lw=0.8, label="dry")
        level.plot(seconds, _level_db(target, hop), color="black", lw=1.6, label="target")
        level.plot(seconds, _level_db(model, hop), color="tab:orange", lw=1.0, ls="--",
                   label="model")  # fmt: skip
        top = float(np.max(_level_db(target, hop)))
        level.set_ylim(top - 60, top + 6)
        level.set_ylabel("dB", fontsize=8)
        level.set_xlabel("s", fontsize=8)
        level.set_title(f"{label}: 50-ms level over the test split", fontsize=9)
        for ax in (wave, level):
            ax.tick_params(labelsize=7)
            ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7, loc="lower right")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=80)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
