"""The dataset folder: generate, user audio, render, load, and the errors users can hit."""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pyloudnorm
import pytest
import soundfile as sf

from fxclone import rendering
from fxclone.audio import read_audio, write_audio
from fxclone.dataset import (
    GenerateConfig,
    generate_dataset,
    load_dataset,
    load_pairs,
)
from fxclone.errors import FxcloneError
from fxclone.rendering import render_dataset

SR = 16000
SMALL = GenerateConfig(
    sample_rate=SR,
    seed=1,
    train_seconds=25.0,
    val_seconds=5.0,
    test_seconds=10.0,
    segment_seconds=5.0,
    item_seconds=10.0,
)


class Gain:
    """A stand-in effect: a fixed gain in dB, with the registry's knob contract."""

    name = "gain"

    def resolve_knobs(self, knobs: Mapping[str, float] | None) -> dict[str, float]:
        given = dict(knobs or {})
        if set(given) - {"gain_db"}:
            raise FxcloneError(f"effect gain has no knob {sorted(set(given) - {'gain_db'})[0]!r}")
        return {"gain_db": float(given.get("gain_db", -6.0))}

    def render(self, dry, sample_rate, knobs=None):
        return dry * np.float32(10 ** (self.resolve_knobs(knobs)["gain_db"] / 20))


@pytest.fixture
def gain_effect(monkeypatch):
    # Patch the lookup rather than registering: contract tests loop over the real registry.
    monkeypatch.setattr(rendering, "_get_effect", lambda name: Gain())


