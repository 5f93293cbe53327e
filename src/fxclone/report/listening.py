"""Blind listening tests served on 127.0.0.1: ABX and MUSHRA.

A session owns the audio, the randomised plan and the results JSON; :func:`start_server` puts it
behind a small stdlib HTTP server. Every answer is written to the JSON the moment it is posted
(temporary file, then rename), so a crash or a closed tab loses nothing, and opening the same
JSON again resumes where the listener stopped.

Pages are plain HTML with a few lines of inline JavaScript and no external URLs. Audio URLs
name the trial and the player (``/audio/3/X``), never the file, so the page source does not give
the answer away.
"""

from __future__ import annotations

import html
import io
import json
import os
import threading
import webbrowser
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs

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
_MAX_POST_BYTES = 65536


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


def _read_matching(paths: Sequence[PathLike]) -> tuple[list[np.ndarray], int]:
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


def _wav_bytes(audio: np.ndarray, sample_rate: int) -> bytes:
    """Encode float ``(channels, samples)`` as a 16-bit WAV, which every browser plays."""
    buf = io.BytesIO()
    sf.write(buf, np.clip(audio, -1.0, 1.0).T, sample_rate, subtype="PCM_16", format="WAV")
    return buf.getvalue()


def _fade(audio: np.ndarray, sample_rate: int) -> np.ndarray:
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


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


class _Session:
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


class AbxSession(_Session):
    """An ABX test: is file A audibly different from file B?

    Per trial X is A or B, and the two files may be swapped between the "A" and "B" players;
    both are drawn up front from ``np.random.default_rng(seed)`` and saved in the JSON as
    ``plan`` entries ``{"trial", "x_is", "swapped"}``, where ``x_is`` names the player
    ("A"/"B") and ``swapped`` means the "A" player plays ``b_path``.

    Args:
        a_path, b_path: the two audio files (same sample rate), e.g. target and model output.
        out_json: results file; an existing one from the same test is resumed.
        trials: number of trials (>= 1).
        seed: randomisation seed.
        labels: names of ``a_path`` and ``b_path`` in the results.
        debug: render X's identity as ``data-x`` on the page (for automated tests only).
    """

    def __init__(
        self,
        a_path: PathLike,
        b_path: PathLike,
        out_json: PathLike,
        trials: int = 10,
        seed: int = 0,
        labels: tuple[str, str] = ("A", "B"),
        debug: bool = False,
    ) -> None:
        if trials < 1:
            raise FxcloneError(f"ABX trials={trials}; use at least 1 (10 or more is usual)")
        (a, b), sample_rate = _read_matching([a_path, b_path])
        rng = np.random.default_rng(seed)
        x_is_a = rng.integers(0, 2, size=trials) == 0
        swapped = rng.integers(0, 2, size=trials) == 1
        self.plan = [
            {"trial": i + 1, "x_is": "A" if x_is_a[i] else "B", "swapped": bool(swapped[i])}
            for i in range(trials)
        ]
        config = {
            "test": "abx",
            "a": str(a_path),
            "b": str(b_path),
            "labels": list(labels),
            "trials": trials,
            "seed": seed,
            "plan": self.plan,
        }
        super().__init__(out_json, config, debug)
        self._files = {"a": _wav_bytes(a, sample_rate), "b": _wav_bytes(b, sample_rate)}
        self.labels = labels

    @property
    def finished(self) -> bool:  # type: ignore[override]
        return len(self.results) >= len(self.plan)

    def file_of(self, trial: int, player: str) -> str:
        """Which file ("a" or "b") the ``player`` ("A", "B" or "X") plays in 1-based ``trial``."""
        step = self.plan[trial - 1]
        if player == "X":
            player = str(step["x_is"])
        return "ab"[(player == "B") != step["swapped"]]

    def audio_for(self, key: str) -> bytes | None:
        """WAV bytes for an audio key ``"<trial>/<A|B|X>"``, or ``None`` if there is none."""
        trial, _, player = key.partition("/")
        if not trial.isdigit() or not 1 <= int(trial) <= len(self.plan) or player not in "ABX":
            return None
        return self._files[self.file_of(int(trial), player)]

    def summary(self) -> dict | None:
        if not self.finished:
            return None
        correct = sum(r["correct"] for r in self.results)
        trials = len(self.results)
        return {"correct": correct, "trials": trials, "p_value": abx_p_value(correct, trials)}

    def submit(self, form: Mapping[str, str]) -> None:
        trial, answer = int(form["trial"]), form["answer"]
        if answer not in ("A", "B"):
            raise ValueError(f"answer must be A or B, not {answer!r}")
        if self.finished or trial != len(self.results) + 1:
            return  # a repeated post (reload, double click) of an answered trial
        step = self.plan[trial - 1]
        self.results.append(
            {
                "trial": trial,
                "x_is": step["x_is"],
                "x_file": self.labels[self.file_of(trial, "X") == "b"],
                "answer": answer,
                "correct": answer == step["x_is"],
                "time": _now(),
            }
        )
        self.save()

    def page(self) -> str:
        if self.finished:
            s = self.summary() or {}
            return _html(
                "ABX result",
                f"<h1>ABX result</h1><p id='score'>{s['correct']}/{s['trials']} correct</p>"
                f"<p id='p'>One-sided binomial p = {s['p_value']:.3g} (chance of scoring "
                f"at least this well by guessing)</p><p>Saved to {html.escape(str(self.out_json))}"
                "</p><p>You can close this tab.</p>",
            )
        trial = len(self.results) + 1
        x_attr = f" data-x='{self.plan[trial - 1]['x_is']}'" if self.debug else ""
        players = "".join(
            f"<div class='player'><b>{p}</b><audio controls preload='auto' "
            f"src='/audio/{trial}/{p}'></audio></div>"
            for p in "ABX"
        )
        return _html(
            f"ABX trial {trial}",
            f"<h1>ABX: trial {trial} of {len(self.plan)}</h1>"
            f"<p>Is X the same as A or as B?</p>{players}"
            f"<form method='post' action='/submit' id='answer'{x_attr}>"
            f"<input type='hidden' name='trial' value='{trial}'>"
            "<button name='answer' value='A' id='xa'>X is A</button>"
            "<button name='answer' value='B' id='xb'>X is B</button></form>",
        )


