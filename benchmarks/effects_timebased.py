"""Measure the time-based built-ins and plot them to docs/img/effects/<name>.png.

Usage: .venv/bin/python benchmarks/effects_timebased.py

Prints echo times, per-repeat decay, RT60s (Schroeder T30, octave band) and the time to
render 60 s of 48 kHz mono at default knobs. Sample rate of the measurements: 16 kHz.
"""

from __future__ import annotations

import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from scipy import signal  # noqa: E402

from fxclone.effects import get_effect  # noqa: E402
from fxclone.effects.reverbs import REVERB_TYPES, schroeder_rt60  # noqa: E402

FS = 16000
OUT = Path(__file__).resolve().parents[1] / "docs" / "img" / "effects"


def _impulse(seconds: float, amplitude: float = 1.0) -> np.ndarray:
    x = np.zeros((1, int(seconds * FS)), dtype=np.float32)
    x[0, 0] = amplitude
    return x


def _edc_db(ir: np.ndarray, band_hz: float) -> np.ndarray:
    edges = [band_hz / np.sqrt(2), band_hz * np.sqrt(2)]
    h = signal.sosfilt(signal.butter(4, edges, "bandpass", fs=FS, output="sos"), ir)
    edc = np.cumsum((h**2)[::-1])[::-1]
    return 10 * np.log10(np.maximum(edc / edc[0], 1e-30))


def delay_plot() -> None:
    knobs = {"time": 100, "feedback": 60, "tone": 2000, "mix": 100}
    ir = get_effect("delay").render(_impulse(0.8), FS, knobs)[0].astype(np.float64)
    sums = ir[: 1600 * 8].reshape(8, 1600).sum(axis=1)[1:]
    ratios = sums[1:] / sums[:-1]
    print(f"delay: per-repeat gain (feedback 60 %) measured {ratios.round(4).tolist()}")
    fig, ax = plt.subplots(figsize=(8, 3.5))
    t = np.arange(ir.size) / FS * 1000
    ax.plot(t, ir, lw=0.8, label="wet impulse response (time 100 ms, feedback 60 %, tone 2 kHz)")
    k = np.arange(1, 8)
    ax.plot(
        k * 100, 0.6 ** (k - 1) * ir[1600], "o", mfc="none", label="peak of repeat 1 × 0.6^(k-1)"
    )
    ax.set(xlabel="time (ms)", ylabel="amplitude", title="delay: echo train")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(OUT / "delay.png", dpi=110)
    plt.close(fig)


def tape_plot() -> None:
    tape = get_effect("tape_echo")
    burst = np.sin(2 * np.pi * 400 * np.arange(320) / FS)
    fig, ax = plt.subplots(figsize=(8, 3.5))
    for amplitude in (0.001, 1.0):
        dry = np.zeros((1, int(1.6 * FS)), dtype=np.float32)
        dry[0, :320] = amplitude * burst
        knobs = {"time": 200, "feedback": 80, "wow_flutter": 50, "drive": 18, "mix": 100}
        wet = tape.render(dry, FS, knobs)[0]
        peaks = np.abs(wet[: 3200 * 8].reshape(8, 3200)).max(axis=1)[1:]
        ratios = (peaks / peaks[0]).round(3).tolist()
        print(f"tape_echo: repeat peaks / first, input {amplitude:g}: {ratios}")
        env = 20 * np.log10(np.maximum(np.abs(wet) / peaks[0], 1e-6))
        ax.plot(np.arange(wet.size) / FS * 1000, env, lw=0.6, label=f"burst at {amplitude:g}")
    ax.set(
        xlabel="time (ms)",
        ylabel="dB re first echo",
        ylim=(-40, 3),
        title="tape_echo: loud repeats saturate and fade faster (feedback 80 %, drive 18 dB)",
    )
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(OUT / "tape_echo.png", dpi=110)
    plt.close(fig)


