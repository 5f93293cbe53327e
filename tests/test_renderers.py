"""Rendering through external commands (real LV2 plugins via lv2file) and hosted plugins."""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cli_harness import Cli, assert_clean_failure
from fxclone import renderers
from fxclone.audio import read_audio, write_audio
from fxclone.dataset import GenerateConfig, generate_dataset, load_dataset, load_pairs
from fxclone.errors import FxcloneError
from fxclone.renderers import CommandRenderer, PluginRenderer
from fxclone.rendering import render_dataset

SR = 48000
MDA = "http://drobilla.net/plugins/mda/"
OVERDRIVE = f"lv2file -i {{dry}} -o {{wet}} -p drive:{{drive}} {MDA}Overdrive"
SMALL = GenerateConfig(
    train_seconds=2, val_seconds=1, test_seconds=1, segment_seconds=1, item_seconds=1
)


def _mda_missing() -> str | None:
    if shutil.which("lv2file") is None:
        return "lv2file is not installed (Debian: apt-get install lv2file)"
    listed = subprocess.run(["lv2file", "-l"], capture_output=True, text=True, timeout=60).stdout
    for name in ("Overdrive", "Combo", "Dynamics"):
        if f"{MDA}{name}" not in listed:
            return "the mda LV2 plugins are not installed (Debian: apt-get install mda-lv2)"
    return None


MDA_MISSING = _mda_missing()
needs_mda = pytest.mark.skipif(MDA_MISSING is not None, reason=str(MDA_MISSING))

TOOL = """
import sys, time
import numpy as np, soundfile as sf
src, dst, mode = sys.argv[1:4]
x, sr = sf.read(src, dtype="float32", always_2d=True)
d = x[:, 0]
write = lambda y, rate=sr: sf.write(dst, y, rate, subtype="FLOAT")
if mode == "stereo": write(np.stack([d, d * np.float32(-0.5)], axis=1))
elif mode == "fail": print("starting", file=sys.stderr); sys.exit("tool: no frobnicator")
elif mode == "empty": open(dst, "wb").close()
elif mode == "noframes": write(np.zeros((0, 1), np.float32))
elif mode == "longer": write(np.concatenate([d, np.zeros(480, np.float32)]))
elif mode == "shorter": write(d[:-100])
elif mode == "nan": write(np.where(np.arange(d.size) == 7, np.nan, d))
elif mode == "sleep": time.sleep(60)
elif mode == "half": write(d[::2], sr // 2)
"""


def tool_command(work: Path, mode: str = "") -> str:
    """A command running TOOL (written by the ``work`` fixture) in one of its modes."""
    script = shlex.quote(str(work / "tool.py"))
    return f"{shlex.quote(sys.executable)} {script} {{dry}} {{wet}} {mode}".rstrip()


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("renderers")
    (root / "tool.py").write_text(TOOL)
    generate_dataset(root / "data", SMALL)
    return root


def _manifest(folder: Path) -> dict[str, Any]:
    return json.loads((folder / "manifest.json").read_text())


def _split_stream(folder: Path, split: str, kind: str) -> np.ndarray:
    info = load_dataset(folder)
    items = info.split_items(split)
    return np.concatenate([read_audio(folder / it[kind])[0] for it in items], axis=1)


def _esr(target: np.ndarray, estimate: np.ndarray) -> float:
    return float(np.sum((target - estimate) ** 2) / np.sum(target**2))


# --- real LV2 plugins through lv2file ----------------------------------------------------


