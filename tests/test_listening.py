"""Listening tests: statistics, seeded plans, the HTTP protocol, and a real browser run."""

from __future__ import annotations

import io
import json
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from browser import browser_fixture, wait_for_media  # noqa: F401  (registers ``browser``)
from fxclone.errors import FxcloneError
from fxclone.report.listening import (
    ANCHOR,
    HIDDEN_REFERENCE,
    AbxSession,
    MushraSession,
    abx_p_value,
    lowpass_anchor,
    mushra_stats,
    serve,
    start_server,
)

SR = 16000


def _tone(path: Path, freq_hz: float, seconds: float, sample_rate: int = SR) -> Path:
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    subtype = "PCM_24" if path.suffix == ".flac" else "FLOAT"
    sf.write(path, 0.3 * np.sin(2 * np.pi * freq_hz * t), sample_rate, subtype=subtype)
    return path


@pytest.fixture
def ab(tmp_path: Path) -> tuple[Path, Path]:
    return _tone(tmp_path / "target.wav", 440, 0.3), _tone(tmp_path / "model.flac", 450, 0.3)


@pytest.fixture
def mushra_files(tmp_path: Path) -> tuple[Path, dict[str, Path]]:
    ref = _tone(tmp_path / "ref.wav", 440, 1.2)
    conds = {
        "lstm": _tone(tmp_path / "lstm.wav", 445, 1.2),
        "wavenet": _tone(tmp_path / "w.wav", 441, 1.3),
    }
    return ref, conds


def _served(session) -> Iterator[str]:
    server, url = start_server(session)
    try:
        yield url
    finally:
        server.shutdown()
        server.server_close()


def test_abx_p_values() -> None:
    assert abx_p_value(8, 10) == pytest.approx(0.0546875, abs=1e-6)
    assert abx_p_value(10, 10) == pytest.approx(0.0009765625, abs=1e-6)
    assert abx_p_value(0, 10) == pytest.approx(1.0)
    with pytest.raises(FxcloneError, match="11/10"):
        abx_p_value(11, 10)


def test_mushra_stats_t_interval() -> None:
    out = mushra_stats({"model": [70, 80, 90, 75, 85], "single": [40]})
    m = out["model"]
    assert m["mean"] == pytest.approx(80.0)
    assert m["n"] == 5
    # t(0.975, 4) = 2.7764, s = 7.9057, sqrt(5) = 2.2361
    assert m["ci95"] == pytest.approx(9.8163, abs=1e-2)
    assert m["ci_low"] == pytest.approx(80 - m["ci95"]) and m["ci_high"] == pytest.approx(
        80 + m["ci95"]
    )
    assert out["single"]["ci95"] is None


def test_anchor_is_lowpassed_at_3k5() -> None:
    noise = np.random.default_rng(0).standard_normal((1, SR)).astype(np.float32)
    spectrum = np.abs(np.fft.rfft(lowpass_anchor(noise, SR)[0])) ** 2
    freqs = np.fft.rfftfreq(SR, 1 / SR)
    ratio_db = 10 * np.log10(spectrum[freqs > 5000].mean() / spectrum[freqs < 3000].mean())
    assert ratio_db < -40


def test_serve_returns_after_end_page(ab, tmp_path: Path) -> None:
    a, b = ab
    session = AbxSession(a, b, tmp_path / "abx.json", trials=1)
    session.submit({"trial": "1", "answer": session.plan[0]["x_is"]})
    result: dict = {}
    thread = threading.Thread(
        target=lambda: result.update(serve(session, open_browser=False)), daemon=True
    )
    thread.start()
    try:
        for _ in range(100):  # the URL is only known once serve() has bound its port
            if session.server_url:
                break
            time.sleep(0.05)
        with urllib.request.urlopen(session.server_url, timeout=5) as r:
            assert "1/1 correct" in r.read().decode()
    finally:
        session.end_page_served.set()  # stops serve() even if the request above failed
        thread.join(timeout=10)
    assert not thread.is_alive()
    assert result == {"correct": 1, "trials": 1, "p_value": 0.5}


def test_abx_plan_is_seeded(ab, tmp_path: Path) -> None:
    a, b = ab
    plans = [
        AbxSession(a, b, tmp_path / f"{i}.json", trials=20, seed=s).plan
        for i, s in enumerate([1, 1, 2])
    ]
    assert plans[0] == plans[1]
    assert plans[0] != plans[2]
    assert {p["x_is"] for p in plans[0]} == {"A", "B"}
    assert {p["swapped"] for p in plans[0]} == {True, False}


def test_mushra_order_is_seeded(mushra_files, tmp_path: Path) -> None:
    ref, conds = mushra_files
    orders = [
        MushraSession(ref, conds, tmp_path / f"{i}.json", seed=s).order
        for i, s in enumerate([3, 3, 4])
    ]
    assert orders[0] == orders[1] != orders[2]
    assert sorted(orders[0][0]) == sorted(["lstm", "wavenet", HIDDEN_REFERENCE, ANCHOR])


def test_bad_input_is_one_line_error(ab, tmp_path: Path) -> None:
    a, b = ab
    out = tmp_path / "r.json"
    with pytest.raises(FxcloneError, match="no such file"):
        AbxSession(a, tmp_path / "missing.wav", out)
    with pytest.raises(FxcloneError, match="trials=0"):
        AbxSession(a, b, out, trials=0)
    other = _tone(tmp_path / "other.wav", 440, 0.3, sample_rate=22050)
    with pytest.raises(FxcloneError, match="22050 Hz but .* 16000 Hz"):
        AbxSession(a, other, out)
    with pytest.raises(FxcloneError, match="at least 1 condition"):
        MushraSession(a, {}, out)