class MushraSession(_Session):
    """A MUSHRA test: rate each condition 0-100 against an open reference.

    Besides the given conditions every screen holds a hidden reference (the reference itself)
    and an anchor (the reference low-passed at 3.5 kHz, see :func:`lowpass_anchor`), shuffled
    per screen with ``np.random.default_rng(seed)`` and labelled 1..K.

    Args:
        reference_path: one file, cut into ``screens`` equal segments whose first
            ``excerpt_seconds`` are played; or a list of files, one per screen (``screens``
            is then the length of the list and each condition must be a list of the same
            length).
        conditions: ``{name: file or list of files}``, at least one, e.g. model outputs
            aligned with the reference.
        out_json: results file; an existing one from the same test is resumed.
        screens: number of screens when cutting one reference file.
        seed: shuffle seed.
        excerpt_seconds: longest excerpt per screen, in seconds.
        debug: render each slider's condition name as ``data-condition`` (automated tests).
    """

    def __init__(
        self,
        reference_path: PathLike | Sequence[PathLike],
        conditions: Mapping[str, PathLike | Sequence[PathLike]],
        out_json: PathLike,
        screens: int = 2,
        seed: int = 0,
        excerpt_seconds: float = 8.0,
        debug: bool = False,
    ) -> None:
        if len(conditions) < 1:
            raise FxcloneError(
                "MUSHRA needs at least 1 condition besides the reference, got 0; "
                "pass a model output to rate"
            )
        for name in (HIDDEN_REFERENCE, ANCHOR):
            if name in conditions:
                raise FxcloneError(f"condition name {name!r} is reserved; rename that condition")
        names = list(conditions)
        screen_clips, sample_rate = self._clips(
            reference_path, conditions, screens, excerpt_seconds
        )
        rng = np.random.default_rng(seed)
        all_names = [*names, HIDDEN_REFERENCE, ANCHOR]
        self.order = [[all_names[i] for i in rng.permutation(len(all_names))] for _ in screen_clips]
        config = {
            "test": "mushra",
            "reference": _as_strs(reference_path),
            "conditions": {k: _as_strs(v) for k, v in conditions.items()},
            "screens": len(screen_clips),
            "seed": seed,
            "excerpt_seconds": excerpt_seconds,
            "order": self.order,
        }
        super().__init__(out_json, config, debug)
        for s, (ref, clips) in enumerate(screen_clips):
            items = {**dict(zip(names, clips, strict=True)), HIDDEN_REFERENCE: ref}
            items[ANCHOR] = lowpass_anchor(ref, sample_rate)
            self.audio[f"{s + 1}/ref"] = _wav_bytes(_fade(ref, sample_rate), sample_rate)
            for label, name in enumerate(self.order[s], start=1):
                self.audio[f"{s + 1}/{label}"] = _wav_bytes(
                    _fade(items[name], sample_rate), sample_rate
                )

    @staticmethod
    def _clips(
        reference_path: PathLike | Sequence[PathLike],
        conditions: Mapping[str, PathLike | Sequence[PathLike]],
        screens: int,
        excerpt_seconds: float,
    ) -> tuple[list[tuple[np.ndarray, list[np.ndarray]]], int]:
        """Return ``[(reference, [condition clips...]) per screen]`` and the sample rate."""
        if not isinstance(reference_path, str | os.PathLike):
            refs = list(reference_path)
            cond_lists = []
            for name, value in conditions.items():
                files = [value] if isinstance(value, str | os.PathLike) else list(value)
                if len(files) != len(refs):
                    raise FxcloneError(
                        f"condition {name!r} has {len(files)} file(s) but there are "
                        f"{len(refs)} reference files; give one file per reference"
                    )
                cond_lists.append(files)
            out = []
            for i, ref in enumerate(refs):
                clips, sample_rate = _read_matching([ref, *(c[i] for c in cond_lists)])
                n = min(c.shape[-1] for c in clips)
                out.append((clips[0][:, :n], [c[:, :n] for c in clips[1:]]))
            return out, sample_rate
        if screens < 1:
            raise FxcloneError(f"MUSHRA screens={screens}; use at least 1")
        for name, value in conditions.items():
            if not isinstance(value, str | os.PathLike):
                raise FxcloneError(
                    f"condition {name!r} is a list but the reference is one file; "
                    "give one file per condition, or a list of reference files"
                )
        clips, sample_rate = _read_matching([reference_path, *conditions.values()])  # type: ignore[list-item]
        n = min(c.shape[-1] for c in clips)
        segment = n // screens
        if segment < 0.5 * sample_rate:
            raise FxcloneError(
                f"{reference_path} gives {n / sample_rate:.2f} s of audio, too short for "
                f"{screens} screens of at least 0.5 s; pass fewer screens or longer audio"
            )
        length = min(segment, int(excerpt_seconds * sample_rate))
        cuts = [c_[:, s * segment : s * segment + length] for s in range(screens) for c_ in clips]
        k = len(clips)
        return [(cuts[s * k], cuts[s * k + 1 : (s + 1) * k]) for s in range(screens)], sample_rate

    @property
    def finished(self) -> bool:  # type: ignore[override]
        return len(self.results) >= len(self.order)

    def audio_for(self, key: str) -> bytes | None:
        """WAV bytes for ``"<screen>/ref"`` or ``"<screen>/<label>"``, or ``None``."""
        return self.audio.get(key)

    def summary(self) -> dict | None:
        if not self.results:
            return None
        per_name: dict[str, list[float]] = {name: [] for name in self.order[0]}
        for r in self.results:
            for name, value in r["ratings"].items():
                per_name[name].append(value)
        return mushra_stats(per_name)

    def submit(self, form: Mapping[str, str]) -> None:
        screen = int(form["screen"])
        if self.finished or screen != len(self.results) + 1:
            return  # a repeated post of a rated screen
        ratings = {}
        for label, name in enumerate(self.order[screen - 1], start=1):
            value = float(form[f"r{label}"])
            if not 0.0 <= value <= 100.0:
                raise ValueError(f"rating {value} is outside 0..100")
            ratings[name] = value
        self.results.append({"screen": screen, "ratings": ratings, "time": _now()})
        self.save()

    def page(self) -> str:
        if self.finished:
            stats_by_name = sorted((self.summary() or {}).items(), key=lambda kv: -kv[1]["mean"])
            rows = "".join(
                f"<tr><td>{html.escape(name)}</td><td>{s['mean']:.1f}</td>"
                f"<td>{_ci_text(s['ci95'])}</td><td>{s['n']}</td></tr>"
                for name, s in stats_by_name
            )
            return _html(
                "MUSHRA result",
                "<h1>MUSHRA result</h1><table id='results'><tr><th>condition</th><th>mean</th>"
                f"<th>95 % CI</th><th>n</th></tr>{rows}</table>"
                f"<p>Saved to {html.escape(str(self.out_json))}</p><p>You can close this tab.</p>",
            )
        screen = len(self.results) + 1
        sliders = []
        for label, name in enumerate(self.order[screen - 1], start=1):
            attr = f" data-condition='{html.escape(name)}'" if self.debug else ""
            sliders.append(
                f"<div class='player'><b>{label}</b><audio controls preload='auto' "
                f"src='/audio/{screen}/{label}'></audio><input type='range' min='0' max='100' "
                f"value='50' name='r{label}' id='r{label}'{attr}><output>50</output></div>"
            )
        return _html(
            f"MUSHRA screen {screen}",
            f"<h1>MUSHRA: screen {screen} of {len(self.order)}</h1>"
            "<p>Rate each sound against the reference: 100 = indistinguishable, 0 = bad.</p>"
            f"<div class='player'><b>Reference</b><audio controls preload='auto' "
            f"src='/audio/{screen}/ref'></audio></div>"
            f"<form method='post' action='/submit' id='rate'>"
            f"<input type='hidden' name='screen' value='{screen}'>{''.join(sliders)}"
            "<button id='next'>Next</button></form>",
        )