@pytest.fixture(scope="module")
def small_dataset(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("small") / "data"
    generate_dataset(out, SMALL)
    return out


@pytest.fixture
def rendered(small_dataset, tmp_path, gain_effect) -> Path:
    out = tmp_path / "rendered"
    render_dataset(small_dataset, "gain", {"gain_db": -6.0}, out_dir=out)
    return out


def _manifest(folder: Path) -> dict:
    return json.loads((folder / "manifest.json").read_text())


def _edit_manifest(folder: Path, **changes) -> None:
    manifest = _manifest(folder) | changes
    (folder / "manifest.json").write_text(json.dumps(manifest))


# --- generate ----------------------------------------------------------------------------


def test_generate_writes_manifest_and_audio_of_the_requested_lengths(small_dataset):
    manifest = _manifest(small_dataset)
    assert manifest["format"] == "fxclone-dataset" and manifest["version"] == 1
    assert manifest["sample_rate"] == SR and manifest["seed"] == 1
    assert manifest["created_by"].startswith("fxclone ")
    assert manifest["effect"] is None
    assert manifest["generator"]["config"] == SMALL.to_dict()
    seconds = {"train": 0.0, "val": 0.0, "test": 0.0}
    for item in manifest["items"]:
        audio, sr = read_audio(small_dataset / item["dry"])
        assert sr == SR and audio.shape == (1, item["samples"]) and audio.dtype == np.float32
        assert item["wet"] is None and item["knobs"] is None
        assert item["samples"] <= SMALL.item_seconds * SR
        mix = "test-mix" if item["split"] == "test" else "train-mix"
        assert item["material"] == f"synthetic:{mix}"
        assert item["id"].startswith(item["split"] + "_")
        seconds[item["split"]] += item["samples"] / SR
    assert seconds == {"train": 25.0, "val": 5.0, "test": 10.0}
    assert [i["id"] for i in manifest["items"]][:3] == ["train_000", "train_001", "train_002"]
    splits = manifest["generator"]["splits"]
    assert [splits[s]["synthetic"]["seed"] for s in ("train", "val", "test")] == [1, 5001, 10001]


def test_generate_is_deterministic(small_dataset, tmp_path):
    again = tmp_path / "again"
    calls = []
    generate_dataset(again, SMALL, progress=lambda done, total: calls.append((done, total)))
    assert (again / "manifest.json").read_bytes() == (small_dataset / "manifest.json").read_bytes()
    for item in _manifest(again)["items"]:
        a, _ = read_audio(again / item["dry"])
        b, _ = read_audio(small_dataset / item["dry"])
        np.testing.assert_array_equal(a, b)
    assert calls == [(i, 5) for i in range(1, 6)]  # train 10+10+5 s, val 5 s, test 10 s

    other = tmp_path / "other"
    generate_dataset(other, GenerateConfig(**(SMALL.to_dict() | {"seed": 2})))
    a, _ = read_audio(other / "dry" / "train_000.wav")
    b, _ = read_audio(small_dataset / "dry" / "train_000.wav")
    assert np.mean(np.abs(a - b)) > 1e-4


def test_generate_refuses_a_non_empty_folder_unless_overwriting(small_dataset, tmp_path):
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    with pytest.raises(FxcloneError, match="not empty"):
        generate_dataset(busy, SMALL)
    with pytest.raises(FxcloneError, match="no manifest.json"):
        generate_dataset(busy, SMALL, overwrite=True)
    assert (busy / "notes.txt").read_text() == "mine"

    copy = tmp_path / "copy"
    shutil.copytree(small_dataset, copy)
    shorter = GenerateConfig(**(SMALL.to_dict() | {"train_seconds": 5.0}))
    generate_dataset(copy, shorter, overwrite=True)
    assert sorted(p.name for p in (copy / "dry").iterdir()) == [
        "test_000.wav",
        "train_000.wav",
        "val_000.wav",
    ]


def test_config_rejects_unknown_keys_and_bad_values():
    with pytest.raises(FxcloneError, match="'sample_rte'"):
        GenerateConfig.from_dict({"sample_rte": 44100})
    assert GenerateConfig.from_dict({"seed": 4}).seed == 4
    for bad in (
        {"train_seconds": 0.0},
        {"val_seconds": -1.0},
        {"sample_rate": 1000},
        {"sample_rate": 48000.0},
        {"item_seconds": 5.0},  # shorter than a 10-s segment
        {"user_fraction": 1.5},
        {"target_lufs": float("nan")},
    ):
        with pytest.raises(FxcloneError, match=next(iter(bad))):
            GenerateConfig.from_dict(bad)


# --- the user's own audio ----------------------------------------------------------------


def _tone(seconds: float, sr: int, freq: float, level: float) -> np.ndarray:
    return level * np.sin(2 * np.pi * freq * np.arange(round(seconds * sr)) / sr)


@pytest.fixture
def user_folder(tmp_path) -> Path:
    folder = tmp_path / "mine"
    left, right = _tone(10.0, 44100, 220.0, 0.5), _tone(10.0, 44100, 330.0, 0.1)
    stereo = np.stack([left, right])
    stereo = np.concatenate([stereo, np.zeros((2, 5 * 44100))], axis=1)  # 5 s of silence
    write_audio(folder / "riff.wav", stereo, 44100)
    write_audio(folder / "more" / "chords.flac", _tone(10.0, 48000, 110.0, 0.02)[None], 48000)
    (folder / "readme.txt").write_text("not audio, ignored")
    return folder


def test_user_audio_becomes_mono_48k_items_at_the_target_loudness(user_folder, tmp_path):
    config = GenerateConfig(
        seed=0,
        train_seconds=10.0,
        val_seconds=0.0,
        test_seconds=5.0,
        segment_seconds=5.0,
        item_seconds=10.0,
        from_dir=str(user_folder),
        user_fraction=1.0,
        target_lufs=-20.0,
    )
    out = tmp_path / "data"
    generate_dataset(out, config)
    manifest = _manifest(out)
    user_items = [i for i in manifest["items"] if i["material"].startswith("user:")]
    assert {i["material"] for i in user_items} == {"user:riff.wav", "user:more/chords.flac"}
    meter = pyloudnorm.Meter(48000)
    for item in user_items:
        audio, sr = read_audio(out / item["dry"])
        assert sr == 48000 and audio.shape[0] == 1
        assert sf.info(str(out / item["dry"])).subtype == "FLOAT"
        assert meter.integrated_loudness(audio[0].astype(np.float64)) == pytest.approx(-20, abs=1)
        for source in item["sources"]:  # the silent tail of riff.wav was dropped
            assert source["start"] + source["seconds"] <= 10.0 + 1e-6
    # Two files: test comes from one, train from the other.
    by_split = {i["split"]: i["material"] for i in user_items}
    assert by_split["test"] != by_split["train"]
    user = manifest["generator"]["user_audio"]
    assert [f["name"] for f in user["files"]] == ["more/chords.flac", "riff.wav"]
    assert user["files"][1]["sample_rate"] == 44100 and user["files"][1]["channels"] == 2
    splits = manifest["generator"]["splits"]
    for split, want in (("train", 10.0), ("test", 5.0)):
        got = sum(i["samples"] for i in manifest["items"] if i["split"] == split) / 48000
        assert got == pytest.approx(want)
        assert splits[split]["seconds"] == pytest.approx(want)


@pytest.mark.skipif("MP3" not in sf.available_formats(), reason="libsndfile without mp3")
def test_user_audio_reads_mp3(tmp_path):
    folder = tmp_path / "mp3s"
    folder.mkdir()
    sf.write(str(folder / "take.mp3"), _tone(6.0, 44100, 196.0, 0.3), 44100, format="MP3")
    config = GenerateConfig(
        sample_rate=SR, train_seconds=5.0, val_seconds=0.0, test_seconds=0.0, segment_seconds=5.0
    )
    config = GenerateConfig(**(config.to_dict() | {"from_dir": str(folder), "user_fraction": 1.0}))
    manifest = _manifest(generate_dataset(tmp_path / "data", config).parent)
    (item,) = manifest["items"]
    assert item["material"] == "user:take.mp3" and item["samples"] == 5 * SR
    audio, _ = read_audio(tmp_path / "data" / item["dry"])
    loudness = pyloudnorm.Meter(SR).integrated_loudness(audio[0].astype(np.float64))
    assert loudness == pytest.approx(-18.0, abs=1.0)


def test_user_audio_shorter_than_its_share_is_topped_up_with_synthetic(user_folder, tmp_path):
    config = GenerateConfig(
        sample_rate=SR,
        train_seconds=40.0,
        val_seconds=0.0,
        test_seconds=5.0,
        segment_seconds=5.0,
        item_seconds=10.0,
        from_dir=str(user_folder),
        user_fraction=1.0,
    )
    manifest = _manifest(generate_dataset(tmp_path / "data", config).parent)
    train = manifest["generator"]["splits"]["train"]
    assert train["seconds"] == pytest.approx(40.0)
    assert 0 < train["user_seconds"] <= 10.0
    assert train["synthetic"]["seconds"] == pytest.approx(40.0 - train["user_seconds"])


def test_user_audio_errors_name_the_folder_or_file(tmp_path):
    def generate(folder: Path) -> None:
        config = GenerateConfig(sample_rate=SR, train_seconds=5, val_seconds=0, test_seconds=0)
        config = GenerateConfig(**(config.to_dict() | {"from_dir": str(folder)}))
        generate_dataset(tmp_path / f"out-{folder.name}", config)

    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FxcloneError, match=r"empty holds no audio files"):
        generate(empty)
    texts = tmp_path / "texts"
    texts.mkdir()
    (texts / "notes.txt").write_text("hello")
    with pytest.raises(FxcloneError, match=r"no audio files \(found only notes.txt"):
        generate(texts)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "take1.wav").write_text("this is not a wav file")
    with pytest.raises(FxcloneError, match=r"take1\.wav is not a readable audio file"):
        generate(broken)
    with pytest.raises(FxcloneError, match="no such folder"):
        generate(tmp_path / "missing")
    silent = tmp_path / "silent"
    write_audio(silent / "quiet.wav", np.zeros((1, SR * 3)), SR)
    with pytest.raises(FxcloneError, match="silent"):
        generate(silent)


