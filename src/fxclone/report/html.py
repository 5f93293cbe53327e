"""The evaluation report: one self-contained HTML file to read and listen to.

Everything the page needs is inside it: audio excerpts as 16-bit WAV ``data:`` URIs, figures as
base64 PNGs and the stylesheet inline, with no scripts and no external URLs, so the file can be
mailed, archived or opened offline and looks the same everywhere. Every string from the caller
(titles, model names, card values, notes, captions) is HTML-escaped.

Audio is ``(channels, samples)`` float (``(samples,)`` is taken as mono) at one sample rate.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import io
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from fxclone.audio import atomic_path
from fxclone.errors import FxcloneError

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Metrics shown first, in this order; any other keys follow in the order first seen.
METRIC_ORDER = ("esr", "esr_pre_emph", "mae", "mrstft")
METRIC_LABELS = {
    "esr": "ESR",
    "esr_pre_emph": "ESR (pre-emphasis)",
    "mae": "MAE",
    "mrstft": "MR-STFT",
}
# The loudest-region search steps by this fraction of the excerpt; finer steps change nothing
# audible and cost time on long test files.
SEARCH_STEP_FRACTION = 0.05

CSS = """
:root { color-scheme: light; }
body { margin: 0; background: #f5f6f8; color: #1d2330;
  font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif; }
