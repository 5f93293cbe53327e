"""Headless Chromium for tests that check pages in a real browser.

Uses the system's ``/usr/bin/chromium`` and ``/usr/bin/chromedriver`` only: with both paths
given, Selenium never runs Selenium Manager, so nothing is downloaded. If either is missing the
test is skipped with the reason.

In a test module::

    from browser import browser_fixture  # noqa: F401  (registers the ``browser`` fixture)

    def test_page(browser, tmp_path):
        browser.get(page.as_uri())
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from selenium.webdriver import Chrome

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
ARGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # Lets tests call play() on <audio> without a click.
    "--autoplay-policy=no-user-gesture-required",
)
# A page is ready when every image has decoded and every audio element knows its duration.
MEDIA_READY_JS = """
const imgs = Array.from(document.images);
const audios = Array.from(document.querySelectorAll('audio'));
return imgs.every(i => i.complete && i.naturalWidth > 0)
    && audios.every(a => a.readyState >= 1 && isFinite(a.duration));
"""


@contextlib.contextmanager
def chrome(profile_dir: Path, width: int = 1200, height: int = 2400) -> Iterator[Chrome]:
    """Start headless Chromium with a fresh profile in ``profile_dir``; quit it afterwards.

    Args:
        profile_dir: an empty folder for the browser profile (e.g. a subfolder of tmp_path).
        width, height: window size in CSS pixels, which is what screenshots capture.

    Yields:
        a ``selenium.webdriver.Chrome``. Skips the calling test if Selenium, Chromium or
        chromedriver is not installed.
    """
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
    for path in (CHROMIUM, CHROMEDRIVER):
        if not path.is_file():
            pytest.skip(f"{path} not found; install Debian's chromium and chromium-driver")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ARGS:
        options.add_argument(arg)
    profile_dir.mkdir(parents=True, exist_ok=True)
    options.add_argument(f"--user-data-dir={profile_dir}")
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        driver.set_window_size(width, height)
        yield driver
    finally:
        driver.quit()


@pytest.fixture(name="browser")
def browser_fixture(tmp_path: Path) -> Iterator[Chrome]:
    """A headless Chromium driver (1200x2400 window) with a fresh profile; quit after the test."""
    with chrome(tmp_path / "chromium-profile") as driver:
        yield driver


def wait_for_media(driver: Chrome, timeout_s: float = 15.0) -> None:
    """Wait until every ``<img>`` has decoded and every ``<audio>`` knows its duration.

    Raises selenium's ``TimeoutException`` after ``timeout_s`` seconds.
    """
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, timeout_s, poll_frequency=0.1).until(
        lambda d: d.execute_script(MEDIA_READY_JS)
    )


def save_screenshot(html_path: Path, png_path: Path, width: int = 1200, height: int = 2400) -> Path:
    """Open ``html_path`` in headless Chromium and save the window as ``png_path``.

    Args:
        html_path: a local HTML file.
        png_path: the PNG to write (``width`` x ``height`` CSS pixels of the page top).
    """
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        with chrome(Path(profile), width, height) as driver:
            driver.get(Path(html_path).resolve().as_uri())
            wait_for_media(driver)
            if not driver.save_screenshot(str(png_path)):
                raise RuntimeError(f"chromium could not write the screenshot {png_path}")
    return Path(png_path)