# --- render and load ---------------------------------------------------------------------


def test_render_writes_wet_audio_and_the_effect_entry(small_dataset, rendered):
    manifest = _manifest(rendered)
    assert manifest["effect"] == {"kind": "builtin", "name": "gain", "knobs": {"gain_db": -6.0}}
    for item in manifest["items"]:
        assert item["wet"] == f"wet/{item['id']}.wav" and item["knobs"] == {"gain_db": -6.0}
    assert _manifest(small_dataset)["effect"] is None  # the source folder is untouched
    assert not (small_dataset / "wet").exists()

    info = load_dataset(rendered)
    assert info.sample_rate == SR and info.effect["name"] == "gain"
    pairs = load_pairs(info, "train")
    assert [p.id for p in pairs] == ["train_000", "train_001", "train_002"]
    for pair in pairs:
        assert pair.dry.shape == pair.wet.shape and pair.dry.dtype == np.float32
        np.testing.assert_allclose(pair.wet, pair.dry * 10 ** (-6 / 20), rtol=1e-6, atol=1e-9)
        assert pair.knobs == {"gain_db": -6.0} and pair.split == "train"
    assert sum(p.dry.shape[1] for p in pairs) == 25 * SR


def test_render_in_place_and_again_with_other_knobs(small_dataset, tmp_path, gain_effect):
    folder = tmp_path / "inplace"
    shutil.copytree(small_dataset, folder)
    calls = []
    render_dataset(folder, "gain", None, progress=lambda d, t: calls.append(d))
    render_dataset(folder, "gain", {"gain_db": -12.0})
    assert calls == [1, 2, 3, 4, 5]
    pair = load_pairs(load_dataset(folder), "test")[0]
    np.testing.assert_allclose(pair.wet, pair.dry * 10 ** (-12 / 20), rtol=1e-6, atol=1e-9)


