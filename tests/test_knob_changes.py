"""Turning a knob while streaming: no click, and the same output whatever the block sizes."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from cli_harness import assert_clean_failure, no_output, write_wav
from fxclone.errors import FxcloneError
from fxclone.models import KnobSpec, create_model
from fxclone.models.wavenet import film_scale_mask
from fxclone.streaming import StreamProcessor

SR = 48000
KNOBS = (KnobSpec("drive", 0.0, 40.0, "dB"), KnobSpec("level", -24.0, 6.0, "dB"))
CHANGE = SR // 2 + 27  # a sine peak of the 440 Hz test tone: where a jump shows most
RAMP = 0.05  # the default ramp


@pytest.fixture(scope="module")
def model():
    """A knob-conditioned WaveNet whose knobs change its gain and shape strongly: random
    FiLM scales, the level knob a 24-dB output gain; no biases and no FiLM shifts, so the
    model is odd and its output has no DC for a gain ramp to move (a trained model's is
    small; a random one's would be most of what a ramp changes)."""
    torch.manual_seed(0)
    net = create_model("wavenet-nano", sample_rate=SR, knobs=KNOBS).eval()
    assert net.film is not None and net.film_linear is not None
    shifts = ~torch.tensor(film_scale_mask(net._film_sizes))
    with torch.no_grad():
        for param in net.film.parameters():
            param.normal_(0.0, 0.6)
        net.film[2].weight[shifts] = 0.0
        net.film[2].bias[shifts] = 0.0
        for name, param in net.named_parameters():
            if name.endswith("bias") and not name.startswith("film"):
                param.zero_()
        net.film_linear.weight.zero_()
        net.film_linear.weight[-1, 1] = math.log(16.0)
    return net


def _tone() -> np.ndarray:
    t = np.arange(SR) / SR
    return (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None]


def _stream(model, sizes: list[int], ramp: float, reference: bool = False) -> np.ndarray:
    proc = StreamProcessor(model, {"drive": 0.0, "level": -24.0}, reference=reference)
    x = _tone()
    outs, i, k, changed = [], 0, 0, False
    while i < x.shape[1]:
        n = sizes[k % len(sizes)]
        if not changed and i <= CHANGE < i + n:  # the change lands at CHANGE exactly
            outs.append(proc.process(x[:, i:CHANGE]))
            proc.set_knobs({"drive": 40.0, "level": 6.0}, ramp_seconds=ramp)
            i, changed = CHANGE, True
        else:
            outs.append(proc.process(x[:, i : i + n]))
            i += n
            k += 1
    return np.concatenate(outs, axis=1)[0]


def _around(y: np.ndarray) -> float:
    """Largest sample-to-sample step from just before the change to after its ramp."""
    return float(np.abs(np.diff(y))[CHANGE - 64 : CHANGE + int(RAMP * SR) + 64].max())


def _own_steps(model) -> float:
    """Largest sample-to-sample step of the output held at each setting along the ramp:
    what the signal itself does, without a change."""
    steps = []
    for frac in np.linspace(0.0, 1.0, 21):
        setting = {"drive": 40.0 * frac, "level": -24.0 + 30.0 * frac}
        y = StreamProcessor(model, setting).process(_tone())[0]
        steps.append(np.abs(np.diff(y[SR // 10 :])).max())
    return float(max(steps))


def test_a_knob_change_adds_no_discontinuity(model) -> None:
    smooth = _stream(model, [512], RAMP)
    before, after = np.abs(smooth[SR // 10 : SR // 2 - 2000]), np.abs(smooth[-20000:])
    ratio = after.max() / before.max()
    assert max(ratio, 1 / ratio) > 4  # the knobs really change the output level
    own = _own_steps(model)
    assert _around(smooth) <= 1.05 * own
    assert _around(_stream(model, [512], 0.0)) > 3 * own  # without the ramp it clicks


@pytest.mark.parametrize("sizes", [[1], [7], [64], [4096], [5, 300, 64, 1, 2048]])
def test_a_knob_ramp_does_not_depend_on_block_sizes(model, sizes) -> None:
    ref = _stream(model, [SR], RAMP)
    y = _stream(model, sizes, RAMP)
    assert np.max(np.abs(y - ref)) <= 1e-5


def test_compiled_and_reference_paths_agree_through_a_ramp(model) -> None:
    fast = _stream(model, [64], RAMP)
    ref = _stream(model, [64], RAMP, reference=True)
    assert np.max(np.abs(fast - ref)) <= 1e-5


def test_without_a_change_nothing_moves(model) -> None:
    x = np.random.default_rng(3).standard_normal((1, 5000)).astype(np.float32) * 0.3
    a = StreamProcessor(model, {"drive": 10.0})
    b = StreamProcessor(model, {"drive": 10.0})
    b.set_knobs({}, ramp_seconds=RAMP)  # the same setting: a ramp from it to itself
    assert np.array_equal(a.process(x), b.process(x))


def test_bad_knob_changes_are_refused(model) -> None:
    proc = StreamProcessor(model, {"drive": 10.0})
    with pytest.raises(FxcloneError, match="outside its range"):
        proc.set_knobs({"drive": 99.0})
    with pytest.raises(FxcloneError, match="unknown knob"):
        proc.set_knobs({"gain": 1.0})
    with pytest.raises(FxcloneError, match="ramp_seconds"):
        proc.set_knobs({"drive": 1.0}, ramp_seconds=-1)


@pytest.fixture(scope="module")
def saved(model, tmp_path_factory) -> tuple[Path, Path]:
    from fxclone.modelfile import save_model

    folder = tmp_path_factory.mktemp("automation")
    path = save_model(folder / "model.safetensors", model)
    return path, write_wav(folder / "tone.wav", _tone())


def test_apply_follows_an_automation_file(saved, tmp_path) -> None:
    from fxclone.journey import apply

    model_path, tone = saved
    csv = tmp_path / "auto.csv"
    # The header, a comment, and both changes at the sample the streaming test uses.
    csv.write_text(f"time,knob,value\n# up\n{CHANGE / SR!r},drive,40\n{CHANGE / SR!r},level,6\n")
    out = apply(model_path, tone, tmp_path / "out.wav", {"drive": 0.0, "level": -24.0},
                block_size=1000, progress=None, automation=csv, ramp_ms=RAMP * 1000)  # fmt: skip
    y = sf.read(out, dtype="float32")[0]
    from fxclone.modelfile import load_model

    expected = _stream(load_model(model_path).model, [4096], RAMP)
    assert np.max(np.abs(y - expected)) <= 1e-5


@pytest.mark.parametrize(
    "text, needle",
    [
        ("0.5,drive\n", "expected 3 columns"),
        ("soon,drive,3\n", "must be numbers"),
        ("-1,drive,3\n", "0 or more seconds"),
        ("0.5,gain,3\n", "unknown knob"),
        ("0.5,drive,99\n", "outside its range"),
        ("time,knob,value\n", "no knob changes"),
    ],
)
def test_bad_automation_files_fail_cleanly(cli, saved, tmp_path, text, needle) -> None:
    model_path, tone = saved
    csv = tmp_path / "auto.csv"
    csv.write_text(text)
    out = tmp_path / "out.wav"
    proc = cli("apply", str(model_path), str(tone), str(out), "--automation", str(csv),
               cwd=tmp_path)  # fmt: skip
    assert_clean_failure(proc, needle, "auto.csv")
    no_output(out)
