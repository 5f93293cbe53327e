"""The HTML report is self-contained, marks the best scores and plays in a real browser."""

from __future__ import annotations

import datetime as dt
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
import scipy.signal
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from browser import browser_fixture, wait_for_media  # noqa: F401  (the ``browser`` fixture)
from fxclone.errors import FxcloneError
from fxclone.report.html import ReportModel, write_report

SR = 16000
SECONDS = 4.0
EXCERPT_S = 1.5


class _Tags(HTMLParser):
    """Collects (tag, attributes) of every start tag and the text inside <b> elements."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.bold: list[str] = []
        self._in_bold = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in_bold = self._in_bold or tag == "b"

    def handle_endtag(self, tag: str) -> None:
        if tag == "b":
            self._in_bold = False

    def handle_data(self, data: str) -> None:
        if self._in_bold:
            self.bold.append(data)

    def count(self, tag: str) -> int:
        return sum(1 for t, _ in self.tags if t == tag)


def _png(path: Path, freq_hz: float) -> Path:
    fig = Figure(figsize=(8, 3), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    t = np.linspace(0, 1, 500)
    ax.plot(t, np.sin(2 * np.pi * freq_hz * t))
    ax.set_title(f"{freq_hz} Hz")
    fig.savefig(path, format="png")
    return path


def _models() -> tuple[np.ndarray, np.ndarray, list[ReportModel]]:
    rng = np.random.default_rng(0)
    n = int(SECONDS * SR)
    # A quiet start and a loud burst, so the excerpt has a clear loudest region.
    envelope = np.where(np.arange(n) > n // 2, 0.8, 0.05)
    dry = (envelope * rng.standard_normal(n) * 0.3).astype(np.float32)[None]
    target = np.tanh(3 * dry).astype(np.float32)
    sos = scipy.signal.butter(4, 2000, fs=SR, output="sos")
    low_passed = scipy.signal.sosfilt(sos, target).astype(np.float32)
    card = {"family": "wavenet", "parameters": 12345, "sample_rate": SR, "latency_samples": 0}
    models = [
        ReportModel(
            "quiet <copy>",
            0.9 * target,
            {"mae": 0.0123, "esr": 0.01, "esr_pre_emph": 0.02, "mrstft": 0.5},
            card,
        ),
        ReportModel(
            "low-passed",
            low_passed,
            {"esr": 0.2, "esr_pre_emph": 0.01234567, "mae": 0.05, "mrstft": 0.25, "extra": 3.0},
            {**card, "family": "lstm", "realtime_factor": 41.237},
        ),
    ]
    return dry, target, models


def _report(tmp_path: Path) -> Path:
    dry, target, models = _models()
    images = {
        "log-mel spectrograms": _png(tmp_path / "a.png", 3.0),
        "waveform close-up": _png(tmp_path / "b.png", 5.0).read_bytes(),
    }
    return write_report(
        tmp_path / "out" / "report.html",
        title="drive <test> & co",
        sample_rate=SR,
        dry=dry,
        target=target,
        models=models,
        images=images,
        baselines={"esr_linear": 0.6, "esr_static": 0.005},
        notes=["trained for 3 epochs", "a <note>"],
        excerpt_seconds=EXCERPT_S,
        created=dt.datetime(2024, 1, 2, 3, 4),
    )


def test_report_is_self_contained(tmp_path: Path) -> None:
    path = _report(tmp_path)
    text = path.read_text(encoding="utf-8")
    assert not re.search(r"(?:src|href)\s*=\s*[\"']?(?:https?:)?//", text)
    assert "http://" not in text.replace('xmlns="http://', "")
    assert "https://" not in text
    assert "<script" not in text
    parser = _Tags()
    parser.feed(text)
    assert parser.count("audio") == 4  # dry, target, two models
    assert parser.count("img") == 2
    for tag, attrs in parser.tags:
        if tag == "audio":
            assert (attrs["src"] or "").startswith("data:audio/wav;base64,")
        if tag == "img":
            assert (attrs["src"] or "").startswith("data:image/png;base64,")
    # Lowest per column, baselines included: esr is the static baseline's 0.005.
    assert sorted(parser.bold) == sorted(["0.005", "0.01235", "0.0123", "0.25", "3"])
    # Strings are escaped, not markup.
    assert "drive &lt;test&gt; &amp; co" in text and "quiet &lt;copy&gt;" in text
    assert "<note>" not in text and "a &lt;note&gt;" in text
    assert "ESR (pre-emphasis)" in text and "12,345" in text and "41.24" in text
    # Column order: the usual metrics first, then the rest.
    header = [m for m in re.findall(r"<th>([^<]*)</th>", text)]
    assert header == ["model", "ESR", "ESR (pre-emphasis)", "MAE", "MR-STFT", "extra"]
    assert not list(path.parent.glob(".*.part"))


def test_report_plays_in_chromium(tmp_path: Path, browser) -> None:
    path = _report(tmp_path)
    browser.get(path.resolve().as_uri())
    wait_for_media(browser, timeout_s=15.0)
    durations = browser.execute_script(
        "return Array.from(document.querySelectorAll('audio')).map(a => a.duration);"
    )
    assert len(durations) == 4
    assert durations == pytest.approx([EXCERPT_S] * 4, abs=0.1)
    widths = browser.execute_script("return Array.from(document.images).map(i => i.naturalWidth);")
    assert widths == [800, 800]
    shot = tmp_path / "report.png"
    assert browser.save_screenshot(str(shot))
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert shot.stat().st_size > 10_000


def test_mismatched_lengths_leave_no_file(tmp_path: Path) -> None:
    dry, target, models = _models()
    short = ReportModel("short", target[:, :-10], {"esr": 0.1}, {})
    path = tmp_path / "report.html"
    with pytest.raises(FxcloneError, match=r"short has \d+ samples but target has \d+"):
        write_report(path, title="t", sample_rate=SR, dry=dry, target=target, models=[short])
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"images": {"missing": "nope.png"}}, r"cannot read image nope\.png"),
        ({"images": {"fake": b"GIF89a..."}}, r"image 'fake' is not a PNG"),
        ({"sample_rate": 44100}, r"runs at 16000 Hz but the test audio is 44100 Hz"),
    ],
)
def test_bad_input_leaves_no_file(tmp_path: Path, kwargs: dict, message: str) -> None:
    dry, target, models = _models()
    args = {"title": "t", "sample_rate": SR, "dry": dry, "target": target, "models": models}
    with pytest.raises(FxcloneError, match=message):
        write_report(tmp_path / "report.html", **{**args, **kwargs})
    assert not list(tmp_path.iterdir())