def test_render_checks_knobs_before_writing_anything(small_dataset, tmp_path, gain_effect):
    before = (small_dataset / "manifest.json").read_bytes()
    with pytest.raises(FxcloneError, match="no knob 'drive'"):
        render_dataset(small_dataset, "gain", {"drive": 3.0})
    with pytest.raises(FxcloneError, match="no knob 'drive'"):
        render_dataset(small_dataset, "gain", {"drive": 3.0}, out_dir=tmp_path / "new")
    assert (small_dataset / "manifest.json").read_bytes() == before
    assert not (small_dataset / "wet").exists() and not (tmp_path / "new").exists()


def test_render_with_a_real_builtin_effect(small_dataset, tmp_path):
    pytest.importorskip("fxclone.effects")
    out = tmp_path / "dist"
    render_dataset(small_dataset, "distortion", None, out_dir=out)
    info = load_dataset(out)
    assert info.effect["name"] == "distortion" and info.effect["knobs"]
    pair = load_pairs(info, "val")[0]
    assert pair.wet.shape == pair.dry.shape and np.max(np.abs(pair.wet)) > 0


def test_load_pairs_before_render_says_how_to_render(small_dataset):
    with pytest.raises(FxcloneError, match="run `fxclone render .* --effect NAME` first"):
        load_pairs(load_dataset(small_dataset), "train")
    with pytest.raises(FxcloneError, match="unknown split 'training'"):
        load_pairs(load_dataset(small_dataset), "training")


def test_load_pairs_refuses_a_sample_rate_mismatch(rendered):
    wet, _ = read_audio(rendered / "wet" / "val_000.wav")
    write_audio(rendered / "wet" / "val_000.wav", wet, 22050)
    with pytest.raises(FxcloneError, match=r"val_000\.wav is 22050 Hz but .*16000 Hz"):
        load_pairs(load_dataset(rendered), "val")


