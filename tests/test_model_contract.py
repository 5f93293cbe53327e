"""Contract tests that every registered model must pass (loop over the registry)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fxclone.errors import FxcloneError
from fxclone.modelfile import load_model, save_model
from fxclone.models import PRESETS, create_model
from fxclone.models.base import EffectModel
from fxclone.models.registry import FAMILIES
from trained import SR, briefly_trained

# Presets whose tiny test size is the same model (kth-lstm and kth-lstm-reduced) run once.
_TINY_TWINS = {"kth-lstm-reduced"}
# Families that are not knob-conditioned (the impulse response) run without knobs only.
CASES = [
    (name, n)
    for name in PRESETS
    if name not in _TINY_TWINS
    for n in ((0, 2) if FAMILIES[PRESETS[name].family].takes_knobs else (0,))
]


@pytest.fixture(scope="module", params=CASES, ids=[f"{n}-knobs{k}" for n, k in CASES])
def case(request: pytest.FixtureRequest) -> tuple[EffectModel, torch.Tensor, torch.Tensor]:
    name, n_knobs = request.param
    model = briefly_trained(name, n_knobs)
    g = torch.Generator().manual_seed(1)
    x = 0.4 * torch.randn(2, 1, 5003, generator=g)
    knobs = torch.rand(2, n_knobs, generator=g)
    return model, x, knobs


def _stream(model: EffectModel, x: torch.Tensor, knobs: torch.Tensor, sizes) -> torch.Tensor:
    state = model.init_state(x.shape[0])
    outs, i, k = [], 0, 0
    while i < x.shape[2]:
        b = sizes[k % len(sizes)]
        y, state = model.step(x[:, :, i : i + b], knobs, state)
        assert all(isinstance(s, torch.Tensor) for s in state)
        outs.append(y)
        i, k = i + b, k + 1
    return torch.cat(outs, dim=2)


@pytest.mark.parametrize(
    "sizes",
    [[1], [7], [64], [4096], [1, 300, 17, 64, 4096, 2, 999]],
    ids=["b1", "b7", "b64", "b4096", "varying"],
)
@torch.no_grad()
def test_streaming_equals_offline(case, sizes) -> None:
    model, x, knobs = case
    # Tiny blocks step slowly in Python; shorter inputs still cycle every state buffer.
    x = x[:, :, : {1: 701, 7: 2101}.get(sizes[0], x.shape[2])]
    offline = model(x, knobs)
    streamed = _stream(model, x, knobs, sizes)
    assert streamed.shape == offline.shape == x.shape
    assert float((streamed - offline).abs().max()) <= 1e-5
    assert float(offline.abs().max()) > 1e-4  # a model that outputs nothing would pass trivially


@torch.no_grad()
def test_causal_ignores_future(case) -> None:
    """Output n depends on input <= n only; a look-ahead model outputs late instead."""
    model, x, knobs = case
    cut = 2500
    changed = x.clone()
    changed[:, :, cut:] = torch.randn_like(changed[:, :, cut:])
    a, b = model(x, knobs), model(changed, knobs)
    # FFT convolution (the impulse-response model) mixes rounding error across the buffer:
    # allow float32 rounding, far below any real dependence on the future.
    assert float((a[:, :, :cut] - b[:, :, :cut]).abs().max()) <= 1e-6
    assert float((a[:, :, cut:] - b[:, :, cut:]).abs().max()) > 1e-4


@torch.no_grad()
def test_batch_items_independent(case) -> None:
    model, x, knobs = case
    both = model(x, knobs)
    for i in range(x.shape[0]):
        alone = model(x[i : i + 1], knobs[i : i + 1])
        assert float((alone - both[i : i + 1]).abs().max()) <= 1e-5


@torch.no_grad()
def test_knobs_change_output(case) -> None:
    model, x, knobs = case
    if model.n_knobs == 0:
        with pytest.raises(ValueError):
            model(x, torch.zeros(2, 1))
        return
    other = model(x, 1.0 - knobs)
    assert float((other - model(x, knobs)).abs().max()) > 1e-6
    with pytest.raises(ValueError):
        model(x, None)


def test_save_load_reproduces(case, tmp_path) -> None:
    model, x, knobs = case
    path = save_model(tmp_path / "m.safetensors", model, training={"note": "contract"})
    loaded = load_model(path)
    with torch.no_grad():
        assert torch.equal(loaded.model(x, knobs), model(x, knobs))
    meta = loaded.metadata
    assert meta["family"] == model.family
    assert meta["receptive_field"] == model.receptive_field
    assert meta["latency_samples"] == model.latency_samples
    assert [k["name"] for k in meta["knobs"]] == [k.name for k in model.knobs]
    assert meta["sample_rate"] == SR


def test_saved_file_is_not_pickle(tmp_path) -> None:
    path = save_model(tmp_path / "m.safetensors", create_model("lstm", sample_rate=SR))
    head = path.read_bytes()[:16]
    assert not head.startswith(b"\x80")  # pickle protocol marker
    assert b"PK" not in head[:4]  # nor a torch zip archive


@pytest.mark.parametrize(
    "damage",
    ["truncate", "random", "empty", "future", "shape"],
)
def test_damaged_model_files_refused(tmp_path, damage) -> None:
    import json

    from safetensors.torch import load_file, save_file

    good = save_model(tmp_path / "m.safetensors", create_model("gru", sample_rate=SR))
    bad = tmp_path / "bad.safetensors"
    data = good.read_bytes()
    if damage == "truncate":
        bad.write_bytes(data[: len(data) // 2])
    elif damage == "random":
        bad.write_bytes(np.random.default_rng(0).bytes(4096))
    elif damage == "empty":
        bad.write_bytes(b"")
    else:
        from safetensors import safe_open

        with safe_open(str(good), "pt") as f:
            meta = json.loads(f.metadata()["fxclone"])
        tensors = load_file(str(good))
        if damage == "future":
            meta["format_version"] = 99
        else:
            tensors["head.weight"] = torch.zeros(3, 3)
        save_file(tensors, str(bad), metadata={"fxclone": json.dumps(meta)})
    with pytest.raises(FxcloneError, match="bad.safetensors"):
        load_model(bad)


def test_registry_rejects_unknown() -> None:
    with pytest.raises(FxcloneError, match="wavenet-standard"):
        create_model("no-such-model", sample_rate=SR)
    with pytest.raises(FxcloneError, match="unknown"):
        create_model("lstm", sample_rate=SR, overrides={"hiden_size": 3})


def test_nam_standard_size() -> None:
    model = create_model("wavenet-standard", sample_rate=SR)
    # NAM counts 13,802 weights for the standard WaveNet: ours plus its stored head_scale.
    assert model.num_parameters() + 1 == 13802
    assert model.receptive_field == 4093