def _ci_text(half_width: float | None) -> str:
    return "-" if half_width is None else f"± {half_width:.1f}"


def _as_strs(value: PathLike | Sequence[PathLike]) -> str | list[str]:
    if isinstance(value, str | os.PathLike):
        return str(value)
    return [str(v) for v in value]


_SCRIPT = """
document.querySelectorAll('audio').forEach(a => a.addEventListener('play', () =>
  document.querySelectorAll('audio').forEach(o => { if (o !== a) o.pause(); })));
document.querySelectorAll('input[type=range]').forEach(el => el.addEventListener('input',
  () => { el.nextElementSibling.textContent = el.value; }));
"""


def _html(title: str, body: str) -> str:
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>"
        "body{font-family:sans-serif;max-width:46em;margin:2em auto;padding:0 1em}"
        ".player{display:flex;align-items:center;gap:1em;margin:.6em 0}"
        ".player b{width:5.5em}button{font-size:1.1em;margin:1em 1em 0 0;padding:.4em 1em}"
        "input[type=range]{width:14em}td,th{padding:.2em .8em;text-align:left}"
        f"</style></head><body>{body}<script>{_SCRIPT}</script></body></html>"
    )


# ----------------------------------------------------------------------------- server


def _handler(session: AbxSession | MushraSession) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass  # the console belongs to the CLI's own messages

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:  # noqa: N802
            if self.path == "/":
                with session.lock:
                    page, finished = session.page(), session.finished
                self._send(200, page.encode(), "text/html; charset=utf-8")
                if finished:
                    session.end_page_served.set()
            elif self.path.startswith("/audio/"):
                data = session.audio_for(self.path[len("/audio/") :])
                if data is None:
                    self._send(404, b"no such audio", "text/plain")
                else:
                    self._send(200, data, "audio/wav")
            else:
                self._send(404, b"not found", "text/plain")

        def do_POST(self) -> None:  # noqa: N802
            length = int(self.headers.get("Content-Length", 0))
            if self.path != "/submit" or not 0 <= length <= _MAX_POST_BYTES:
                self._send(400, b"bad request", "text/plain")
                return
            raw = parse_qs(self.rfile.read(length).decode("utf-8", "replace"))
            form = {k: v[-1] for k, v in raw.items()}
            try:
                with session.lock:
                    session.submit(form)
            except (KeyError, ValueError) as exc:
                self._send(400, f"bad form: {exc}".encode(), "text/plain")
                return
            self.send_response(303)
            self.send_header("Location", "/")
            self.send_header("Content-Length", "0")
            self.end_headers()

    return Handler


