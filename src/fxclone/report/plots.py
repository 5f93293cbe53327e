"""PNG figures for the evaluation report: log-mel spectrograms and waveform close-ups.

Figures are drawn on matplotlib's Agg canvas directly (no pyplot, so no global figure state and
no GUI backend), written atomically, and identical for identical input. Multichannel audio is
averaged to mono for display.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from fxclone.audio import atomic_path
from fxclone.errors import FxcloneError
from fxclone.report.measure import (
    DB_FLOOR,
    N_HARMONICS_REPORTED,
    STEP_AMPLITUDE,
    Measurements,
)

DPI = 100
N_MELS = 128
# Colours span this many dB below the loudest mel bin of all the signals shown together.
DB_RANGE = 80.0
# Longer audio gets a longer hop so a spectrogram never has many more columns than pixels.
MAX_FRAMES = 2000
MIN_SAMPLES = 64


def _as_mono(name: str, audio: np.ndarray) -> np.ndarray:
    """``(channels, samples)`` or ``(samples,)`` -> float32 ``(samples,)``, checked."""
    x = np.asarray(audio, dtype=np.float32)
    if x.ndim == 2:
        x = x.mean(axis=0)
    if x.ndim != 1:
        raise FxcloneError(
            f"{name} has shape {np.shape(audio)}; give (channels, samples) or (samples,) audio"
        )
    if x.size < MIN_SAMPLES:
        raise FxcloneError(
            f"{name} holds only {x.size} sample(s); give at least {MIN_SAMPLES} to plot"
        )
    if not np.all(np.isfinite(x)):
        raise FxcloneError(f"{name} contains NaN/Inf samples; fix the model or audio that made it")
    return x


def _same_length(signals: Mapping[str, np.ndarray]) -> int:
    lengths = {name: x.size for name, x in signals.items()}
    if len(set(lengths.values())) != 1:
        listed = ", ".join(f"{name}: {n}" for name, n in lengths.items())
        raise FxcloneError(
            f"signals to plot differ in length ({listed} samples); trim them to the same length"
        )
    return next(iter(lengths.values()))


def _check_rate(sample_rate: int) -> None:
    if not sample_rate > 0:
        raise FxcloneError(f"sample_rate={sample_rate} Hz is not a sample rate; give e.g. 48000")


def _save(fig: Figure, path: str | os.PathLike[str]) -> Path:
    FigureCanvasAgg(fig)
    p = Path(path)
    with atomic_path(p) as tmp:
        fig.savefig(tmp, format="png", dpi=DPI)
    return p


def plot_mel_spectrograms(
    path: str | os.PathLike[str],
    signals: Mapping[str, np.ndarray],
    sample_rate: int,
    title: str | None = None,
) -> Path:
    """Draw log-mel spectrograms of several signals, one row each, on one colour scale.

    128 mel bands up to Nyquist; levels in dB relative to the loudest bin of all the signals,
    shown over an 80 dB range with one shared colour bar, so equal colours mean equal levels
    across rows. The FFT is 2048 samples with a 512-sample hop, the hop growing for long audio
    so there are at most about 2000 columns.

    Args:
        path: PNG to write; missing folders are created.
        signals: name -> audio, e.g. ``{"dry": ..., "target": ..., "model": ...}``, each
            ``(channels, samples)`` or ``(samples,)``, all the same length.
        sample_rate: in Hz.
        title: drawn above the rows.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.
    """
    import librosa
    import librosa.display

    _check_rate(sample_rate)
    if not signals:
        raise FxcloneError("no signals to plot; pass e.g. {'target': wet, 'model': estimate}")
    mono = {name: _as_mono(name, x) for name, x in signals.items()}
    n = _same_length(mono)
    n_fft, hop = _stft_sizes(n)
    with warnings.catch_warnings():
        # Short FFTs at low sample rates leave some of the 128 mel filters empty; that is
        # expected here and only makes a few rows of the picture repeat.
        warnings.simplefilter("ignore")
        powers = {
            name: librosa.feature.melspectrogram(
                y=x, sr=sample_rate, n_fft=n_fft, hop_length=hop, n_mels=N_MELS
            )
            for name, x in mono.items()
        }
    ref = max(max(float(s.max()) for s in powers.values()), 1e-20)

    fig = Figure(figsize=(10.0, 0.8 + 2.2 * len(powers)), layout="constrained")
    axes = fig.subplots(len(powers), 1, sharex=True, squeeze=False)[:, 0]
    images = []
    for ax, (name, power) in zip(axes, powers.items(), strict=True):
        level_db = librosa.power_to_db(power, ref=ref, amin=1e-10, top_db=None)
        image = librosa.display.specshow(
            level_db,
            sr=sample_rate,
            hop_length=hop,
            n_fft=n_fft,
            x_axis="s",
            y_axis="mel",
            ax=ax,
            vmin=-DB_RANGE,
            vmax=0.0,
            cmap="magma",
        )
        images.append(image)
        ax.set_title(name, loc="left", fontsize="medium")
        ax.set_ylabel("Frequency (Hz)")
        ax.set_xlabel("")
    axes[-1].set_xlabel("Time (s)")
    fig.colorbar(images[-1], ax=list(axes), format="%+.0f dB", label="Level re. loudest bin (dB)")
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def _stft_sizes(n_samples: int) -> tuple[int, int]:
    """FFT size and hop (samples) for a spectrogram of ``n_samples``."""
    hop = max(512, math.ceil(n_samples / MAX_FRAMES))
    n_fft = max(2048, 1 << (hop - 1).bit_length())
    if n_samples < n_fft:
        # librosa needs the frame to fit in the signal; keep a quarter-frame hop.
        n_fft = 1 << (n_samples.bit_length() - 1)
        hop = n_fft // 4
    return n_fft, hop


def plot_waveform_overlay(
    path: str | os.PathLike[str],
    target: np.ndarray,
    estimate: np.ndarray,
    sample_rate: int,
    dry: np.ndarray | None = None,
    excerpts: Sequence[float] | None = None,
    n_excerpts: int = 3,
    excerpt_ms: float = 10.0,
) -> Path:
    """Overlay target, model and (optionally) dry waveforms on a few short excerpts.

    One panel per excerpt, side by side on a shared amplitude axis, time in ms from the
    excerpt's start. Without ``excerpts``, the first is placed at the target's strongest onset
    (largest rise in short-term energy) and the rest where the target is loudest, never
    overlapping, shown in time order.

    Args:
        path: PNG to write; missing folders are created.
        target: the real effect's output, ``(channels, samples)`` or ``(samples,)``.
        estimate: the model's output, same length.
        sample_rate: in Hz.
        dry: the effect's input, same length, drawn faintly behind the others.
        excerpts: start times in seconds; chosen automatically when None.
        n_excerpts: how many excerpts to choose automatically.
        excerpt_ms: length of each excerpt in milliseconds.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.
    """
    _check_rate(sample_rate)
    named = {"target": target, "model": estimate} | ({"dry": dry} if dry is not None else {})
    mono = {name: _as_mono(name, x) for name, x in named.items()}
    n = _same_length(mono)
    if not excerpt_ms > 0:
        raise FxcloneError(f"excerpt_ms={excerpt_ms} must be positive; 10 ms shows a few cycles")
    length = min(n, max(2, round(excerpt_ms * sample_rate / 1000)))
    if excerpts is None:
        if n_excerpts < 1:
            raise FxcloneError(f"n_excerpts={n_excerpts}; ask for at least one excerpt")
        starts = _pick_excerpts(mono["target"], length, n_excerpts)
    else:
        starts = [_start_index(s, n, sample_rate) for s in excerpts]
        if not starts:
            raise FxcloneError("excerpts is empty; give start times in seconds or None")

    fig = Figure(figsize=(0.6 + 3.8 * len(starts), 3.6), layout="constrained")
    axes = fig.subplots(1, len(starts), sharey=True, squeeze=False)[0]
    styles = {
        "dry": {"color": "0.65", "linewidth": 1.0},
        "target": {"color": "black", "linewidth": 2.0},
        "model": {"color": "tab:orange", "linewidth": 1.3, "linestyle": "--"},
    }
    for ax, start in zip(axes, starts, strict=True):
        stop = min(n, start + length)
        t_ms = np.arange(stop - start) * (1000.0 / sample_rate)
        for name in ("dry", "target", "model"):
            if name in mono:
                ax.plot(t_ms, mono[name][start:stop], label=name, **styles[name])
        ax.set_title(f"from {start / sample_rate:.3f} s", fontsize="medium")
        ax.set_xlabel("Time (ms)")
        ax.set_xlim(0.0, t_ms[-1])
        ax.grid(True, color="0.9")
    axes[0].set_ylabel("Amplitude (full scale)")
    axes[0].legend(loc="best", fontsize="small")
    return _save(fig, path)


def _start_index(seconds: float, n: int, sample_rate: int) -> int:
    start = round(seconds * sample_rate)
    if not 0 <= start < n:
        raise FxcloneError(
            f"excerpt start {seconds} s is outside the audio (0 to {n / sample_rate:.3f} s); "
            "give a start time inside it"
        )
    return start


def _pick_excerpts(target: np.ndarray, length: int, count: int) -> list[int]:
    """Start indices of up to ``count`` non-overlapping excerpts of ``length`` samples."""
    n = target.size
    hop = max(1, length // 2)
    starts = np.arange(0, n - length + 1, hop)
    cumulative = np.concatenate([[0.0], np.cumsum(target.astype(np.float64) ** 2)])
    energy = cumulative[starts + length] - cumulative[starts]
    level_db = 10.0 * np.log10(energy + 1e-12)
    # An onset is the biggest rise from one window to the next; only windows within 40 dB of
    # the loudest count, so a click in the noise floor does not win.
    rise = np.diff(level_db, prepend=level_db[0])
    rise[level_db < level_db.max() - 40.0] = -np.inf
    k = int(np.argmax(rise))
    # The attack lies between the previous window's start and this window's end; take the first
    # sample there reaching half the peak, and show a quarter excerpt of what came before it.
    lo, hi = int(starts[max(0, k - 1)]), int(starts[k]) + length
    region = np.abs(target[lo:hi])
    attack = lo + int(np.argmax(region >= 0.5 * region.max()))
    chosen = [min(max(0, attack - length // 4), n - length)]
    # Keep the loud excerpts apart so they sample different parts of the audio.
    spacing = max(length, n // (2 * count))
    for i in np.argsort(-energy, kind="stable"):
        if len(chosen) >= count:
            break
        start = int(starts[i])
        if all(abs(start - c) >= spacing for c in chosen):
            chosen.append(start)
    return sorted(chosen)


# ------------------------------------------------------------------------- measurements


def _style(name: str, index: int) -> dict[str, object]:
    """The target in thick black, each other entry in the next colour of the cycle."""
    if name == "target":
        return {"color": "black", "linewidth": 2.5, "zorder": 3}
    return {"color": f"C{index}", "linewidth": 1.2, "zorder": 4}


def _ms_text(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.1f} ms"


def plot_measurements(
    path: str | Path, measured: Mapping[str, Measurements], title: str | None = None
) -> Path:
    """Overlay several effects' measurements in one 2x3 PNG and return its path.

    Panels: frequency response, THD against level, transfer curve, step response, harmonics
    2..6 at the loudest level (grouped bars), and a table of attack, release and aliasing.
    The entry called ``"target"`` (if any) is drawn thick and black, the others in colour.

    Args:
        path: the PNG to write (atomically; folders are created).
        measured: name -> measurements, e.g. ``{"target": ..., "model-a": ...}``.
        title: figure title; none if ``None``.
    """
    if not measured:
        raise FxcloneError("nothing to plot; give at least one name -> Measurements entry")
    fig = Figure(figsize=(15, 8.5), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(2, 3)
    ax_fr, ax_thd, ax_tf, ax_step, ax_harm, ax_text = axes.ravel()
    styles = {name: _style(name, i) for i, name in enumerate(measured)}
    for name, m in measured.items():
        st = styles[name]
        ax_fr.semilogx(m.freqs_hz, m.response_db, label=name, **st)
        ax_thd.semilogy(m.levels_dbfs, np.maximum(m.thd, DB_FLOOR) * 100.0, marker="o", **st)
        ax_tf.plot(m.transfer_in, m.transfer_out, **st)
        ax_step.plot(m.step_t_ms, m.step_response, **st)
    ax_fr.set(title="Frequency response (sweep at -20 dBFS)", xlabel="Hz", ylabel="dB")
    low = min(float(np.min(m.response_db)) for m in measured.values())
    high = max(float(np.max(m.response_db)) for m in measured.values())
    ax_fr.set_ylim(max(low, high - 60.0) - 3.0, high + 3.0)
    ax_fr.legend(loc="lower left", fontsize="small")
    ax_thd.set(title="THD of a 1 kHz tone", xlabel="input level (dBFS peak)", ylabel="THD (%)")
    ax_tf.set(title="Transfer curve (50 Hz, full scale)", xlabel="input", ylabel="output")
    ax_tf.set_aspect("equal", adjustable="datalim")
    ax_step.set(title=f"Step response (0 -> {STEP_AMPLITUDE})", xlabel="ms", ylabel="output")

    width = 0.8 / len(measured)
    orders = np.arange(2, 2 + N_HARMONICS_REPORTED)
    for i, (name, m) in enumerate(measured.items()):
        # Bars grow up from a -120 dB floor so quieter harmonics are shorter bars.
        heights = np.maximum(m.harmonics_db[-1], -120.0) + 120.0
        colour = styles[name]["color"]
        ax_harm.bar(
            orders + (i - (len(measured) - 1) / 2) * width,
            heights,
            width,
            bottom=-120.0,
            color=colour,
            label=name,
        )
    loudest = next(iter(measured.values())).levels_dbfs[-1]
    ax_harm.set(
        title=f"Harmonics at {loudest:g} dBFS",
        xlabel="harmonic",
        ylabel="dB re. fundamental",
        xticks=orders,
        ylim=(-120.0, 0.0),
    )

    ax_text.axis("off")
    ax_text.set_title("Dynamics and aliasing")
    rows = [f"{'':<14}{'attack':>10}{'release':>10}{'aliasing':>12}"]
    rows += [
        f"{name[:13]:<14}{_ms_text(m.attack_ms):>10}{_ms_text(m.release_ms):>10}"
        f"{m.aliasing_db:>9.1f} dB"
        for name, m in measured.items()
    ]
    ax_text.text(
        0.0,
        1.0,
        "\n".join(rows),
        family="monospace",
        va="top",
        ha="left",
        transform=ax_text.transAxes,
        bbox={"boxstyle": "round", "facecolor": "whitesmoke", "edgecolor": "grey"},
    )
    ax_text.text(
        0.0,
        0.05,
        "attack/release: time to 63 % of the gain change\n"
        "for a 1 kHz tone -30 -> -6 -> -30 dBFS ('-' = under 1 dB)\n"
        "aliasing: energy off the harmonics of a full-scale\n"
        "3.1 kHz sine, re. total output",
        fontsize="small",
        va="bottom",
        ha="left",
        transform=ax_text.transAxes,
    )
    for ax in (ax_fr, ax_thd, ax_tf, ax_step, ax_harm):
        ax.grid(True, which="both", alpha=0.3)
    if title:
        fig.suptitle(title)
    out = Path(path)
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png")
    return out
