"""Plots and numbers for the highpass, eq, pitch, octave and bitcrusher effects.

Writes ``docs/img/effects/<name>.png`` for each and prints what ``docs/effects_filters.md``
quotes. Run from the repository root: ``python benchmarks/effects_filters.py``.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from scipy import signal  # noqa: E402

from fxclone.effects import get_effect  # noqa: E402
from fxclone.effects.pitch import pitch_latency_samples  # noqa: E402

FS = 48000
OUT_DIR = Path("docs/img/effects")


def _tone(freq_hz: float, seconds: float, amplitude: float = 1.0) -> np.ndarray:
    t = np.arange(int(seconds * FS)) / FS
    return (amplitude * np.sin(2 * np.pi * freq_hz * t))[None].astype(np.float32)


def _response_db(name: str, knobs: dict[str, float], n: int = 1 << 16) -> np.ndarray:
    """Magnitude response in dB on ``rfftfreq(n)``, from the effect's impulse response."""
    impulse = np.zeros((1, n), dtype=np.float32)
    impulse[0, 0] = 1.0
    h = get_effect(name).render(impulse, FS, knobs)[0].astype(np.float64)
    return 20 * np.log10(np.maximum(np.abs(np.fft.rfft(h)), 1e-12))


def _spectrum_db(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    freqs, psd = signal.welch(y.astype(np.float64), FS, nperseg=8192)
    return freqs, 10 * np.log10(np.maximum(psd, 1e-20))


def _f0_hz(y: np.ndarray) -> float:
    n_fft = 1 << 21
    spectrum = np.abs(np.fft.rfft(y.astype(np.float64) * np.hanning(y.size), n_fft))
    k = int(np.argmax(spectrum))
    a, b, c = np.log(spectrum[k - 1 : k + 2])
    return (k + 0.5 * (a - c) / (a - 2 * b + c)) * FS / n_fft


def _save(fig: plt.Figure, name: str) -> None:
    fig.tight_layout()
    fig.savefig(OUT_DIR / f"{name}.png", dpi=110)
    plt.close(fig)


def _magnitude_plot(name: str, settings: list[dict[str, float]], ylim: tuple[float, float]) -> None:
    freqs = np.fft.rfftfreq(1 << 16, 1 / FS)
    fig, ax = plt.subplots(figsize=(7, 4))
    for knobs in settings:
        label = ", ".join(f"{k}={v:g}" for k, v in knobs.items())
        ax.semilogx(freqs[1:], _response_db(name, knobs)[1:], label=label)
    ax.set(xlim=(20, FS / 2), ylim=ylim, xlabel="frequency (Hz)", ylabel="gain (dB)", title=name)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    _save(fig, name)


def _before_after_plot(name: str, dry: np.ndarray, wets: dict[str, np.ndarray]) -> None:
    fig, ax = plt.subplots(figsize=(7, 4))
    freqs, db = _spectrum_db(dry)
    ax.semilogx(freqs[1:], db[1:], "k", lw=1.5, label="dry")
    for label, wet in wets.items():
        freqs, db = _spectrum_db(wet)
        ax.semilogx(freqs[1:], db[1:], lw=1, label=label)
    ax.set(xlim=(50, 5000), ylim=(-140, 0), xlabel="frequency (Hz)", ylabel="PSD (dB/Hz)")
    ax.set_title(name)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    _save(fig, name)


def _render_time_s(name: str) -> float:
    noise = (0.3 * np.random.default_rng(0).standard_normal((1, 60 * FS))).astype(np.float32)
    start = time.perf_counter()
    get_effect(name).render(noise, FS)
    return time.perf_counter() - start


def main() -> None:
    OUT_DIR.mkdir(parents=True, exist_ok=True)

    _magnitude_plot(
        "highpass",
        [{"cutoff": 440.0, "order": o} for o in (1, 2, 4, 8)] + [{"cutoff": 4000.0, "order": 2}],
        (-80, 3),
    )
    freqs = np.fft.rfftfreq(1 << 16, 1 / FS)
    for order in (1, 2, 4, 8):
        db = _response_db("highpass", {"cutoff": 440.0, "order": order})
        at = np.interp(
            -10 * math.log10(2),
            db[(freqs > 100) & (freqs < 2000)],
            freqs[(freqs > 100) & (freqs < 2000)],
        )
        slope = np.interp(110.0, freqs, db) - np.interp(55.0, freqs, db)
        print(f"highpass order {order}: -3 dB at {at:.1f} Hz, {slope:.2f} dB/oct at 55-110 Hz")

    flat = {"low_gain": 0.0, "mid_gain": 0.0, "high_gain": 0.0}
    eq_settings = [
        flat,
        {**flat, "mid_freq": 1000.0, "mid_gain": 9.0, "mid_q": 1.0},
        {**flat, "mid_freq": 250.0, "mid_gain": -6.0, "mid_q": 4.0},
        {
            "low_freq": 100.0,
            "low_gain": 6.0,
            "mid_gain": -6.0,
            "high_freq": 8000.0,
            "high_gain": 4.0,
        },
    ]
    _magnitude_plot("eq", eq_settings, (-15, 12))
    for knobs in eq_settings[1:3]:
        db = _response_db("eq", knobs)
        print(
            f"eq peak {knobs['mid_gain']:+g} dB at {knobs['mid_freq']:g} Hz: measured "
            f"{np.interp(knobs['mid_freq'], freqs, db):+.3f} dB"
        )
    db = _response_db("eq", eq_settings[3])
    print(
        f"eq low shelf +6 dB: {np.interp(20.0, freqs, db):+.2f} dB at 20 Hz; high shelf +4 dB:"
        f" {np.interp(22000.0, freqs, db):+.2f} dB at 22 kHz"
    )

    dry = _tone(440.0, 2.0, 0.5)
    skip = pitch_latency_samples(FS) + FS // 8
    wets = {}
    for semitones in (-12.0, -5.0, 7.0, 12.0):
        wet = get_effect("pitch").render(dry, FS, {"semitones": semitones, "mix": 100})[0]
        target = 440.0 * 2 ** (semitones / 12)
        f0 = _f0_hz(wet[skip : skip + FS])
        print(
            f"pitch {semitones:+g} st: f0 {f0:.4f} Hz, {1200 * math.log2(f0 / target):+.4f} "
            f"cents from {target:.3f} Hz"
        )
        wets[f"{semitones:+g} st"] = wet[skip:]
    _before_after_plot("pitch", dry[0, skip:], wets)

    sine = _tone(220.0, 2.0)
    octave = get_effect("octave")
    wets = {
        label: octave.render(sine, FS, knobs)[0, FS // 4 :]
        for label, knobs in (
            ("down only", {"down": 100, "up": 0, "dry": 0}),
            ("up only", {"down": 0, "up": 100, "dry": 0}),
        )
    }
    _before_after_plot("octave", sine[0, FS // 4 :], wets)
    for label, wet in wets.items():
        levels = []
        for f in (110.0, 220.0, 440.0):
            t = np.arange(wet.size) / FS
            basis = np.stack([np.sin(2 * np.pi * f * t), np.cos(2 * np.pi * f * t)], axis=1)
            coef, *_ = np.linalg.lstsq(basis, wet.astype(np.float64), rcond=None)
            levels.append(f"{f:g} Hz {20 * np.log10(np.hypot(*coef) + 1e-12):+.1f} dB")
        print(f"octave {label}, 220 Hz full-scale sine: " + ", ".join(levels))

    ramp = np.linspace(-1.0, 1.0, 960, dtype=np.float32)[None]
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(ramp[0], ramp[0], "k", lw=1, label="dry")
    for bits, hold in ((3, 1), (3, 32), (5, 1)):
        wet = get_effect("bitcrusher").render(
            ramp, FS, {"bits": bits, "downsample": hold, "mix": 100}
        )
        ax.plot(ramp[0], wet[0], lw=1, label=f"bits={bits}, downsample={hold}")
        print(f"bitcrusher bits={bits} downsample={hold}: {len(np.unique(wet))} levels")
    ax.set(xlabel="input", ylabel="output", title="bitcrusher on a ramp")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7)
    _save(fig, "bitcrusher")

    for name in ("highpass", "eq", "pitch", "octave", "bitcrusher"):
        peak = max(
            float(np.abs(get_effect(name).render(_tone(f, 1.0), FS)).max())
            for f in (82.0, 220.0, 997.0, 3000.0)
        )
        print(
            f"{name}: 60 s mono at 48 kHz in {_render_time_s(name):.2f} s; "
            f"full-scale sine peak at defaults {peak:.4f}"
        )


if __name__ == "__main__":
    main()