def test_abx_http_saves_after_every_answer_and_resumes(ab, tmp_path: Path) -> None:
    a, b = ab
    out = tmp_path / "abx.json"
    session = AbxSession(a, b, out, trials=3, seed=5, labels=("target", "model"))
    for url in _served(session):
        with urllib.request.urlopen(url + "audio/1/X", timeout=5) as r:
            wav = r.read()
        expected = session.file_of(1, "X")
        assert sf.info(io.BytesIO(wav)).subtype == "PCM_16"
        assert len(wav) == len(session._files[expected])
        for trial in (1, 2):
            x = session.plan[trial - 1]["x_is"]
            body = urllib.parse.urlencode({"trial": trial, "answer": x}).encode()
            with urllib.request.urlopen(url + "submit", data=body, timeout=5) as r:
                assert r.status == 200  # followed the 303 to the next page
            saved = json.loads(out.read_text())
            assert len(saved["results"]) == trial
            assert saved["results"][-1]["correct"] is True
            assert saved["summary"] is None
    resumed = AbxSession(a, b, out, trials=3, seed=5, labels=("target", "model"))
    assert len(resumed.results) == 2
    with pytest.raises(FxcloneError, match="different listening test"):
        AbxSession(a, b, out, trials=3, seed=6)


def _click_and_wait(browser, button_id: str) -> None:
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    # Every page has its own heading (trial N, screen N, result). Waiting for it to change is
    # robust where staleness checks are not: Chromium may report a node of the old page as
    # "not belonging to the document" instead of stale while the new page loads.
    before = browser.find_element(By.TAG_NAME, "h1").text
    browser.find_element(By.ID, button_id).click()
    WebDriverWait(browser, 10, ignored_exceptions=(WebDriverException,)).until(
        lambda d: d.find_element(By.TAG_NAME, "h1").text != before
    )


def test_abx_in_browser(browser, ab, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    a, b = ab
    out = tmp_path / "abx.json"
    session = AbxSession(a, b, out, trials=10, seed=0, debug=True)
    wrong_on = {3, 7}
    for url in _served(session):
        browser.get(url)
        for trial in range(1, 11):
            assert f"trial {trial} of 10" in browser.find_element(By.TAG_NAME, "h1").text
            if trial == 1:
                wait_for_media(browser)
                browser.save_screenshot(str(tmp_path / "abx_trial.png"))
            x = browser.find_element(By.ID, "answer").get_attribute("data-x")
            answer = ({"A", "B"} - {x}).pop() if trial in wrong_on else x
            _click_and_wait(browser, "xa" if answer == "A" else "xb")
        text = browser.find_element(By.TAG_NAME, "body").text
    assert "8/10" in text and "p = 0.0547" in text
    saved = json.loads(out.read_text())
    assert len(saved["results"]) == 10
    assert [r["trial"] for r in saved["results"] if not r["correct"]] == sorted(wrong_on)
    assert saved["summary"]["correct"] == 8
    assert saved["summary"]["p_value"] == pytest.approx(0.0547, abs=1e-4)
    assert (tmp_path / "abx_trial.png").stat().st_size > 1000


def test_mushra_in_browser(browser, mushra_files, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    ref, conds = mushra_files
    out = tmp_path / "mushra.json"
    session = MushraSession(ref, conds, out, screens=2, seed=1, excerpt_seconds=0.5, debug=True)
    chosen = {
        "lstm": [60, 70],
        "wavenet": [80, 90],
        HIDDEN_REFERENCE: [100, 96],
        ANCHOR: [20, 10],
    }
    for url in _served(session):
        browser.get(url)
        for screen in (1, 2):
            assert f"screen {screen} of 2" in browser.find_element(By.TAG_NAME, "h1").text
            wait_for_media(browser)
            durations = browser.execute_script(
                "return Array.from(document.querySelectorAll('audio'), a => a.duration)"
            )
            assert durations == pytest.approx([0.5] * 5, abs=1e-3)  # reference + 4 conditions
            for el in browser.find_elements(By.CSS_SELECTOR, "input[type=range]"):
                value = chosen[el.get_attribute("data-condition")][screen - 1]
                browser.execute_script(
                    "arguments[0].value = arguments[1];"
                    "arguments[0].dispatchEvent(new Event('input'));",
                    el,
                    value,
                )
                shown = el.find_element(By.XPATH, "following-sibling::output").text
                assert shown == str(value)
            if screen == 1:
                browser.save_screenshot(str(tmp_path / "mushra_screen.png"))
            _click_and_wait(browser, "next")
        text = browser.find_element(By.ID, "results").text
    assert "hidden_reference" in text and "anchor" in text
    saved = json.loads(out.read_text())
    assert [r["screen"] for r in saved["results"]] == [1, 2]
    for screen in (1, 2):
        got = saved["results"][screen - 1]["ratings"]
        assert got == {name: v[screen - 1] for name, v in chosen.items()}
    for name, values in chosen.items():
        assert saved["summary"][name]["mean"] == pytest.approx(np.mean(values))
        assert saved["summary"][name]["n"] == 2