def test_load_pairs_trims_small_and_refuses_large_length_differences(rendered):
    wet, _ = read_audio(rendered / "wet" / "val_000.wav")
    write_audio(rendered / "wet" / "val_000.wav", wet[:, :-10], SR)
    (pair,) = load_pairs(load_dataset(rendered), "val")
    assert pair.dry.shape == pair.wet.shape == (1, 5 * SR - 10)
    write_audio(rendered / "wet" / "val_000.wav", wet[:, :-500], SR)
    with pytest.raises(FxcloneError, match=r"val_000\.wav has 79500 samples .*off by 500"):
        load_pairs(load_dataset(rendered), "val")


@pytest.mark.parametrize(
    ("which", "content", "message"),
    [
        ("wet", np.zeros((1, 5 * SR)), r"wet/val_000\.wav is silent"),
        ("dry", np.zeros((1, 5 * SR)), r"dry/val_000\.wav is silent"),
        ("wet", np.full((1, 5 * SR), np.nan), r"val_000\.wav contains .* NaN"),
        ("dry", np.full((1, 4 * SR), 0.1), r"dry/val_000\.wav has 64000 samples but"),
    ],
)
def test_load_pairs_refuses_broken_audio(rendered, which, content, message):
    write_audio(rendered / which / "val_000.wav", content, SR)
    with pytest.raises(FxcloneError, match=message):
        load_pairs(load_dataset(rendered), "val")


def test_load_dataset_errors(rendered, tmp_path):
    with pytest.raises(FxcloneError, match="no such dataset folder"):
        load_dataset(tmp_path / "nowhere")
    (tmp_path / "plain").mkdir()
    with pytest.raises(FxcloneError, match="has no manifest.json"):
        load_dataset(tmp_path / "plain")
    assert load_dataset(rendered / "manifest.json").path == rendered
    (rendered / "wet" / "test_000.wav").unlink()
    with pytest.raises(FxcloneError, match=r"wet/test_000\.wav is listed in manifest.json but"):
        load_dataset(rendered)
    _edit_manifest(rendered, version=2)
    with pytest.raises(FxcloneError, match="version 2, newer than this fxclone .* upgrade"):
        load_dataset(rendered)
    _edit_manifest(rendered, version=1, format="something-else")
    with pytest.raises(FxcloneError, match="not an fxclone dataset manifest"):
        load_dataset(rendered)
    (rendered / "manifest.json").write_text("{broken")
    with pytest.raises(FxcloneError, match="manifest.json is not valid JSON"):
        load_dataset(rendered)


class RunningSum(Gain):
    """A stateful stand-in: an integrator, so a restart per item would show."""

    name = "runsum"

    def render(self, dry, sample_rate, knobs=None):
        from scipy.signal import lfilter

        return lfilter([0.01], [1.0, -1.0], dry, axis=1).astype(np.float32)


def test_render_runs_each_split_as_one_continuous_stream(small_dataset, tmp_path, monkeypatch):
    monkeypatch.setattr(rendering, "_get_effect", lambda name: RunningSum())
    out = tmp_path / "continuous"
    render_dataset(small_dataset, "runsum", None, out_dir=out)
    pairs = load_pairs(load_dataset(out), "train")
    dry = np.concatenate([p.dry for p in pairs], axis=1)
    wet = np.concatenate([p.wet for p in pairs], axis=1)
    np.testing.assert_allclose(wet, RunningSum().render(dry, SR), atol=1e-6)
    # Rendering the second item from rest would differ: its state carries the first item's tail.
    restarted = RunningSum().render(pairs[1].dry, SR)
    assert float(np.max(np.abs(restarted - pairs[1].wet))) > 1e-4
