"""Rendering one dataset across knob settings (``fxclone render --knob NAME=LOW:HIGH``)."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

import numpy as np
import pytest

from cli_harness import assert_clean_failure
from fxclone.dataset import GenerateConfig, generate_dataset, load_dataset, load_pairs
from fxclone.effects import get_effect
from fxclone.errors import FxcloneError
from fxclone.journey import _knob_specs, render
from fxclone.settings import sample_settings, segment_bounds, split_knob_args

SR = 16000
SMALL = GenerateConfig(sample_rate=SR, seed=3, train_seconds=9.0, val_seconds=2.0,
                       test_seconds=3.0, segment_seconds=3.0, item_seconds=9.0)  # fmt: skip
GAIN_TOOL = """
import sys
import soundfile as sf
src, dst, gain = sys.argv[1:4]
x, sr = sf.read(src, dtype="float32", always_2d=True)
sf.write(dst, x * float(gain), sr, subtype="FLOAT")
"""


@pytest.fixture()
def data(tmp_path: Path) -> Path:
    generate_dataset(tmp_path / "data", SMALL)
    return tmp_path / "data"


def test_ranges_are_told_from_fixed_values_and_checked() -> None:
    fixed, ranges = split_knob_args(["drive=0:40", "level=-6", "tone=500:8000"])
    assert fixed == ["level=-6"] and ranges == {"drive": (0.0, 40.0), "tone": (500.0, 8000.0)}
    for bad in ("drive=5:1", "drive=a:3", "drive=1:1"):
        with pytest.raises(FxcloneError, match="drive"):
            split_knob_args([bad])


@pytest.mark.parametrize("method", ["lhs", "random", "grid"])
def test_sampled_settings_stay_in_range_and_repeat_for_a_seed(method) -> None:
    ranges = {"drive": (0.0, 40.0), "tone": (500.0, 8000.0)}
    a = sample_settings(ranges, 16, method, seed=4, log_scale={"tone": True})
    assert a == sample_settings(ranges, 16, method, seed=4, log_scale={"tone": True})
    assert len(a) == 16 and a != sample_settings(ranges, 16, method, seed=5)
    for s in a:
        assert 0.0 <= s["drive"] <= 40.0 and 500.0 <= s["tone"] <= 8000.0 + 1e-9
    if method == "lhs":  # one point in each of the 16 strata of each knob
        drive = np.floor(np.array([s["drive"] for s in a]) / 40.0 * 16)
        tone = np.floor(np.log(np.array([s["tone"] for s in a]) / 500.0) / np.log(16.0) * 16)
        assert sorted(drive) == list(range(16)) and sorted(tone) == list(range(16))
    if method == "grid":  # a 4 x 4 grid with both endpoints, each point once
        assert sorted({round(s["drive"], 6) for s in a}) == [0.0, 13.333333, 26.666667, 40.0]
        assert len({(s["drive"], s["tone"]) for s in a}) == 16


def test_segments_cover_the_item_and_a_short_tail_joins() -> None:
    assert segment_bounds(10, 4, 3) == [(0, 4), (4, 10)]
    assert segment_bounds(11, 4, 3) == [(0, 4), (4, 8), (8, 11)]


def test_every_segment_is_the_effect_at_its_own_setting(data: Path) -> None:
    manifest = render(data, "distortion", {"level": -6.0}, ranges={"drive": (0.0, 40.0),
                      "tone": (500.0, 8000.0)}, segment_seconds=2.0, progress=None)  # fmt: skip
    doc = json.loads(manifest.read_text())
    assert doc["effect"]["ranges"] == {"drive": [0.0, 40.0], "tone": [500.0, 8000.0]}
    info = load_dataset(data)
    pairs = load_pairs(info, "train")
    assert len(pairs) == 5  # 9 s of training: 2 + 2 + 2 + 2 + 1
    drives = {p.knobs["drive"] for p in pairs}
    assert len(drives) == 5 and all(p.knobs["level"] == -6.0 for p in pairs)
    effect = get_effect("distortion")
    for pair in pairs:
        expected = effect.render(pair.dry, SR, pair.knobs)
        assert np.max(np.abs(pair.wet - expected)) < 1e-6
    specs = _knob_specs(info, [*pairs, *load_pairs(info, "val")])
    assert [s.name for s in specs] == ["drive", "tone"]  # level is fixed: not a condition


def test_a_command_gets_each_segments_values(data: Path) -> None:
    tool = data.parent / "gain.py"
    tool.write_text(GAIN_TOOL)
    command = f"{shlex.quote(sys.executable)} {shlex.quote(str(tool))} {{dry}} {{wet}} {{gain}}"
    render(data, command=command, ranges={"gain": (0.1, 2.0)}, sampling="random", seed=2,
           progress=None)  # fmt: skip
    for split in ("train", "val", "test"):
        for pair in load_pairs(load_dataset(data), split):
            np.testing.assert_allclose(pair.wet, pair.dry * pair.knobs["gain"], atol=1e-6)


def test_bad_ranges_fail_cleanly_and_leave_the_dataset(cli, data: Path) -> None:
    before = (data / "manifest.json").read_text()
    for args, needle in (
        (["--knob", "drive=0:50"], "range 0..40"),
        (["--knob", "fuzz=0:1"], "no knob 'fuzz'"),
        (["--knob", "drive=0:40", "--sampling", "sobol"], "sobol"),
        (["--knob", "drive=0:40", "--segment-seconds", "0.1"], "too short"),
    ):
        proc = cli("render", str(data), "--effect", "distortion", *args, cwd=data.parent)
        assert_clean_failure(proc, needle)
    assert (data / "manifest.json").read_text() == before