def start_server(
    session: AbxSession | MushraSession, port: int = 0
) -> tuple[ThreadingHTTPServer, str]:
    """Serve ``session`` on 127.0.0.1 in a daemon thread; return ``(server, url)``.

    ``port=0`` picks a free port. Stop with ``server.shutdown(); server.server_close()``.
    """
    try:
        server = ThreadingHTTPServer(("127.0.0.1", port), _handler(session))
    except OSError as exc:
        raise FxcloneError(
            f"cannot listen on 127.0.0.1:{port} ({exc.strerror}); pass another port or 0"
        ) from None
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True, name="listening-test").start()
    session.server_url = f"http://127.0.0.1:{server.server_address[1]}/"
    return server, session.server_url


def serve(
    session: AbxSession | MushraSession, port: int = 0, open_browser: bool = True
) -> dict | None:
    """Run a listening test until its end page is shown or Ctrl-C; return the summary."""
    server, url = start_server(session, port)
    print(f"Listening test at {url} (results go to {session.out_json}; Ctrl-C stops it)")
    try:
        if open_browser:
            webbrowser.open(url)
        while not session.end_page_served.wait(0.5):
            pass
    except KeyboardInterrupt:
        print(f"Stopped; answers so far are in {session.out_json}, run again to resume")
    finally:
        server.shutdown()
        server.server_close()
    return session.summary()
