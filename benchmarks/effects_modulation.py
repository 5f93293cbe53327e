"""Plots and measurements of the modulation effects: LFO rates read back, render speed.

Usage: .venv/bin/python benchmarks/effects_modulation.py [--out docs/img/effects]

Writes ``<name>.png`` per effect (top: spectrogram of white noise through the effect at its
defaults; bottom: the LFO-driven quantity the tests measure on a steady 1 kHz tone), then
prints the LFO rate measured from the output for several rate settings, the tremolo depth
and vibrato swing checks, and the time to render 60 s of 48 kHz mono at the defaults. The
measurements are the ones in tests/test_effects_modulation.py, imported from there so the
numbers in the docs and the asserted numbers come from one method.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from fxclone.effects import get_effect  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from test_effects_modulation import (  # noqa: E402
    FS,
    NAMES,
    TRIM,
    _envelope,
    _instantaneous_hz,
    _measured_rate,
    _phase_shift,
    _sine,
    _sinusoid_amplitude,
)

RATES_HZ = (0.9, 1.3, 4.7, 9.0)  # at least 10 LFO cycles in 12 s


def _trace(name: str) -> tuple[np.ndarray, str]:
    """The quantity the rate test reads for ``name`` at its defaults, and its axis label."""
    effect, x = get_effect(name), _sine(1000.0, seconds=8.0)
    if name == "tremolo":
        return _envelope(effect.render(x, FS)[0]), "envelope of a 1 kHz tone"
    if name == "vibrato":
        return _instantaneous_hz(effect.render(x, FS)[0]), "instantaneous frequency (Hz)"
    if name == "chorus":
        y = effect.render(x, FS, {"voices": 1, "mix": 100})[0]
        return _instantaneous_hz(y), "one voice: instantaneous frequency (Hz)"
    y = effect.render(x, FS, {"mix": 100})[0]
    return _phase_shift(y, x[0]), "wet phase vs dry 1 kHz tone (rad)"


def plot(name: str, out_dir: Path) -> Path:
    """Write ``out_dir/<name>.png`` and return its path."""
    noise = np.random.default_rng(0).uniform(-0.5, 0.5, (1, 8 * FS)).astype(np.float32)
    wet = get_effect(name).render(noise, FS)[0]
    trace, label = _trace(name)
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 6), sharex=True)
    top.specgram(wet, NFFT=512, Fs=FS, noverlap=384, cmap="magma", vmin=-110)
    top.set_ylabel("frequency (Hz)")
    top.set_title(f"{name} at its defaults: white noise in")
    bottom.plot((np.arange(trace.size) + TRIM) / FS, trace, lw=0.8)
    bottom.set_ylabel(label)
    bottom.set_xlabel("time (s)")
    bottom.grid(alpha=0.3)
    fig.tight_layout()
    path = out_dir / f"{name}.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "img" / "effects")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for name in NAMES:
        print(f"wrote {plot(name, args.out)}")

    print(f"\nLFO rate measured from the output ({FS} Hz, 12 s of a 1 kHz tone)")
    print("effect    " + "".join(f"{r:>14g} Hz" for r in RATES_HZ))
    for name in NAMES:
        cells = []
        for rate in RATES_HZ:
            measured = _measured_rate(name, rate)
            cells.append(f"{measured:9.4f} ({100 * (measured / rate - 1):+.2f}%)")
        print(f"{name:<10}" + " ".join(cells))

    print("\ntremolo depth: max/min envelope vs 1/(1 - depth)")
    for depth in (30.0, 60.0, 90.0):
        env = _envelope(get_effect("tremolo").render(_sine(1000.0), FS, {"depth": depth})[0])
        print(f"  depth {depth:g} %: {env.max() / env.min():.4f} vs {1 / (1 - depth / 100):.4f}")

    print("\nvibrato swing at 3 Hz, 1 kHz tone: measured vs 2 pi rate depth f0 (Hz)")
    for depth_ms in (0.5, 2.0, 5.0):
        y = get_effect("vibrato").render(_sine(1000.0), FS, {"rate": 3.0, "depth": depth_ms})
        swing = _sinusoid_amplitude(_instantaneous_hz(y[0]), 3.0)
        print(f"  depth {depth_ms:g} ms: {swing:.2f} vs {2 * np.pi * 3.0 * depth_ms:.2f}")

    print("\nrender time, 60 s of 48 kHz mono noise at the defaults")
    dry = np.random.default_rng(0).uniform(-1, 1, (1, 60 * 48000)).astype(np.float32)
    for name in NAMES:
        start = time.perf_counter()
        get_effect(name).render(dry, 48000)
        print(f"  {name:<10}{time.perf_counter() - start:6.2f} s")


if __name__ == "__main__":
    main()