def reverb_plot() -> None:
    fig, ax = plt.subplots(figsize=(8, 4))
    for type_index, kind in enumerate(REVERB_TYPES):
        for decay in (0.5, 1.5, 4.0):
            knobs = {"decay": decay, "type": type_index, "predelay": 0, "mix": 100}
            ir = get_effect("reverb").render(_impulse(1.5 * decay + 0.3), FS, knobs)[0]
            rt = schroeder_rt60(ir, FS, band_hz=500.0)
            print(
                f"reverb {kind.name:5s} decay {decay:3.1f} s: RT60 (500 Hz) {rt:.3f} s "
                f"({100 * (rt / decay - 1):+.1f} %), broadband {schroeder_rt60(ir, FS):.3f} s"
            )
            if decay == 1.5:
                edc = _edc_db(ir, 500.0)
                t = np.arange(edc.size) / FS
                (line,) = ax.plot(t, edc, lw=1, label=f"{kind.name}: T30 fit {rt:.2f} s")
                ax.plot(t, -60 * t / rt - 0.0, "--", color=line.get_color(), lw=0.7)
    ax.set(
        xlabel="time (s)",
        ylabel="energy decay (dB, 500 Hz band)",
        ylim=(-70, 2),
        title="reverb: Schroeder energy decay, decay knob 1.5 s (dashed: -60 dB per RT60)",
    )
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(OUT / "reverb.png", dpi=110)
    plt.close(fig)


def spring_plot() -> None:
    spring = get_effect("spring")
    for decay in (0.6, 2.0, 4.0):
        ir = spring.render(
            _impulse(1.5 * decay + 0.3, 0.01), FS, {"decay": decay, "drive": 0, "mix": 100}
        )[0]
        rt = schroeder_rt60(ir, FS, band_hz=1000.0)
        error = 100 * (rt / decay - 1)
        print(f"spring decay {decay:3.1f} s: RT60 (1 kHz) {rt:.3f} s ({error:+.1f} %)")
    ir = spring.render(_impulse(0.07, 0.01), FS, {"decay": 1.0, "drive": 0, "mix": 100})[0]
    for f in (500.0, 3000.0):
        sos = signal.butter(2, [f / 1.15, f * 1.15], "bandpass", fs=FS, output="sos")
        env = np.abs(signal.hilbert(signal.sosfiltfilt(sos, ir)))
        onset_ms = np.argmax(env >= 0.5 * env.max()) * 1000 / FS
        print(f"spring first arrival (half-max envelope) at {f:g} Hz: {onset_ms:.2f} ms")
    ir = spring.render(_impulse(0.4, 0.01), FS, {"decay": 2.0, "drive": 0, "mix": 100})[0]
    f, t, s = signal.spectrogram(ir, FS, nperseg=256, noverlap=224)
    fig, ax = plt.subplots(figsize=(8, 4))
    ax.pcolormesh(t * 1000, f, 10 * np.log10(s + 1e-14), vmin=-120, shading="auto")
    ax.set(
        xlabel="time (ms)",
        ylabel="frequency (Hz)",
        ylim=(0, 6000),
        title="spring: impulse response, each 37/44 ms trip a descending chirp",
    )
    fig.tight_layout()
    fig.savefig(OUT / "spring.png", dpi=110)
    plt.close(fig)


def render_times() -> None:
    rate = 48000
    dry = np.random.default_rng(0).uniform(-0.5, 0.5, (1, 60 * rate)).astype(np.float32)
    for name in ("delay", "tape_echo", "reverb", "spring"):
        start = time.perf_counter()
        get_effect(name).render(dry, rate)
        print(f"render 60 s at 48 kHz mono, {name} defaults: {time.perf_counter() - start:.2f} s")


if __name__ == "__main__":
    OUT.mkdir(parents=True, exist_ok=True)
    delay_plot()
    tape_plot()
    reverb_plot()
    spring_plot()
    render_times()
