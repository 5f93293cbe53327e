"""Export to players: .nam (checked with Neural Amp Modeler's own package), ONNX (checked with
ONNX Runtime, offline and block by block), RTNeural JSON (checked with an independent numpy
evaluation of RTNeural's layer equations); .nam import; fine-tuning from a saved model."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from fxclone.errors import FxcloneError
from fxclone.export import export_model, import_nam, initialise_from
from fxclone.export.nam import model_to_nam, nam_to_model
from fxclone.export.rtneural import model_to_rtneural
from fxclone.modelfile import load_model, reference_input, save_model
from fxclone.models import KnobSpec, create_model
from fxclone.models.base import EffectModel

SR = 48000
TOL = 1e-4
DRIVE = KnobSpec("drive", 0.0, 40.0, "dB")


def _trained(name: str, knobs: tuple[KnobSpec, ...] = (), **overrides: Any) -> EffectModel:
    """A preset with every weight moved off its initial value (seeded)."""
    torch.manual_seed(0)
    model = create_model(name, sample_rate=SR, knobs=knobs, overrides=overrides or None)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return model.eval()


def _run(model: EffectModel, x: np.ndarray, knobs: np.ndarray | None = None) -> np.ndarray:
    k = torch.zeros(1, 0) if knobs is None else torch.from_numpy(knobs)
    with torch.no_grad():
        return model(torch.from_numpy(x)[None, None], k)[0, 0].numpy()


def _run_after_silence(model: EffectModel, x: np.ndarray) -> np.ndarray:
    """fxclone's output once silence has filled the receptive field, which is where NAM (its
    Python package pads the input; its players prewarm with silence) starts a WaveNet."""
    lead = max(model.receptive_field - 1, 0)
    return _run(model, np.concatenate([np.zeros(lead, np.float32), x]))[lead:]


@pytest.fixture(scope="module")
def signal() -> np.ndarray:
    return reference_input(SR, 1, 6000)[0, 0].numpy()


# --------------------------------------------------------------------------------------------
# .nam, checked with Neural Amp Modeler's Python package (run in a subprocess)

NAM_SCRIPT = r"""
import json, sys, types
from pathlib import Path
import numpy as np
try:
    import tkinter  # noqa: F401  NAM's trainer imports it at load time; nothing here uses it
except ImportError:
    sys.modules["tkinter"] = types.ModuleType("tkinter")
import torch
from nam.models import init_from_nam
from nam.models.recurrent import LSTM
from nam.models.wavenet import WaveNet

jobs = json.loads(Path(sys.argv[1]).read_text())
x = torch.from_numpy(np.load(jobs["input"]))[None]
out = {}

def load(path):
    return init_from_nam(json.loads(Path(path).read_text())).eval()

def run(model):
    with torch.no_grad():
        return model(x, pad_start=True)[0].numpy()

for name, path in jobs["load"].items():
    model = load(path)
    out[name] = run(model)
    if name in jobs["loudness"]:
        out[name + "_loudness"] = np.array(model._metadata_loudness())
torch.manual_seed(0)
for name, spec in jobs["create"].items():
    if spec["kind"] == "LSTM":
        model = LSTM(hidden_size=spec["hidden_size"], num_layers=spec["num_layers"],
                     sample_rate=48000.0)
    else:
        model = WaveNet.init_from_config(dict(spec["config"], sample_rate=48000.0))
    model.eval()
    # NAM's loudness/gain measurement takes seconds and is not what is tested here.
    model._metadata_loudness = lambda *a, **k: -20.0
    model._metadata_gain = lambda *a, **k: 0.5
    model.export(Path(jobs["dir"]), basename=name)
    out[name] = run(load(Path(jobs["dir"], name + ".nam")))
np.savez(jobs["output"], **out)
"""


def _nam_feather(act: Any = "Tanh") -> dict:
    """NAM's feather WaveNet in the layer-array config NAM 0.13 builds models from."""

    def array(inp: int, ch: int, head: int, dil: list[int], bias: bool) -> dict:
        h = {"out_channels": head, "kernel_size": 1, "bias": bias}
        d = {"input_size": inp, "condition_size": 1, "channels": ch, "head": h, "kernel_size": 3}
        return {**d, "dilations": dil, "activation": act}

    d1, d2 = [1, 2, 4, 8, 16, 32, 64], [128, 256, 512, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512]
    layers = [array(1, 8, 4, d1, False), array(8, 4, 1, d2, True)]
    return {"layers_configs": layers, "head": None, "head_scale": 0.02}


GATED = {"name": "PairMultiply", "primary": "Tanh", "secondary": "Sigmoid"}