main { max-width: 1100px; margin: 0 auto; padding: 24px 28px 48px; }
header { border-bottom: 1px solid #d7dbe2; margin-bottom: 8px; padding-bottom: 12px; }
h1 { font-size: 26px; margin: 8px 0 4px; }
h2 { font-size: 19px; margin: 32px 0 12px; }
h3 { font-size: 15px; margin: 0 0 8px; }
.meta { color: #5b6475; margin: 0; }
.meta span + span::before { content: "\\00b7"; margin: 0 8px; }
table { border-collapse: collapse; background: #fff; font-variant-numeric: tabular-nums; }
th, td { padding: 6px 12px; border-bottom: 1px solid #e4e7ec; text-align: right; }
th:first-child, td:first-child { text-align: left; }
thead th { background: #eceff4; font-weight: 600; }
tr.baseline td { color: #5b6475; font-style: italic; }
td.best, tr.baseline td.best { font-weight: 700; color: #0b5d3b; }
.hint { color: #5b6475; font-size: 13px; margin: 6px 0 0; }
.players { display: grid; grid-template-columns: repeat(auto-fill, minmax(440px, 1fr));
  gap: 12px; }
.player, .card, figure { background: #fff; border: 1px solid #e1e4ea; border-radius: 8px;
  padding: 12px 14px; }
.player audio { width: 100%; }
figure { margin: 0 0 16px; }
figure img { display: block; max-width: 100%; height: auto; margin: 0 auto; }
figcaption { color: #5b6475; font-size: 13px; margin-top: 6px; text-align: center; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(320px, 1fr));
  gap: 12px; }
.card table { width: 100%; font-size: 13px; }
.card td { padding: 3px 6px; }
ul.notes { background: #fff; border: 1px solid #e1e4ea; border-radius: 8px;
  padding: 12px 14px 12px 34px; }
"""


@dataclass(frozen=True)
class ReportModel:
    """One model's entry in the report.

    Attributes:
        name: shown as the row, player and card title.
        audio: the model's output on the test audio, ``(channels, samples)`` float in [-1, 1].
        metrics: metric name -> value (all lower-is-better), e.g. ``esr``, ``mae``.
        card: model card: family, parameters, receptive field, latency, ``sample_rate`` (Hz)...
    """

    name: str
    audio: np.ndarray
    metrics: Mapping[str, float]
    card: Mapping[str, Any]


def _esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def _fmt(value: object) -> str:
    """Numbers to 4 significant digits (ints in full), anything else as text."""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}"
    if isinstance(value, (float, np.floating)):
        return f"{float(value):.4g}" if math.isfinite(value) else "—"
    return str(value)


def _as_2d(name: str, audio: np.ndarray) -> np.ndarray:
    x = np.asarray(audio, dtype=np.float32)
    if x.ndim == 1:
        x = x[None]
    if x.ndim != 2 or x.shape[1] == 0:
        raise FxcloneError(
            f"{name} has shape {np.shape(audio)}; give (channels, samples) or (samples,) audio"
        )
    if not np.all(np.isfinite(x)):
        raise FxcloneError(f"{name} contains NaN/Inf samples; fix the model or audio that made it")
    return x


def _loudest_start(audio: np.ndarray, excerpt_samples: int) -> int:
    """First sample of the ``excerpt_samples``-long window with the most energy in ``audio``."""
    n = audio.shape[1]
    if n <= excerpt_samples:
        return 0
    power = np.concatenate([[0.0], np.cumsum(np.square(audio, dtype=np.float64).sum(axis=0))])
    step = max(1, int(excerpt_samples * SEARCH_STEP_FRACTION))
    starts = np.arange(0, n - excerpt_samples + 1, step)
    energy = power[starts + excerpt_samples] - power[starts]
    return int(starts[int(np.argmax(energy))])


def _wav_data_uri(audio: np.ndarray, sample_rate: int) -> str:
    buffer = io.BytesIO()
    # Clip first: out-of-range floats would wrap around when converted to 16-bit integers.
    sf.write(buffer, np.clip(audio, -1.0, 1.0).T, sample_rate, format="WAV", subtype="PCM_16")
    return "data:audio/wav;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _png_data_uri(caption: str, image: str | os.PathLike[str] | bytes) -> str:
    if isinstance(image, (bytes, bytearray)):
        data, source = bytes(image), f"image {caption!r}"
    else:
        path = Path(image)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise FxcloneError(
                f"cannot read image {path} for {caption!r} ({exc.strerror}); "
                "check the path or make the figure first"
            ) from None
        source = f"image {path}"
    if not data.startswith(PNG_SIGNATURE):
        raise FxcloneError(f"{source} is not a PNG file; save the figure as PNG")
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def _metric_keys(rows: Sequence[Mapping[str, float]]) -> list[str]:
    seen = [key for row in rows for key in row]
    others = [key for key in dict.fromkeys(seen) if key not in METRIC_ORDER]
    return [key for key in METRIC_ORDER if key in seen] + others


def _baseline_label(key: str) -> str:
    name = key.removeprefix("esr_").replace("_", " ")
    return name if "floor" in name else f"{name} baseline"


def _metrics_table(models: Sequence[ReportModel], baselines: Mapping[str, float]) -> str:
    rows: list[tuple[str, Mapping[str, float], bool]] = [(m.name, m.metrics, False) for m in models]
    # Baselines are ESR scores of reference fits; they share the ESR column.
    rows += [(_baseline_label(key), {"esr": value}, True) for key, value in baselines.items()]
    keys = _metric_keys([metrics for _, metrics, _ in rows])
    best: dict[str, float] = {}
    for key in keys:
        values = [float(m[key]) for _, m, _ in rows if key in m and math.isfinite(float(m[key]))]
        if values:
            best[key] = min(values)
    head = "".join(f"<th>{_esc(METRIC_LABELS.get(key, key))}</th>" for key in keys)
    body = []
    for name, metrics, is_baseline in rows:
        cells = []
        for key in keys:
            if key not in metrics:
                cells.append("<td>—</td>")
                continue
            value = float(metrics[key])
            if key in best and value == best[key]:
                cells.append(f'<td class="best"><b>{_esc(_fmt(value))}</b></td>')
            else:
                cells.append(f"<td>{_esc(_fmt(value))}</td>")
        css = ' class="baseline"' if is_baseline else ""
        body.append(f"<tr{css}><td>{_esc(name)}</td>{''.join(cells)}</tr>")
    return (
        f"<table><thead><tr><th>model</th>{head}</tr></thead>"
        f"<tbody>{''.join(body)}</tbody></table>"
        '<p class="hint">Lower is better in every column; the best value is in bold. '
        "Baselines are the best linear filter and the best static curve fitted to the same "
        "training audio.</p>"
    )


def _card_table(model: ReportModel) -> str:
    rows = "".join(
        f"<tr><td>{_esc(str(key).replace('_', ' '))}</td><td>{_esc(_fmt(value))}</td></tr>"
        for key, value in model.card.items()
    )
    return f'<div class="card"><h3>{_esc(model.name)}</h3><table>{rows}</table></div>'


def write_report(
    path: str | os.PathLike[str],
    *,
    title: str,
    sample_rate: int,
    dry: np.ndarray,
    target: np.ndarray,
    models: Sequence[ReportModel],
    images: Mapping[str, str | os.PathLike[str] | bytes] | None = None,
    baselines: Mapping[str, float] | None = None,
    notes: Sequence[str] = (),
    excerpt_seconds: float = 12.0,
    created: dt.datetime | None = None,
) -> Path:
    """Write the evaluation report as one self-contained HTML file, atomically.

    Args:
        path: the ``.html`` file to write; its folder is created.
        title: page heading.
        sample_rate: of every signal, in Hz.
        dry: the test input, ``(channels, samples)``.
        target: the real effect's output on ``dry``, ``(channels, samples)``.
        models: each model's output on ``dry`` (same number of samples), metrics and card.
        images: caption -> PNG (a file path or the PNG bytes), shown inline in this order.
        baselines: name -> ESR (unitless) of a reference fit, e.g. from
            :func:`fxclone.baselines.baseline_scores`; shown as extra rows of the ESR column.
        notes: free-text lines shown as a list at the end.
        excerpt_seconds: length of the audio excerpts, in seconds; the same stretch (the
            loudest of the target) is cut from every signal, the whole audio if shorter.
        created: timestamp shown in the header; now if not given (pass one for identical
            files from identical input).

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        FxcloneError: mismatched lengths or sample rates, bad audio, an unreadable or non-PNG
            image; no file is left behind.
    """
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, np.integer)):
        raise FxcloneError(
            f"sample rate {sample_rate!r} is not an integer; give it in Hz, e.g. 48000"
        )
    if sample_rate <= 0:
        raise FxcloneError(
            f"sample rate {sample_rate} Hz is not positive; give it in Hz, e.g. 48000"
        )
    if not (excerpt_seconds > 0 and math.isfinite(excerpt_seconds)):
        raise FxcloneError(
            f"excerpt length {excerpt_seconds} s is not a positive number; give e.g. 12"
        )
    signals = {"dry": _as_2d("dry audio", dry), "target": _as_2d("target audio", target)}
    for model in models:
        if model.name in signals:
            raise FxcloneError(
                f"two signals are named {model.name!r}; give every model a unique name "
                "other than 'dry' and 'target'"
            )
        signals[model.name] = _as_2d(f"output of model {model.name!r}", model.audio)
        card_rate = model.card.get("sample_rate")
        if card_rate is not None and int(card_rate) != sample_rate:
            raise FxcloneError(
                f"model {model.name!r} runs at {card_rate} Hz but the test audio is "
                f"{sample_rate} Hz; resample the test audio or retrain at {sample_rate} Hz"
            )
    n_samples = signals["target"].shape[1]
    for name, audio in signals.items():
        if audio.shape[1] != n_samples:
            raise FxcloneError(
                f"{name} has {audio.shape[1]} samples but target has {n_samples}; "
                "trim every signal to the test audio's length"
            )
    pictures = [
        (caption, _png_data_uri(caption, image)) for caption, image in (images or {}).items()
    ]

    excerpt_samples = min(n_samples, max(1, round(excerpt_seconds * sample_rate)))
    start = _loudest_start(signals["target"], excerpt_samples)
    players = "".join(
        f'<div class="player"><h3>{_esc(name)}</h3><audio controls preload="metadata" '
        f'src="{_wav_data_uri(audio[:, start : start + excerpt_samples], sample_rate)}">'
        "</audio></div>"
        for name, audio in signals.items()
    )
    figures = "".join(
        f'<figure><img src="{uri}" alt="{_esc(caption)}"><figcaption>{_esc(caption)}'
        "</figcaption></figure>"
        for caption, uri in pictures
    )
    when = (created or dt.datetime.now()).strftime("%Y-%m-%d %H:%M")
    meta = (
        f"<span>{_esc(when)}</span><span>{sample_rate:,} Hz</span>"
        f"<span>test audio {n_samples / sample_rate:.1f} s</span>"
    )
    sections = [
        f"<header><h1>{_esc(title)}</h1><p class='meta'>{meta}</p></header>",
        f"<h2>Metrics</h2>{_metrics_table(models, baselines or {})}",
        f"<h2>Listen</h2><div class='players'>{players}</div>"
        f"<p class='hint'>{excerpt_samples / sample_rate:.1f} s from "
        f"{start / sample_rate:.1f} s, the loudest stretch of the target; the same stretch for "
        "every player, not normalised.</p>",
    ]
    if figures:
        sections.append(f"<h2>Figures</h2>{figures}")
    if models:
        sections.append(
            f"<h2>Model cards</h2><div class='cards'>{''.join(map(_card_table, models))}</div>"
        )
    if notes:
        items = "".join(f"<li>{_esc(note)}</li>" for note in notes)
        sections.append(f"<h2>Notes</h2><ul class='notes'>{items}</ul>")
    page = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_esc(title)}</title><style>{CSS}</style></head>"
        f"<body><main>{''.join(sections)}</main></body></html>\n"
    )
    out = Path(path)
    with atomic_path(out) as tmp:
        tmp.write_text(page, encoding="utf-8")
    return out