@needs_mda
def test_overdrive_through_the_cli_matches_lv2file_run_by_hand(work: Path) -> None:
    out = work / "overdrive"
    cli = [sys.executable, "-m", "fxclone", "render", str(work / "data"), "--command", OVERDRIVE]
    proc = subprocess.run(
        [*cli, "--knob", "drive=0.8", "--in-channels", "2", "--out", str(out)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    manifest = _manifest(out)
    assert manifest["effect"] == {
        **{"kind": "command", "command": OVERDRIVE, "knobs": {"drive": 0.8}},
        **{"in_channels": 2, "out_channel": "mix"},
    }
    assert [item["knobs"] for item in manifest["items"]] == [{"drive": 0.8}] * 4
    for item in manifest["items"]:  # 2 train items cut from one stream, 1 val, 1 test
        assert read_audio(out / item["wet"])[0].shape == (1, item["samples"])
    for split in ("train", "val", "test"):
        dry, wet = _split_stream(out, split, "dry"), _split_stream(out, split, "wet")
        assert _esr(wet, dry) > 0.2  # measured 0.30-0.76: driven, not a copy of the dry
        # lv2file by hand on the split's whole dry stream, both channels fed the same signal
        write_audio(work / "by_hand_in.wav", np.repeat(dry, 2, axis=0), SR)
        by_hand = ["-i", str(work / "by_hand_in.wav"), "-o", str(work / "by_hand.wav")]
        subprocess.run(["lv2file", *by_hand, "-p", "drive:0.8", f"{MDA}Overdrive"], check=True)
        expected = read_audio(work / "by_hand.wav")[0].mean(axis=0, keepdims=True)
        assert expected.shape == wet.shape
        assert float(np.max(np.abs(wet - expected))) < 1e-6
    again = CommandRenderer(OVERDRIVE, {"drive": 0.8}, in_channels=2)
    render_dataset(work / "data", again, out_dir=work / "again")
    for item in manifest["items"]:  # deterministic: the same bytes again
        assert (work / "again" / item["wet"]).read_bytes() == (out / item["wet"]).read_bytes()


@needs_mda
@pytest.mark.parametrize(
    ("plugin", "knobs"),
    [("Combo", {"model": 0.3, "drive": 0.7}), ("Dynamics", {"thresh": 0.2, "ratio": 0.8})],
)
def test_mda_combo_and_dynamics_render(work: Path, plugin: str, knobs: dict[str, float]) -> None:
    ports = " ".join(f"-p {name}:{{{name}}}" for name in knobs)
    template = f"lv2file -i {{dry}} -o {{wet}} {ports} {MDA}{plugin}"
    out = work / plugin
    render_dataset(work / "data", CommandRenderer(template, knobs, in_channels=2), out_dir=out)
    assert _manifest(out)["effect"]["knobs"] == knobs
    for pair in load_pairs(load_dataset(out), "train"):
        assert pair.wet.shape == pair.dry.shape
        assert np.all(np.isfinite(pair.wet)) and float(np.sqrt(np.mean(pair.wet**2))) > 1e-3
        assert _esr(pair.wet, pair.dry) > 0.05


def _thd(y: np.ndarray, f0_bin: int) -> float:
    spectrum = np.abs(np.fft.rfft(y * np.hanning(y.size)))
    peak = [float(spectrum[k * f0_bin - 3 : k * f0_bin + 4].max()) for k in range(1, 10)]
    return float(np.sqrt(np.sum(np.square(peak[1:]))) / peak[0])


@needs_mda
def test_the_knob_value_reaches_the_plugin() -> None:
    t = np.arange(SR) / SR
    tone = (0.5 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32)[None]
    thd, rms = {}, {}
    for drive in (0.2, 0.8):
        wet = CommandRenderer(OVERDRIVE, {"drive": drive}, in_channels=2).render(tone, SR)
        steady = wet[0, SR // 2 :]  # 0.5 s: 1000 Hz is bin 500
        thd[drive], rms[drive] = _thd(steady, 500), float(np.sqrt(np.mean(steady**2)))
    assert thd[0.8] > 2.0 * thd[0.2] > 0.05  # measured: 0.14 vs 0.046
    assert rms[0.8] > 1.2 * rms[0.2]  # measured: 0.52 vs 0.39


# --- commands in general -----------------------------------------------------------------


@pytest.mark.parametrize(("pick", "scale"), [("left", 1.0), ("right", -0.5), ("mix", 0.25)])
def test_out_channel_picks_from_a_stereo_output(work: Path, pick: str, scale: float) -> None:
    out = work / f"pick_{pick}"
    renderer = CommandRenderer(tool_command(work, "stereo"), out_channel=pick)
    render_dataset(work / "data", renderer, out_dir=out)
    assert _manifest(out)["effect"]["out_channel"] == pick
    for split in ("train", "test"):
        dry, wet = _split_stream(out, split, "dry"), _split_stream(out, split, "wet")
        np.testing.assert_array_equal(wet, dry * np.float32(scale))


def test_other_sample_rates_are_resampled_and_recorded(work: Path) -> None:
    out = work / "half"
    render_dataset(work / "data", CommandRenderer(tool_command(work, "half")), out_dir=out)
    assert _manifest(out)["effect"]["resampled_from"] == SR // 2
    pair = load_pairs(load_dataset(out), "test")[0]
    assert pair.wet.shape == pair.dry.shape
    assert float(np.max(np.abs(pair.wet))) > 0.5 * float(np.max(np.abs(pair.dry)))


def test_placeholders_defaults_and_literal_braces(tmp_path: Path) -> None:
    renderer = CommandRenderer(f"{sys.executable} -c {{{{x}}}} {{dry}} -o={{wet}} g:{{gain=0.25}}")
    assert renderer.knobs == {"gain": 0.25}
    argv = renderer.argv("/t/in put.wav", "/t/out.wav")
    assert argv[1:] == ["-c", "{x}", "/t/in put.wav", "-o=/t/out.wav", "g:0.25"]
    assert CommandRenderer(renderer.template, {"gain": 3.0}).argv("a", "b")[-1] == "g:3"
    with pytest.raises(FxcloneError, match=r"no \{wet\} placeholder"):
        CommandRenderer(f"{sys.executable} {{dry}} out.wav")
    with pytest.raises(FxcloneError, match="check its quotes"):
        CommandRenderer(f"{sys.executable} '{{dry}} {{wet}}")
    with pytest.raises(FxcloneError, match="--in-channels 3 is not 1 or 2"):
        CommandRenderer(f"{sys.executable} {{dry}} {{wet}}", in_channels=3)


def test_temporary_files_are_removed(work: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    dry = read_audio(work / "data" / "dry" / "test_000.wav")[0]
    CommandRenderer(tool_command(work, "stereo")).render(dry, SR)
    with pytest.raises(FxcloneError, match="status 1"):
        CommandRenderer(tool_command(work, "fail")).render(dry, SR)
    assert list(tmp_path.iterdir()) == []


# --- every command error through the real CLI --------------------------------------------

ERRORS = {
    # case: (extra arguments, words the one error line must hold)
    "not_found": (["--command", "no-such-fx-tool {dry} {wet}"], ["'no-such-fx-tool'", "not found"]),
    "exit": (["--command", "TOOL fail"], ["exited with status 1", "tool: no frobnicator"]),
    "lv2_mono": (["--command", OVERDRIVE, "-k", "drive=1"], ["Not enough input", "channels 2"]),
    "no_file": (["--command", "TOOL none"], ["wrote no file", "{wet}"]),
    "empty": (["--command", "TOOL empty"], ["empty file (0 bytes)", "{wet}"]),
    "no_frames": (["--command", "TOOL noframes"], ["0 frames"]),
    "longer": (["--command", "TOOL longer"], ["480 samples longer", "fxclone align"]),
    "shorter": (["--command", "TOOL shorter"], ["100 samples shorter", "fxclone align"]),
    "nan": (["--command", "TOOL nan"], ["1 NaN/Inf sample", "try other knob values"]),
    "timeout": (["--command", "TOOL sleep", "--timeout", "1"], ["within 1 s", "--timeout"]),
    "knob_unused": (["--command", "TOOL stereo", "-k", "drive=1"], ["--knob drive=", "{drive}"]),
    "knob_missing": (["--command", "TOOL stereo {gain}"], ["{gain}", "--knob gain=VALUE"]),
    "none": ([], ["exactly one of --effect", "none was given"]),
    "two": (["--effect", "lowpass", "--command", "TOOL stereo"], ["--effect and --command"]),
    "no_plugin": (["--plugin", "nowhere/Amp.vst3"], ["nowhere/Amp.vst3: no such plugin file"]),
}


@pytest.fixture(scope="module")
def cli_failures(work: Path, cli: Cli) -> dict[str, subprocess.CompletedProcess[str]]:
    """Every case in ERRORS through the CLI, each with a temporary folder of its own."""
    render_dataset(work / "data", CommandRenderer(tool_command(work, "stereo")), out_dir=work / "r")
    results = {}
    for case, (args, _) in ERRORS.items():
        shutil.copytree(work / "r", work / f"err_{case}")
        (work / f"tmp_{case}").mkdir()
        argv = ["render", f"err_{case}", *(a.replace("TOOL", tool_command(work)) for a in args)]
        results[case] = cli(*argv, cwd=work, tmpdir=work / f"tmp_{case}")
    return results


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


@pytest.mark.parametrize("case", list(ERRORS))
def test_command_errors_are_one_clean_line(
    work: Path, cli_failures: dict[str, subprocess.CompletedProcess[str]], case: str
) -> None:
    if case.startswith("lv2") and MDA_MISSING:
        pytest.skip(MDA_MISSING)
    assert_clean_failure(cli_failures[case], *ERRORS[case][1])
    assert _files(work / f"err_{case}") == _files(work / "r")  # no wet file or manifest changed
    assert list((work / f"tmp_{case}").iterdir()) == []  # the temporary folder is gone


# --- hosted plugins, with a stand-in for pedalboard's plugin object -----------------------


class FakeParameter:
    def __init__(self, low: Any, high: Any, units: str, kind: type = float) -> None:
        self.min_value, self.max_value, self.units, self.type = low, high, units, kind
        self.range, self.valid_values = (low, high, None), ["clean", "crunch"]


class FakePlugin:
    """Mimics pedalboard's VST3Plugin: parameters, attribute values, presets, process()."""

    parameters = {
        "drive_db": FakeParameter(0.0, 40.0, "dB"),
        "level": FakeParameter(-1.0, 1.0, ""),
        "bright": FakeParameter(False, True, "", bool),
        "voicing": FakeParameter(None, None, "", str),
    }

    log: list[Any]
    latency: int
    held: Any
    drive_db: float
    level: float

    def __init__(self, latency: int = 0) -> None:
        self.__dict__.update(log=[], latency=latency, held=None)
        self.__dict__.update(drive_db=0.0, level=1.0, bright=False, voicing="clean")

    def __setattr__(self, name: str, value: Any) -> None:
        if name in self.parameters:
            self.log.append(("set", name, value))
        self.__dict__[name] = value

    def load_preset(self, path: str) -> None:
        self.log.append(("preset", Path(path).name))
        self.__dict__.update(drive_db=12.0, voicing="crunch")

    def process(self, audio: np.ndarray, sample_rate: float, reset: bool = True) -> np.ndarray:
        self.log.append(("process", audio.shape, reset))
        if audio.shape[0] != 2:
            raise ValueError("Plugin expects 2 input channels, got 1")
        y = np.tanh(np.float32(10 ** (self.drive_db / 20)) * audio) * np.float32(self.level)
        y[1] *= np.float32(0.5)
        if reset:
            self.held = np.zeros((2, self.latency), np.float32)
        stream = np.concatenate([self.held, y], axis=1)  # delayed by the latency ...
        self.held, out = stream[:, audio.shape[1] :], stream[:, : audio.shape[1]]
        return out[:, self.latency :] if reset else out  # ... which pedalboard trims


@pytest.fixture
def fake_plugin(tmp_path: Path, monkeypatch) -> dict[str, Any]:
    made: dict[str, Any] = {"path": tmp_path / "Drive.vst3", "preset": tmp_path / "Hot.vstpreset"}
    made["path"].mkdir()
    made["preset"].write_bytes(b"VST3")

    def load(path: str) -> FakePlugin:
        made["plugin"] = FakePlugin(made.get("latency", 0))
        made["loaded"] = path
        return made["plugin"]

    monkeypatch.setattr(renderers, "load_plugin", load)
    return made


@pytest.mark.parametrize("latency", [0, 300])
def test_plugin_knobs_set_parameters_after_the_preset(work: Path, fake_plugin, latency) -> None:
    fake_plugin["latency"] = latency
    path, preset = fake_plugin["path"], fake_plugin["preset"]
    knobs = {"drive_db": 6.0, "bright": 1.0}
    renderer = PluginRenderer(path, knobs, preset=preset, in_channels=2, out_channel="left")
    render_dataset(work / "data", renderer, out_dir=work / f"plugin_{latency}")
    log = fake_plugin["plugin"].log
    assert log[:3] == [("preset", preset.name), ("set", "drive_db", 6.0), ("set", "bright", True)]
    assert [e[2] for e in log if e[0] == "process" and e[2]] == [True] * 3  # a reset per split
    assert _manifest(work / f"plugin_{latency}")["effect"] == {
        **{"kind": "plugin", "path": str(path.resolve()), "preset": str(preset.resolve())},
        **{"knobs": knobs, "knob_ranges": {"drive_db": [0.0, 40.0], "bright": [0.0, 1.0]}},
        **{"in_channels": 2, "out_channel": "left"},
        "parameters": {"drive_db": 6.0, "level": 1.0, "bright": True, "voicing": "crunch"},
    }
    for split in ("train", "val"):
        dry = _split_stream(work / f"plugin_{latency}", split, "dry")
        wet = _split_stream(work / f"plugin_{latency}", split, "wet")
        expected = np.tanh(np.float32(10 ** (6 / 20)) * dry)  # the left channel, level 1
        np.testing.assert_allclose(wet, expected, rtol=0, atol=1e-6)


def test_plugin_parameters_are_sampled_per_segment(work: Path, fake_plugin) -> None:
    """--knob NAME=LOW:HIGH with --plugin: one loaded plugin, each segment at its setting."""
    from fxclone.dataset import load_pairs
    from fxclone.journey import render

    out = work / "plugin_ranges"
    render(work / "data", plugin=fake_plugin["path"], knobs={"level": 0.5}, in_channels=2,
           out_channel="left", ranges={"drive_db": (0.0, 30.0)}, out_dir=out, seed=1,
           segment_seconds=1.0)  # fmt: skip
    assert fake_plugin["loaded"] and len([e for e in fake_plugin["plugin"].log if e[0] == "set"
                                          and e[1] == "level"]) == 1  # fmt: skip
    drives = []
    for split in ("train", "val", "test"):
        for pair in load_pairs(load_dataset(out), split):
            drive = pair.knobs["drive_db"]
            drives.append(drive)
            expected = 0.5 * np.tanh(np.float32(10 ** (drive / 20)) * pair.dry)
            np.testing.assert_allclose(pair.wet, expected, rtol=0, atol=1e-5)
    assert len(set(drives)) == len(drives) > 3 and 0 <= min(drives) and max(drives) <= 30
    # the sweep renders the plugin again at a setting of its own
    from fxclone.sweep import renderer_at

    effect = _manifest(out)["effect"]
    assert effect["knobs"] == {"level": 0.5} and effect["ranges"] == {"drive_db": [0.0, 30.0]}
    again = renderer_at(effect, {"drive_db": 17.0})
    dry = load_pairs(load_dataset(out), "test")[0].dry
    expected = 0.5 * np.tanh(np.float32(10 ** (17 / 20)) * dry)
    np.testing.assert_allclose(again.render(dry, SR), expected, rtol=0, atol=1e-5)
    with pytest.raises(FxcloneError, match="outside the plugin parameter's range"):
        render(work / "data", plugin=fake_plugin["path"], in_channels=2,
               ranges={"drive_db": (0.0, 50.0)}, out_dir=work / "never")  # fmt: skip
    assert not (work / "never").exists()


def test_plugin_values_are_checked_against_the_parameter(fake_plugin: dict[str, Any]) -> None:
    path = fake_plugin["path"]
    with pytest.raises(FxcloneError, match=r"'drive_db' = 50 dB is outside .* 0\.\.40 dB"):
        PluginRenderer(path, {"drive_db": 50.0}, in_channels=2)
    assert not any(e[0] == "set" for e in fake_plugin["plugin"].log)
    with pytest.raises(FxcloneError, match="no parameter 'gain'; its parameters are: drive_db"):
        PluginRenderer(path, {"gain": 1.0})
    with pytest.raises(FxcloneError, match="is a switch; give --knob bright=0 or 1"):
        PluginRenderer(path, {"bright": 0.5})
    with pytest.raises(FxcloneError, match="takes one of clean, crunch"):
        PluginRenderer(path, {"voicing": 1.0})
    with pytest.raises(FxcloneError, match="no such preset file"):
        PluginRenderer(path, preset=path.parent / "missing.vstpreset")


def test_plugin_failures_are_clean(work: Path, fake_plugin: dict[str, Any], monkeypatch) -> None:
    dry = read_audio(work / "data" / "dry" / "test_000.wav")[0]
    with pytest.raises(FxcloneError, match="failed while processing .*try --in-channels 2"):
        PluginRenderer(fake_plugin["path"]).render(dry, SR)

    monkeypatch.undo()  # the real loader (pedalboard) on a bundle that holds no plugin
    pytest.importorskip("pedalboard")
    with pytest.raises(FxcloneError, match=r"Drive\.vst3: pedalboard cannot load this plugin"):
        PluginRenderer(fake_plugin["path"])
