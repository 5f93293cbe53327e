"""Shared pieces of the listening tests: statistics, audio helpers, the session base, HTML."""

from __future__ import annotations

import html
import io
import json
import os
import threading
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy import signal, stats

from fxclone.audio import atomic_path, read_audio
from fxclone.errors import FxcloneError

PathLike = str | os.PathLike[str]

ANCHOR_CUTOFF_HZ = 3500.0
HIDDEN_REFERENCE = "hidden_reference"
ANCHOR = "anchor"
_FADE_SECONDS = 0.01  # cutting excerpts mid-waveform clicks; a 10 ms fade hides the cut
MAX_POST_BYTES = 65536

# ----------------------------------------------------------------------------- statistics


def abx_p_value(correct: int, trials: int) -> float:
    """One-sided binomial p-value of an ABX run: P(X >= correct) for X ~ Binomial(trials, 0.5).

    This is the chance of scoring at least ``correct`` by guessing; 8/10 gives 0.0547,
    10/10 gives 0.000977.
    """
    if trials < 1 or not 0 <= correct <= trials:
        raise FxcloneError(
            f"ABX score {correct}/{trials} is impossible; correct must be 0..trials, trials >= 1"
        )
    return float(stats.binom.sf(correct - 1, trials, 0.5))


def mushra_stats(ratings: Mapping[str, Sequence[float]]) -> dict[str, dict]:
    """Mean and 95 % confidence interval of MUSHRA ratings (0-100) per condition.

    The interval is Student's t: ``mean ± t(0.975, n - 1) · s / sqrt(n)`` with ``s`` the sample
    standard deviation (ddof = 1) over the ``n`` ratings of that condition (screens x
    listeners). With a single rating there is no interval: ``ci95``, ``ci_low`` and ``ci_high``
    are ``None``.

    Returns:
        ``{name: {"mean", "ci95" (half-width), "ci_low", "ci_high", "n"}}``.
    """
    out: dict[str, dict] = {}
    for name, values in ratings.items():
        x = np.asarray(values, dtype=np.float64)
        if x.size == 0:
            raise FxcloneError(f"condition {name!r} has no ratings; rate it at least once")
        mean = float(x.mean())
        half = None
        if x.size > 1:
            half = float(stats.t.ppf(0.975, x.size - 1) * x.std(ddof=1) / np.sqrt(x.size))
        out[name] = {
            "mean": mean,
            "ci95": half,
            "ci_low": None if half is None else mean - half,
            "ci_high": None if half is None else mean + half,
            "n": int(x.size),
        }
    return out


# ----------------------------------------------------------------------------- audio helpers


def read_matching(paths: Sequence[PathLike]) -> tuple[list[np.ndarray], int]:
    """Read files that must share one sample rate; mono files are copied to every channel."""
    clips, rates = [], []
    for p in paths:
        audio, sr = read_audio(p)
        clips.append(audio)
        rates.append(sr)
    for p, sr in zip(paths, rates, strict=True):
        if sr != rates[0]:
            raise FxcloneError(
                f"{p} is {sr} Hz but {paths[0]} is {rates[0]} Hz; "
                f"re-export {p} at {rates[0]} Hz so the listener compares like with like"
            )
    channels = max(c.shape[0] for c in clips)
    for i, (p, c) in enumerate(zip(paths, clips, strict=True)):
        if c.shape[0] == 1:
            clips[i] = np.repeat(c, channels, axis=0)
        elif c.shape[0] != channels:
            raise FxcloneError(
                f"{p} has {c.shape[0]} channels but others have {channels}; "
                "export every file as mono or with the same channel count"
            )
    return clips, rates[0]


def wav_bytes(audio: np.ndarray, sample_rate: int) -> bytes:
    """Encode float ``(channels, samples)`` as a 16-bit WAV, which every browser plays."""
    buf = io.BytesIO()
    sf.write(buf, np.clip(audio, -1.0, 1.0).T, sample_rate, subtype="PCM_16", format="WAV")
    return buf.getvalue()


