"""Plots and numbers for the drive effects: overdrive, fuzz, ampcab.

Usage: .venv/bin/python benchmarks/effects_drive.py [--out docs/img/effects]

Writes ``<out>/overdrive.png``, ``fuzz.png`` and ``ampcab.png`` and prints what they show:
THD of a 500 Hz sine against the drive knob, the fuzz's 2nd harmonic and gating against
bias, the cabinet FIR against its documented curve, the tone-stack gains, peak levels at
the defaults and the time to render 60 s of 48 kHz mono.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from scipy import signal  # noqa: E402

from fxclone.effects import get_effect  # noqa: E402
from fxclone.effects.drive import cabinet_ir, cabinet_response, tone_stack  # noqa: E402
from fxclone.report.measure import harmonic_amplitudes, thd  # noqa: E402

FS = 48000


def tone(freq_hz: float, amplitude: float = 1.0, seconds: float = 1.0) -> np.ndarray:
    t = np.arange(int(seconds * FS)) / FS
    return (amplitude * np.sin(2 * np.pi * freq_hz * t))[None].astype(np.float32)


def db(x: float) -> float:
    return 20 * math.log10(max(x, 1e-12))


def rms(y: np.ndarray) -> float:
    return float(np.sqrt(np.mean(y[FS // 4 :].astype(np.float64) ** 2)))


def thd_curve(name: str, knob: str, values: np.ndarray, amplitude: float, **fixed: float):
    effect = get_effect(name)
    dry = tone(500.0, amplitude)
    return [thd(effect.render(dry, FS, {**fixed, knob: v})[0], 500.0, FS) for v in values]


def common_numbers(name: str) -> None:
    effect = get_effect(name)
    peaks = [float(np.abs(effect.render(tone(f), FS)).max()) for f in (100.0, 1000.0)]
    long = tone(110.0, 0.5, seconds=60.0)
    start = time.perf_counter()
    effect.render(long, FS)
    seconds = time.perf_counter() - start
    print(
        f"{name}: peak at defaults, full-scale 100 Hz / 1 kHz sine: {peaks[0]:.3f} / {peaks[1]:.3f}"
    )
    print(f"{name}: 60 s of 48 kHz mono rendered in {seconds:.2f} s")


def waveform_panel(ax, name: str, knob: str, values, amplitude: float, unit: str) -> None:
    effect, dry = get_effect(name), tone(500.0, amplitude, seconds=0.3)
    t_ms = np.arange(FS // 250) / FS * 1000
    seg = slice(FS // 5, FS // 5 + t_ms.size)
    ax.plot(t_ms, dry[0, seg] / amplitude * 0.5, "k:", label="input (scaled)")
    for v in values:
        ax.plot(t_ms, effect.render(dry, FS, {knob: v})[0, seg], label=f"{knob} {v:g} {unit}")
    ax.set(xlabel="time (ms)", ylabel="output", title=f"{name}: two periods of 500 Hz")
    ax.legend(fontsize=7)


def overdrive(out: Path) -> None:
    drives = np.arange(0.0, 41.0, 5.0)
    curve = thd_curve("overdrive", "drive", drives, 0.5)
    print("overdrive: THD of a 0.5-amplitude 500 Hz sine vs drive (dB -> %):")
    print("  " + ", ".join(f"{d:g}: {100 * v:.1f}" for d, v in zip(drives, curve, strict=True)))
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    waveform_panel(axes[0], "overdrive", "drive", (0.0, 24.0, 40.0), 0.5, "dB")
    axes[1].plot(drives, 100 * np.array(curve), "o-")
    axes[1].set(xlabel="drive (dB)", ylabel="THD (%)", title="THD, 500 Hz sine at -6 dBFS")
    axes[1].grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out / "overdrive.png", dpi=100)
    plt.close(fig)
    common_numbers("overdrive")


def fuzz(out: Path) -> None:
    effect = get_effect("fuzz")
    gains = np.arange(20.0, 61.0, 10.0)
    curve = thd_curve("fuzz", "fuzz", gains, 0.02, bias=0.0)
    print("fuzz: THD of a 0.02-amplitude 500 Hz sine vs fuzz at bias 0 (dB -> %):")
    print("  " + ", ".join(f"{g:g}: {100 * v:.1f}" for g, v in zip(gains, curve, strict=True)))
    biases = np.arange(0.0, 101.0, 10.0)
    loud, quiet = tone(500.0, 0.5), tone(500.0, 10 ** (-50 / 20))
    h2, gain_loud, gain_quiet = [], [], []
    for b in biases:
        wet = effect.render(loud, FS, {"bias": b})[0]
        h = harmonic_amplitudes(wet, 500.0, FS)
        h2.append(db(h[1] / h[0]))
        gain_loud.append(db(rms(wet) / rms(loud[0])))
        gain_quiet.append(db(rms(effect.render(quiet, FS, {"bias": b})[0]) / rms(quiet[0])))
    print("fuzz: vs bias (%): 2nd harmonic re fundamental (dB); gain for -6 / -50 dBFS (dB)")
    for row in zip(biases, h2, gain_loud, gain_quiet, strict=True):
        print("  {:5.0f}  H2 {:7.1f}  loud {:6.1f}  quiet {:7.1f}".format(*row))
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    waveform_panel(axes[0], "fuzz", "bias", (0.0, 50.0, 100.0), 0.05, "%")
    axes[1].plot(biases, np.maximum(h2, -80), "o-", label="2nd harmonic re fundamental")
    axes[1].plot(biases, gain_loud, "s-", label="gain, -6 dBFS input")
    axes[1].plot(biases, np.maximum(gain_quiet, -60), "^-", label="gain, -50 dBFS input")
    axes[1].set(
        xlabel="bias (%)",
        ylabel="dB (floored at -60 / -80)",
        title="even harmonics and gating vs bias",
    )
    axes[1].grid(alpha=0.3)
    axes[1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "fuzz.png", dpi=100)
    plt.close(fig)
    common_numbers("fuzz")


def ampcab(out: Path) -> None:
    ir = cabinet_ir(FS)
    n_fft = 1 << 17
    freqs = np.fft.rfftfreq(n_fft, 1 / FS)
    measured = 20 * np.log10(np.maximum(np.abs(np.fft.rfft(ir, n_fft)), 1e-9))
    points = np.geomspace(100.0, 5000.0, 50)
    error = np.interp(points, freqs, measured) - cabinet_response(FS, points).magnitude_db
    print(f"ampcab: cabinet IR {ir.size} taps; |measured - documented| over 50 points")
    print(f"  100 Hz..5 kHz: max {np.abs(error).max():.4f} dB")
    table = np.array([63, 90, 120, 250, 500, 1000, 1400, 2500, 4000, 5000, 8000, 12000.0])
    print(
        "  documented curve: "
        + ", ".join(
            f"{f:g} Hz {v:+.1f} dB"
            for f, v in zip(table, cabinet_response(FS, table)[1], strict=True)
        )
    )
    effect = get_effect("ampcab")
    for knob, f0 in (("bass", 100.0), ("mid", 700.0), ("treble", 3000.0)):
        dry = tone(f0, 0.01)
        level = {
            v: harmonic_amplitudes(effect.render(dry, FS, {"gain": 0, knob: v})[0], f0, FS)[0]
            for v in (-12, 0, 12)
        }
        print(
            f"ampcab: {knob} +12 / -12 dB at {f0:g} Hz (gain 0, -40 dBFS sine): "
            f"{db(level[12] / level[0]):+.1f} / {db(level[-12] / level[0]):+.1f} dB"
        )
    gains = np.arange(0.0, 61.0, 10.0)
    curve = thd_curve("ampcab", "gain", gains, 0.1)
    print("ampcab: THD of a 0.1-amplitude 500 Hz sine vs gain (dB -> %):")
    print("  " + ", ".join(f"{g:g}: {100 * v:.1f}" for g, v in zip(gains, curve, strict=True)))

    fig, axes = plt.subplots(1, 3, figsize=(15, 3.8))
    curve_f, curve_db = cabinet_response(FS)
    axes[0].semilogx(freqs[1:], measured[1:], label="FFT of cabinet_ir")
    axes[0].semilogx(curve_f, curve_db, "k--", label="documented curve")
    axes[0].set(xlim=(20, 20000), ylim=(-60, 10), xlabel="Hz", ylabel="dB", title="cabinet")
    axes[0].legend(fontsize=7)
    axes[0].grid(alpha=0.3, which="both")
    f_eval = np.geomspace(20, 20000, 400)
    for knob, color in (("bass", "C0"), ("mid", "C1"), ("treble", "C2")):
        for v, style in ((12, "-"), (-12, "--")):
            settings = {"bass": 0.0, "mid": 0.0, "treble": 0.0, knob: float(v)}
            sos = tone_stack(settings["bass"], settings["mid"], settings["treble"], FS)
            _, h = signal.sosfreqz(sos, f_eval, fs=FS)
            axes[1].semilogx(
                f_eval, 20 * np.log10(np.abs(h)), style, color=color, label=f"{knob} {v:+d}"
            )
    axes[1].set(xlabel="Hz", ylabel="dB", ylim=(-14, 22), title="tone stack, one knob at +-12 dB")
    axes[1].legend(fontsize=7, ncol=3, loc="upper center")
    axes[1].grid(alpha=0.3, which="both")
    axes[2].plot(gains, 100 * np.array(curve), "o-")
    axes[2].set(xlabel="gain (dB)", ylabel="THD (%)", title="THD, 500 Hz sine at -20 dBFS")
    axes[2].grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out / "ampcab.png", dpi=100)
    plt.close(fig)
    common_numbers("ampcab")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/img/effects"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    overdrive(args.out)
    fuzz(args.out)
    ampcab(args.out)


if __name__ == "__main__":
    main()