@pytest.fixture(scope="module")
def nam_run(tmp_path_factory: pytest.TempPathFactory, signal: np.ndarray) -> dict[str, Any]:
    """Export fxclone models to .nam, load and run them with NAM; have NAM write its own."""
    if importlib.util.find_spec("nam") is None:
        pytest.skip("neural-amp-modeler is not installed (scripts/test.sh installs it)")
    tmp = tmp_path_factory.mktemp("nam")
    models = {n: _trained(n) for n in ("wavenet-standard", "wavenet-nano", "nam-lstm")}
    load = {}
    for name, model in models.items():
        path = tmp / f"{name}.nam"
        doc = model_to_nam(model, {"name": name}, loudness=name == "nam-lstm")
        path.write_text(json.dumps(doc))
        load[name] = str(path)
    np.save(tmp / "x.npy", signal)
    jobs = {
        "input": str(tmp / "x.npy"),
        "output": str(tmp / "out.npz"),
        "dir": str(tmp),
        "load": load,
        "loudness": ["nam-lstm"],
        "create": {
            "nam_wavenet": {"kind": "WaveNet", "config": _nam_feather()},
            "nam_gated": {"kind": "WaveNet", "config": _nam_feather(GATED)},
            "nam_lstm": {"kind": "LSTM", "hidden_size": 8, "num_layers": 2},
        },
    }
    (tmp / "jobs.json").write_text(json.dumps(jobs))
    proc = subprocess.run(
        [sys.executable, "-c", NAM_SCRIPT, str(tmp / "jobs.json")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return {"dir": tmp, "models": models, "nam": dict(np.load(tmp / "out.npz"))}


@pytest.mark.parametrize("name", ["wavenet-standard", "wavenet-nano", "nam-lstm"])
def test_nam_package_runs_exported_file_like_fxclone(
    nam_run: dict[str, Any], signal: np.ndarray, name: str
) -> None:
    ours = _run_after_silence(nam_run["models"][name], signal)
    theirs = nam_run["nam"][name]
    assert theirs.shape == ours.shape
    assert np.std(ours) > 1e-3  # a silent model would match anything
    assert np.max(np.abs(theirs - ours)) < TOL


def test_exported_loudness_is_nams_measure(nam_run: dict[str, Any]) -> None:
    doc = json.loads((nam_run["dir"] / "nam-lstm.nam").read_text())
    assert doc["version"] == "0.5.4" and doc["metadata"]["name"] == "nam-lstm"
    assert abs(doc["metadata"]["loudness"] - float(nam_run["nam"]["nam-lstm_loudness"])) < 1e-3
    assert 0.0 <= doc["metadata"]["gain"] <= 1.0


@pytest.mark.parametrize("name", ["nam_wavenet", "nam_gated"])
def test_import_of_nam_written_wavenet(
    nam_run: dict[str, Any], signal: np.ndarray, name: str
) -> None:
    model = import_nam(nam_run["dir"] / f"{name}.nam")
    assert model.config.layers[0].gated == (name == "nam_gated")
    assert np.max(np.abs(_run_after_silence(model, signal) - nam_run["nam"][name])) < TOL


def test_import_of_nam_written_lstm(nam_run: dict[str, Any], signal: np.ndarray) -> None:
    path = nam_run["dir"] / "nam_lstm.nam"
    model = import_nam(path)
    assert (model.config.hidden_size, model.config.num_layers, model.config.skip) == (8, 2, False)
    # NAM's file starts from the state its model settles to in silence; fxclone's import
    # starts from silence, so give the imported model that stored state to compare.
    w = np.asarray(json.loads(path.read_text())["weights"], np.float32)
    h, c, i = [], [], 0
    for n in range(2):
        i += 4 * 8 * ((1 if n == 0 else 8) + 8) + 32
        h.append(w[i : i + 8])
        c.append(w[i + 8 : i + 16])
        i += 16
    state = (torch.tensor(np.stack(h))[:, None], torch.tensor(np.stack(c))[:, None])
    with torch.no_grad():
        y, _ = model.step(torch.from_numpy(signal)[None, None], torch.zeros(1, 0), state)
    assert np.max(np.abs(y[0, 0].numpy() - nam_run["nam"]["nam_lstm"])) < TOL


@pytest.mark.parametrize("name", ["wavenet-lite", "nam-lstm"])
def test_nam_round_trip_through_saved_model(
    tmp_path: Path, signal: np.ndarray, name: str, no_loudness: None
) -> None:
    model = _trained(name)
    out = export_model(_saved(tmp_path, model), tmp_path / "m.nam", "nam")
    back = save_model(tmp_path / "back.safetensors", import_nam(out))
    reloaded = load_model(back).model
    assert reloaded.config == model.config
    assert np.array_equal(_run(reloaded, signal), _run(model, signal))


@pytest.fixture
def no_loudness(monkeypatch: pytest.MonkeyPatch) -> None:
    """Skip the seconds-long loudness measurement where a test does not look at it."""
    import fxclone.export.nam

    monkeypatch.setattr(fxclone.export.nam, "nam_loudness", lambda model: {})


def _saved(tmp_path: Path, model: EffectModel) -> Path:
    return save_model(tmp_path / "model.safetensors", model)


def test_nam_refusals() -> None:
    with pytest.raises(FxcloneError, match="knob"):
        model_to_nam(create_model("wavenet-nano", sample_rate=SR, knobs=(DRIVE,)))
    with pytest.raises(FxcloneError, match="rtneural"):
        model_to_nam(create_model("lstm", sample_rate=SR))
    doc = model_to_nam(create_model("wavenet-nano", sample_rate=SR), loudness=False)
    damaged = dict(doc, weights=doc["weights"][:-3])
    with pytest.raises(FxcloneError, match="weights"):
        nam_to_model(damaged)
    doc["config"]["layers"][0]["head1x1"] = {"active": True, "out_channels": 2, "groups": 1}
    with pytest.raises(FxcloneError, match="head1x1"):
        nam_to_model(doc)
    with pytest.raises(FxcloneError, match="LSTM"):
        nam_to_model({"architecture": "ConvNet", "config": {}, "weights": []})


# --------------------------------------------------------------------------------------------
# ONNX, checked with ONNX Runtime

ONNX_CASES = [("wavenet-nano", 0), ("wavenet-standard", 1), ("lstm", 1), ("gru", 0)]
ONNX_CASES += [("hammerstein-sqrt", 1)]  # its recursions as a prefix scan in the graph


@pytest.mark.parametrize(("name", "n_knobs"), ONNX_CASES, ids=[c[0] for c in ONNX_CASES])
def test_onnx_offline_and_streaming(
    tmp_path: Path, signal: np.ndarray, name: str, n_knobs: int
) -> None:
    ort = pytest.importorskip("onnxruntime")
    from fxclone.export.onnx import export_onnx, state_names

    model = _trained(name, (DRIVE,)[:n_knobs])
    knobs = np.full((1, n_knobs), 0.7, np.float32)
    ref = _run(model, signal, knobs)
    sess = ort.InferenceSession(
        str(export_onnx(model, tmp_path / "m.onnx")), providers=["CPUExecutionProvider"]
    )
    names = state_names(model)
    assert [i.name for i in sess.get_inputs()] == ["x"] + (["knobs"] if n_knobs else []) + names
    assert [o.name for o in sess.get_outputs()] == ["y"] + [f"{n}_out" for n in names]
    for block in (len(signal), 4096, 1000, 64, 1):
        length = 400 if block == 1 else len(signal)  # single samples: the first 400 (causal)
        state = [s.numpy() for s in model.init_state(1)]
        outs = []
        for i in range(0, length, block):
            feeds = {"x": signal[None, None, i : i + block], **dict(zip(names, state, strict=True))}
            if n_knobs:
                feeds["knobs"] = knobs
            y, *state = sess.run(None, feeds)
            outs.append(y[0, 0])
        assert np.max(np.abs(np.concatenate(outs) - ref[:length])) < TOL, block


# Families whose step is not PyTorch throughout: tracing would freeze their NumPy or compiled
# code into constants (a graph that ignores its input), so the export refuses them up front.
NO_ONNX = ["compressor", "pitch", "octaver", "tape", "splice", "ir", "rotary", "phaser", "ceq"]


@pytest.mark.parametrize("name", NO_ONNX)
def test_onnx_refuses_families_that_do_not_trace(tmp_path: Path, name: str) -> None:
    pytest.importorskip("onnx")
    from fxclone.export.onnx import export_onnx

    model = create_model(name, sample_rate=SR)
    assert model.onnx_refusal
    with pytest.raises(FxcloneError, match=f"{model.family} models do not export to ONNX"):
        export_onnx(model, tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()


def test_onnx_failures_are_one_clean_error(tmp_path: Path, capfd: pytest.CaptureFixture) -> None:
    """A family that fails in the exporter (the feed-forward WaveNet's unfold), or whose
    graph ONNX Runtime cannot run (the autoregressive mu-law WaveNet), gives an FxcloneError
    and no file; the exporter's dump of its graph stays off the terminal."""
    pytest.importorskip("onnxruntime")
    from fxclone.export.onnx import export_onnx
    from fxclone.models.presets import PRESETS

    cases = (("wavenet-ff", 16000, "cannot be traced"), ("mccool-wavenet-ar", SR, "does not run"))
    for name, rate, match in cases:  # (the feed-forward WaveNet at its native rate, unwrapped)
        model = create_model(name, sample_rate=rate, overrides=dict(PRESETS[name].tiny or {}))
        with pytest.raises(FxcloneError, match=match):
            export_onnx(model, tmp_path / f"{name}.onnx")
        assert not (tmp_path / f"{name}.onnx").exists()
    out, err = capfd.readouterr()
    assert "graph" not in out + err and len(out + err) < 200, (out + err)[:300]


# --------------------------------------------------------------------------------------------
# RTNeural JSON, checked against RTNeural's layer equations written out in numpy


def _sigmoid(v: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-v))


def _rtneural_eval(doc: dict[str, Any], x: np.ndarray, knobs: np.ndarray) -> np.ndarray:
    """RTNeural's per-sample forward (lstm.h, gru.h, dense.h) plus AIDA-X's in_skip."""
    layers = doc["layers"]
    inputs = np.concatenate([x[:, None], np.repeat(knobs[None], len(x), axis=0)], axis=1)
    assert doc["in_shape"][-1] == inputs.shape[1]
    seq = inputs.astype(np.float64)
    for layer in layers[:-1]:
        kernel, recurrent = (np.asarray(w, np.float64) for w in layer["weights"][:2])
        bias = np.asarray(layer["weights"][2], np.float64)
        hsz = layer["shape"][-1]
        h, c, out = np.zeros(hsz), np.zeros(hsz), []
        for v in seq:
            if layer["type"] == "lstm":  # kernel (in, 4H), gates i, f, c, o
                z = v @ kernel + h @ recurrent + bias
                i_, f_, g_, o_ = (z[k * hsz : (k + 1) * hsz] for k in range(4))
                c = _sigmoid(f_) * c + _sigmoid(i_) * np.tanh(g_)
                h = _sigmoid(o_) * np.tanh(c)
            else:  # gates z, r, c; bias[0] input bias, bias[1] recurrent bias
                wx, uh = v @ kernel, h @ recurrent
                z_ = _sigmoid(wx[:hsz] + uh[:hsz] + bias[0, :hsz] + bias[1, :hsz])
                r_ = _sigmoid(
                    wx[hsz : 2 * hsz]
                    + uh[hsz : 2 * hsz]
                    + bias[0, hsz : 2 * hsz]
                    + bias[1, hsz : 2 * hsz]
                )
                cand = np.tanh(
                    wx[2 * hsz :] + bias[0, 2 * hsz :] + r_ * (uh[2 * hsz :] + bias[1, 2 * hsz :])
                )
                h = (1 - z_) * cand + z_ * h
            out.append(h)
        seq = np.stack(out)
    dense = layers[-1]
    assert dense["type"] == "dense" and dense["activation"] == ""
    y = seq @ np.asarray(dense["weights"][0], np.float64) + np.asarray(dense["weights"][1])
    return y[:, 0] + (x if doc.get("in_skip", 0) == 1 else 0.0)


RT_CASES = [("lstm", 1, {}), ("gru", 0, {}), ("gru", 1, {"num_layers": 2, "skip": False})]


@pytest.mark.parametrize(
    ("name", "n_knobs", "over"), RT_CASES, ids=["lstm-knob", "gru", "gru-2layer"]
)
def test_rtneural_json_matches_model(
    signal: np.ndarray, name: str, n_knobs: int, over: dict
) -> None:
    model = _trained(name, (DRIVE,)[:n_knobs], **over)
    knobs = np.full((1, n_knobs), 0.3, np.float32)
    doc = json.loads(json.dumps(model_to_rtneural(model)))  # through JSON text
    assert ("in_skip" in doc) == model.config.skip
    x = signal[:3000]
    assert np.max(np.abs(_rtneural_eval(doc, x, knobs[0]) - _run(model, x, knobs))) < TOL


def test_rtneural_refuses_wavenet(tmp_path: Path) -> None:
    path = _saved(tmp_path, create_model("wavenet-nano", sample_rate=SR))
    with pytest.raises(FxcloneError, match="recurrent"):
        export_model(path, tmp_path / "m.json", "rtneural")
    with pytest.raises(FxcloneError, match="format"):
        export_model(path, tmp_path / "m.bin", None)


def test_impulse_response_exports_as_a_wav_and_only_as_that(tmp_path: Path) -> None:
    import soundfile as sf

    model = create_model("ir", sample_rate=SR, channels=2, overrides={"seconds": 0.01})
    with torch.no_grad():
        model.h.copy_(torch.randn_like(model.h) * 0.1)
    path = _saved(tmp_path, model)
    written = export_model(path, tmp_path / "response.wav")
    response, rate = sf.read(written, dtype="float32", always_2d=True)
    assert rate == SR and response.shape == (model.taps, 2)
    assert np.array_equal(response.T, model.h.detach().numpy())
    with pytest.raises(FxcloneError, match="--format wav"):
        export_model(path, tmp_path / "m.onnx")
    with pytest.raises(FxcloneError, match="name it"):
        export_model(path, tmp_path / "m.ir", "wav")
    with pytest.raises(FxcloneError, match="impulse responses"):
        export_model(_saved(tmp_path, create_model("wavenet-nano", sample_rate=SR)),
                     tmp_path / "w.wav")  # fmt: skip
    branched = create_model("ir", sample_rate=SR, overrides={"seconds": 0.01, "branches": (3.0,)})
    with pytest.raises(FxcloneError, match="saturating branches"):
        export_model(_saved(tmp_path, branched), tmp_path / "b.wav")


# --------------------------------------------------------------------------------------------
# fine-tuning: train(init=...)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from fxclone.dataset import GenerateConfig, generate_dataset
    from fxclone.rendering import render_dataset

    root = tmp_path_factory.mktemp("init") / "data"
    cfg = GenerateConfig(
        sample_rate=16000, train_seconds=2, val_seconds=1, test_seconds=1, segment_seconds=1
    )
    generate_dataset(root, cfg)
    render_dataset(root, "lowpass", {"cutoff": 800.0})
    return root


class _Stop(Exception):
    pass


@pytest.mark.parametrize("suffix", [".safetensors", ".nam"])
def test_train_init_starts_from_given_weights(
    data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, suffix: str, no_loudness: None
) -> None:
    import fxclone.training
    from fxclone.journey import train

    source = _trained("wavenet-nano")
    source.sample_rate = 16000
    init = _saved(tmp_path, source)
    if suffix == ".nam":
        init = export_model(init, tmp_path / "init.nam", "nam")
    seen: dict[str, torch.Tensor] = {}

    def fake_fit(model: EffectModel, *args: Any, **kwargs: Any) -> None:
        seen.update({k: v.clone() for k, v in model.state_dict().items()})
        raise _Stop

    monkeypatch.setattr(fxclone.training, "fit", fake_fit)
    with pytest.raises(_Stop):
        train(
            data, tmp_path / "out.safetensors", {"model": "wavenet-nano"}, init=init, progress=False
        )
    expected = source.state_dict()
    assert seen.keys() == expected.keys()
    assert all(torch.equal(seen[k], expected[k]) for k in expected)
    with pytest.raises(FxcloneError, match="architecture"):
        train(
            data, tmp_path / "o2.safetensors", {"model": "wavenet-lite"}, init=init, progress=False
        )


def test_fine_tuning_never_returns_worse_weights_than_it_started_from(
    data: Path, tmp_path: Path
) -> None:
    """A rate far too high wrecks the model: the starting weights come back, with a note."""
    from fxclone.errors import FxcloneNotice
    from fxclone.journey import train

    start = tmp_path / "start.safetensors"
    settings = {"model": "wavenet-nano", "max_epochs": 6, "windows_per_epoch": 16,
                "segment_samples": 2048, "batch_size": 4, "learning_rate": 5e-3}  # fmt: skip
    first = train(data, start, settings, progress=False)
    wreck = {**settings, "max_epochs": 2, "learning_rate": 3.0, "divergence_guard": False}
    with pytest.warns(FxcloneNotice, match="did not beat the starting weights"):
        summary = train(data, tmp_path / "tuned.safetensors", wreck, init=start, progress=False)
    assert summary["start_val_esr"] == pytest.approx(first["best_val_esr"], rel=1e-3)
    assert summary["best_val_esr"] == summary["start_val_esr"]
    kept = load_model(tmp_path / "tuned.safetensors").model.state_dict()
    original = load_model(start).model.state_dict()
    assert all(torch.equal(kept[k], original[k]) for k in original)


def test_initialise_from_checks_sample_rate(tmp_path: Path) -> None:
    path = _saved(tmp_path, create_model("nam-lstm", sample_rate=SR))
    with pytest.raises(FxcloneError, match="sample rate"):
        initialise_from(create_model("nam-lstm", sample_rate=44100), path)