def fade(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    n = min(int(_FADE_SECONDS * sample_rate), audio.shape[-1] // 2)
    if n < 1:
        return audio
    ramp = 0.5 - 0.5 * np.cos(np.linspace(0.0, np.pi, n))
    out = audio.copy()
    out[:, :n] *= ramp
    out[:, -n:] *= ramp[::-1]
    return out


def lowpass_anchor(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """The MUSHRA low anchor: ``audio (channels, samples)`` low-passed at 3.5 kHz.

    An 8th-order Butterworth applied forwards and backwards (zero phase, so the anchor stays
    time-aligned with the reference).
    """
    if sample_rate <= 2 * ANCHOR_CUTOFF_HZ:
        raise FxcloneError(
            f"sample rate {sample_rate} Hz is too low for the 3.5 kHz anchor; "
            "use audio at 8000 Hz or more"
        )
    sos = signal.butter(8, ANCHOR_CUTOFF_HZ, "lowpass", fs=sample_rate, output="sos")
    return signal.sosfiltfilt(sos, audio, axis=-1).astype(np.float32)


# ----------------------------------------------------------------------------- sessions


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


class Session:
    """What the HTTP server needs from a test: pages, audio by key, and form submissions."""

    def __init__(self, out_json: PathLike, config: dict, debug: bool) -> None:
        self.out_json = Path(out_json)
        self.config = config
        self.debug = debug
        self.lock = threading.Lock()
        self.end_page_served = threading.Event()
        self.audio: dict[str, bytes] = {}
        self.server_url: str | None = None  # set by start_server
        self.results: list[dict] = self._resume()

    def _resume(self) -> list[dict]:
        if not self.out_json.exists():
            return []
        try:
            saved = json.loads(self.out_json.read_text())
            results = saved["results"]
        except (OSError, ValueError, KeyError, TypeError):
            raise FxcloneError(
                f"{self.out_json} exists but is not a results file of this tool; "
                "choose another output path or delete it"
            ) from None
        if saved.get("config") != self.config:
            raise FxcloneError(
                f"{self.out_json} holds a different listening test (other files, seed or "
                "length); choose another output path to start a new one, or delete it"
            )
        return list(results)

    def save(self) -> None:
        """Write config, every result so far and the summary to the JSON, atomically."""
        doc = {"config": self.config, "results": self.results, "summary": self.summary()}
        with atomic_path(self.out_json) as tmp:
            tmp.write_text(json.dumps(doc, indent=2))

    # Subclasses fill these in.
    finished: bool

    def summary(self) -> dict | None:
        raise NotImplementedError

    def page(self) -> str:
        raise NotImplementedError

    def submit(self, form: Mapping[str, str]) -> None:
        raise NotImplementedError


def ci_text(half_width: float | None) -> str:
    return "-" if half_width is None else f"± {half_width:.1f}"


def as_strs(value: PathLike | Sequence[PathLike]) -> str | list[str]:
    if isinstance(value, str | os.PathLike):
        return str(value)
    return [str(v) for v in value]


_SCRIPT = """
document.querySelectorAll('audio').forEach(a => a.addEventListener('play', () =>
  document.querySelectorAll('audio').forEach(o => { if (o !== a) o.pause(); })));
document.querySelectorAll('input[type=range]').forEach(el => el.addEventListener('input',
  () => { el.nextElementSibling.textContent = el.value; }));
"""


def page_html(title: str, body: str) -> str:
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>"
        "body{font-family:sans-serif;max-width:46em;margin:2em auto;padding:0 1em}"
        ".player{display:flex;align-items:center;gap:1em;margin:.6em 0}"
        ".player b{width:5.5em}button{font-size:1.1em;margin:1em 1em 0 0;padding:.4em 1em}"
        "input[type=range]{width:14em}td,th{padding:.2em .8em;text-align:left}"
        f"</style></head><body>{body}<script>{_SCRIPT}</script></body></html>"
    )
