"""Plots and measurements of the first three built-in effects: distortion, compressor, lowpass.

Usage: .venv/bin/python benchmarks/effects_builtin.py [--out docs/img/effects]
Writes distortion.png, compressor.png and lowpass.png and prints the measured numbers.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from fxclone.effects import get_effect  # noqa: E402

SR = 48000


def _sine(freq: float, seconds: float, amp: float) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)[None]


def _harmonics_db(y: np.ndarray, f0: float, count: int = 6) -> list[float]:
    spec = np.abs(np.fft.rfft(y * np.hanning(y.size)))
    freqs = np.fft.rfftfreq(y.size, 1 / SR)
    levels = [spec[np.argmin(np.abs(freqs - k * f0))] for k in range(1, count + 1)]
    return [20 * np.log10(v / levels[0] + 1e-12) for v in levels]


def distortion(out: Path) -> None:
    fx = get_effect("distortion")
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    x = _sine(500, 0.5, 0.5)
    for drive in (0, 12, 24, 40):
        y = fx.render(x, SR, {"drive": drive})[0]
        seg = slice(SR // 4, SR // 4 + 2 * SR // 500)
        ax1.plot(x[0, seg], y[seg], label=f"drive {drive} dB")
        h = _harmonics_db(y[SR // 4 :], 500)
        thd = np.sqrt(sum(10 ** (v / 10) for v in h[1:]))
        print(f"distortion drive {drive:>2} dB: THD {thd:.3f}, H2 {h[1]:.1f} dB, H3 {h[2]:.1f} dB")
        ax2.plot(range(1, 7), h, "o-", label=f"drive {drive} dB")
    ax1.set(title="input vs output, 500 Hz sine (loops = memory)", xlabel="input", ylabel="output")
    ax2.set(title="harmonics re. fundamental", xlabel="harmonic", ylabel="dB")
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "distortion.png", dpi=90)
    plt.close(fig)


def compressor(out: Path) -> None:
    fx = get_effect("compressor")
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    levels = np.arange(-48, 1, 3)
    for ratio in (2, 4, 10):
        gains = []
        for lvl in levels:
            x = _sine(1000, 0.4, 10 ** (lvl / 20))
            y = fx.render(x, SR, {"ratio": ratio, "knee": 0, "attack": 1, "release": 200})[0]
            gains.append(20 * np.log10(np.max(np.abs(y[-SR // 20 :])) / 10 ** (lvl / 20)))
        ax1.plot(levels, levels + np.array(gains), label=f"ratio {ratio}")
    ax1.set(
        title="static curve (threshold -24 dB, knee 0)",
        xlabel="input peak (dBFS)",
        ylabel="output peak (dBFS)",
    )
    t = np.arange(int(1.2 * SR)) / SR
    env = np.where((t > 0.2) & (t < 0.6), 0.9, 0.05)
    x = (env * np.sin(2 * np.pi * 1000 * t)).astype(np.float32)[None]
    y = fx.render(x, SR, {"attack": 10, "release": 100, "knee": 0})[0]
    ax2.plot(t, np.abs(x[0]), color="0.7", label="input")
    ax2.plot(t, np.abs(y), label="output (attack 10 ms, release 100 ms)")
    ax2.set(title="level step", xlabel="time (s)", ylabel="|amplitude|")
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "compressor.png", dpi=90)
    plt.close(fig)


def lowpass(out: Path) -> None:
    fx = get_effect("lowpass")
    fig, ax = plt.subplots(figsize=(7, 4))
    impulse = np.zeros((1, SR), np.float32)
    impulse[0, 0] = 1.0
    freqs = np.fft.rfftfreq(SR, 1 / SR)
    for order in (1, 2, 4, 8):
        h = fx.render(impulse, SR, {"cutoff": 1000, "order": order})[0]
        mag = 20 * np.log10(np.abs(np.fft.rfft(h)) + 1e-12)
        ax.semilogx(freqs[1:], mag[1:], label=f"order {order}")
        print(f"lowpass order {order}: {mag[1000]:.2f} dB at 1 kHz, {mag[2000]:.1f} dB at 2 kHz")
    ax.axvline(1000, color="0.5", ls=":")
    ax.axhline(-3, color="0.5", ls=":")
    ax.set(title="lowpass, cutoff 1 kHz", xlabel="Hz", ylabel="dB", ylim=(-80, 5), xlim=(20, 24000))
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "lowpass.png", dpi=90)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/img/effects"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    distortion(args.out)
    compressor(args.out)
    lowpass(args.out)


if __name__ == "__main__":
    main()
