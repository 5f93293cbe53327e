"""Bench measurements of effects with known answers: identity, Butterworth, tanh, compressor."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest
from scipy import ndimage, signal

from fxclone.effects import get_effect
from fxclone.errors import FxcloneError
from fxclone.report.measure import Measurements, measure_effect
from fxclone.report.plots import plot_measurements

SR = 48000


def identity(x: np.ndarray) -> np.ndarray:
    return x.copy()


def butterworth_1k(x: np.ndarray) -> np.ndarray:
    sos = signal.butter(2, 1000.0, "lowpass", fs=SR, output="sos")
    return signal.sosfilt(sos, x, axis=-1).astype(np.float32)


def tanh4(x: np.ndarray) -> np.ndarray:
    return np.tanh(4.0 * x)


ATTACK_MS, RELEASE_MS = 10.0, 80.0


def smoothed_compressor(x: np.ndarray) -> np.ndarray:
    """4:1 above -20 dBFS; the gain (in dB) follows a one-pole with the time constants above.

    The detector is the peak over the last period of the 1 kHz test tone, so it is steady
    for a steady tone and the smoother alone sets the timing.
    """
    x = x.astype(np.float64)
    peak = ndimage.maximum_filter1d(
        np.abs(x), size=SR // 1000, axis=-1, origin=(SR // 1000 - 1) // 2
    )
    level_db = 20 * np.log10(np.maximum(peak, 1e-10))
    target_db = -0.75 * np.maximum(level_db + 20.0, 0.0)
    a_att, a_rel = (math.exp(-1000.0 / (ms * SR)) for ms in (ATTACK_MS, RELEASE_MS))
    gain_db = np.empty_like(target_db)
    g = 0.0
    for i, t in enumerate(target_db[0]):
        a = a_att if t < g else a_rel
        g = a * g + (1 - a) * t
        gain_db[0, i] = g
    return (x * 10 ** (gain_db / 20)).astype(np.float32)


@pytest.fixture(scope="module")
def measured() -> dict[str, Measurements]:
    cases = {"target": identity, "lowpass": butterworth_1k, "tanh": tanh4}
    return {name: measure_effect(fn, SR) for name, fn in cases.items()}


def _response_at(m: Measurements, freq_hz: float) -> float:
    return float(np.interp(freq_hz, m.freqs_hz, m.response_db))


def test_identity_is_flat_clean_and_linear(measured: dict[str, Measurements]) -> None:
    m = measured["target"]
    band = (m.freqs_hz >= 50) & (m.freqs_hz <= 15000)
    assert np.max(np.abs(m.response_db[band])) < 0.1
    assert np.all(m.thd < 1e-4)
    assert m.levels_dbfs.tolist() == pytest.approx(np.linspace(-40, 0, 9).tolist())
    assert m.harmonics_db.shape == (9, 5)
    assert np.all(m.harmonics_db < -100)
    assert np.max(np.abs(m.transfer_out - m.transfer_in)) < 1e-3
    assert m.transfer_in.size == SR // 50
    assert np.max(np.abs(m.step_response - 0.5)) < 1e-6
    assert m.impulse_response[0] == pytest.approx(1.0, abs=1e-6)
    assert np.max(np.abs(m.impulse_response[1:])) < 1e-9
    assert m.step_t_ms[-1] < 50.0 <= m.step_t_ms[-1] + 1000 / SR
    assert math.isnan(m.attack_ms) and math.isnan(m.release_ms)
    assert m.aliasing_db < -100


def test_butterworth_lowpass_response(measured: dict[str, Measurements]) -> None:
    m = measured["lowpass"]
    assert _response_at(m, 1000) == pytest.approx(-3.0, abs=0.3)
    # |H| of a 2nd-order Butterworth an octave up is 1/sqrt(1 + 2**4): -12.3 dB.
    assert _response_at(m, 2000) == pytest.approx(-12.3, abs=1.0)
    assert abs(_response_at(m, 100)) < 0.1
    assert np.all(m.thd < 1e-4)
    # Its impulse response is the filter's own.
    sos = signal.butter(2, 1000.0, "lowpass", fs=SR, output="sos")
    expected = signal.sosfilt(sos, np.eye(1, m.impulse_response.size)[0])
    assert np.max(np.abs(m.impulse_response - expected)) < 1e-5


def test_tanh_distorts_more_with_level(measured: dict[str, Measurements]) -> None:
    m = measured["tanh"]
    assert np.all(np.diff(m.thd) > 0)
    assert m.thd[0] < 1e-3 and m.thd[-1] > 0.2
    # An odd function makes odd harmonics only: 3rd and 5th loud, 2nd, 4th and 6th absent.
    h2, h3, h4, h5, h6 = m.harmonics_db[-1]
    assert h3 > -20 and h5 > -30
    assert max(h2, h4, h6) < -100
    assert np.max(np.abs(m.transfer_out - np.tanh(4 * m.transfer_in))) < 1e-2
    assert m.aliasing_db > -60  # the 3.1 kHz tone's harmonics reach far past Nyquist


def test_compressor_attack_and_release() -> None:
    m = measure_effect(smoothed_compressor, SR)
    assert m.attack_ms == pytest.approx(ATTACK_MS, rel=0.2)
    assert m.release_ms == pytest.approx(RELEASE_MS, rel=0.2)


def test_builtin_compressor_attack_and_release() -> None:
    knobs = {"threshold": -30.0, "ratio": 8.0, "knee": 0.0, "attack": 10.0, "release": 100.0}
    comp = get_effect("compressor")
    m = measure_effect(lambda x: comp.render(x, SR, knobs), SR)
    # Its peak detector pulls the gain down only near the tone's crests, so on a tone the
    # attack is slower than the knob (13 ms for 10 ms); the release is the knob's.
    assert 10.0 <= m.attack_ms <= 15.0
    assert m.release_ms == pytest.approx(100.0, rel=0.2)


def test_builtin_lowpass_matches_scipy(measured: dict[str, Measurements]) -> None:
    lowpass = get_effect("lowpass")
    m = measure_effect(lambda x: lowpass.render(x, SR, {"cutoff": 1000.0, "order": 2}), SR)
    assert np.max(np.abs(m.response_db - measured["lowpass"].response_db)) < 1e-3


def test_plot_writes_a_png(measured: dict[str, Measurements], tmp_path: Path) -> None:
    path = plot_measurements(tmp_path / "sub" / "measure.png", measured, title="three effects")
    assert path == tmp_path / "sub" / "measure.png"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = matplotlib.image.imread(path)
    assert image.shape[0] > 400 and image.shape[1] > 800
    # Not a blank canvas: some pixels are dark (the black target line and the text).
    assert float(image[..., :3].min()) < 0.2
    assert not list(tmp_path.glob("sub/.*"))  # no leftover temporary file


def test_bad_processors_and_rates_are_refused() -> None:
    with pytest.raises(FxcloneError, match="samples"):
        measure_effect(lambda x: x[:, :-1], SR)
    with pytest.raises(FxcloneError, match="NaN"):
        measure_effect(lambda x: x * np.nan, SR)
    with pytest.raises(FxcloneError, match="8000"):
        measure_effect(identity, 4000)
    with pytest.raises(FxcloneError, match="at least one"):
        plot_measurements("unused.png", {})
