"""The reamping capture signal: determinism, length, levels, layout, clicks, recognition."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from fxclone import capture
from fxclone.capture import CLICK_OFFSETS_S, SPLITS, capture_signal, recognise, write_capture

SR = 48000
CEILING = 10 ** (-1 / 20)  # -1 dBFS


@pytest.fixture(scope="module")
def cap() -> capture.Capture:
    return capture_signal(SR)


def test_deterministic_and_cached() -> None:
    fresh = capture._build.__wrapped__(16000)  # built again, bypassing the cache
    cached = capture_signal(16000)
    assert np.array_equal(fresh.audio, cached.audio)
    assert fresh.regions == cached.regions and fresh.clicks == cached.clicks
    assert capture_signal(16000) is cached
    assert not cached.audio.flags.writeable


@pytest.mark.parametrize("rate", [16000, 44100, 48000, 96000])
def test_length_and_layout_at_any_rate(rate: int) -> None:
    regions = capture._layout(rate)
    minutes = regions[-1].end / rate / 60
    print(f"{rate} Hz: {minutes:.3f} min, {len(regions)} regions")
    assert 3.0 <= minutes <= 3.5
    assert regions[0].start == 0
    assert all(a.end == b.start for a, b in zip(regions, regions[1:], strict=False))
    assert all(r.end > r.start for r in regions)
    assert {r.split for r in regions} == set(SPLITS)
    assert len({r.name for r in regions}) == len(regions)


def test_audio_levels_and_content(cap: capture.Capture) -> None:
    audio = cap.audio
    assert audio.dtype == np.float32 and audio.shape == (1, cap.regions[-1].end)
    peak_db = 20 * np.log10(float(np.max(np.abs(audio))))
    print(f"peak {peak_db:.4f} dBFS, length {cap.samples / SR:.2f} s")
    assert float(np.max(np.abs(audio))) <= CEILING + 1e-7
    for r in cap.regions:
        part = audio[0, r.start : r.end]
        if r.kind in ("silence", "gap"):
            assert not np.any(part), r.name
        else:
            assert float(np.sqrt(np.mean(part**2))) > 1e-4, r.name
    # The level steps visit -40 .. -1 dBFS.
    steps = cap.region("steps_tone")
    step = round(capture.STEP_SECONDS * SR)
    peaks = [
        20 * np.log10(np.max(np.abs(audio[0, s + step // 4 : s + 3 * step // 4])))
        for s in range(steps.start, steps.end - step + 1, step)
    ]
    print("step peaks (dBFS):", [round(float(p), 1) for p in peaks])
    assert max(peaks) == pytest.approx(-1.0, abs=0.3)
    assert min(peaks) == pytest.approx(-40.0, abs=0.3)


def test_repeat_is_sample_exact(cap: capture.Capture) -> None:
    rep = cap.repeat
    a = cap.audio[0, rep.start_a : rep.start_a + rep.length]
    b = cap.audio[0, rep.start_b : rep.start_b + rep.length]
    assert rep.length == 5 * SR and rep.start_b > rep.start_a + rep.length
    assert np.array_equal(a, b)
    assert float(np.max(np.abs(a))) == pytest.approx(10 ** (-6 / 20), rel=1e-6)
    # Silence before the second rendition lets tails of the first decay.
    assert not np.any(cap.audio[0, rep.start_a + rep.length : rep.start_b])


def test_clicks_at_stated_positions(cap: capture.Capture) -> None:
    audio = np.abs(cap.audio[0])
    expected = []
    for name in ("clicks_start", "clicks_end"):
        start = cap.region(name).start
        expected += [start + round(t * SR) for t in CLICK_OFFSETS_S]
    assert list(cap.clicks) == expected
    for position in cap.clicks:
        near = audio[position - SR // 10 : position + SR // 10]
        assert int(np.argmax(near)) == SR // 10, f"click at {position}"
        assert float(near.max()) == pytest.approx(CEILING, rel=1e-6)
    spacings = np.diff(cap.clicks[:3])
    assert len(set(spacings.tolist())) == 2  # distinct gaps: no ambiguous alignment


def test_recognise(tmp_path, cap: capture.Capture) -> None:
    assert recognise(cap.audio, SR) is cap
    assert recognise(cap.audio[0].astype(np.float64), SR) is cap
    for subtype in ("PCM_24", "PCM_16"):
        path = tmp_path / f"capture_{subtype}.wav"
        sf.write(path, cap.audio[0], SR, subtype=subtype)
        data, rate = sf.read(path, dtype="float32")
        error = float(np.max(np.abs(data - cap.audio[0])))
        print(f"{subtype}: max re-encoding error {error:.2e}")
        assert recognise(data, rate) is cap
    other = np.random.default_rng(0).standard_normal(cap.samples).astype(np.float32) * 0.1
    assert recognise(other, SR) is None
    assert recognise(cap.audio[:, :-1], SR) is None  # another length
    assert recognise(cap.audio, 44100) is None  # another rate
    louder = cap.audio * np.float32(1.01)  # the same layout, but not the same samples
    assert recognise(louder, SR) is None


def test_write_capture(tmp_path) -> None:
    path = write_capture(tmp_path / "capture.wav", sample_rate=16000)
    data, rate = sf.read(path, dtype="float32", always_2d=True)
    reference = capture_signal(16000)
    assert rate == 16000 and np.array_equal(data.T, reference.audio)
    layout = json.loads((tmp_path / "capture.json").read_text())
    assert layout["version"] == 1 and layout["samples"] == reference.samples
    assert layout["clicks"] == list(reference.clicks)
    assert [r["name"] for r in layout["regions"]] == [r.name for r in reference.regions]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["capture.json", "capture.wav"]
