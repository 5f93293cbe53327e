"""ONNX export: one streaming step of any fxclone model, with its state as explicit tensors.

The graph computes ``model.step``: inputs ``x`` ``(batch, channels, block)`` float32, ``knobs``
``(batch, n_knobs)`` (only when the model has knobs) and the state tensors; outputs ``y``
``(batch, channels, block)`` and the new state, each named ``<state>_out``. The batch and block
axes are dynamic, so a host can run any block size (1 sample included) and feed each output
state back as the next call's input; zeros are the initial state (silence in the past).

State names: WaveNet ``past_0 .. past_{L-1}`` ``(batch, channels_l, (kernel_size - 1) *
dilation_l)``, the last inputs of each layer; LSTM ``h`` and ``c``, GRU ``h``, each
``(num_layers, batch, hidden_size)``; ``hammerstein`` ``past_0 .. past_3``, its filters'
histories (see docs/export.md). The file's metadata properties carry the sample rate,
the knobs (names, ranges, units) and the state shapes as JSON.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from fxclone.audio import atomic_path
from fxclone.errors import FxcloneError
from fxclone.models.base import EffectModel
from fxclone.models.rnn import RecurrentModel

OPSET = 17
VERIFY_TOLERANCE = 1e-4


def state_names(model: EffectModel) -> list[str]:
    """Names of the state tensors, in ``model.init_state`` order."""
    if isinstance(model, RecurrentModel):
        return ["h", "c"] if model.config.cell == "lstm" else ["h"]
    return [f"past_{i}" for i in range(len(model.init_state(1)))]


def _state_batch_axis(model: EffectModel) -> int:
    return 1 if isinstance(model, RecurrentModel) else 0


class _Step(nn.Module):
    """``(x, [knobs], *state) -> (y, *new_state)``: the traceable face of ``model.step``."""

    def __init__(self, model: EffectModel) -> None:
        super().__init__()
        self.model = model
        self.has_knobs = model.n_knobs > 0

    def forward(self, x: Tensor, *rest: Tensor) -> tuple[Tensor, ...]:
        if self.has_knobs:
            knobs, state = rest[0], rest[1:]
        else:
            knobs, state = x.new_zeros((x.shape[0], 0)), rest
        y, new_state = self.model.step(x, knobs, tuple(state))
        return (y, *new_state)


def export_onnx(
    model: EffectModel, path: str | os.PathLike[str], metadata: dict[str, Any] | None = None
) -> Path:
    """Write ``model`` as an ONNX streaming step; verified with onnxruntime when installed."""
    try:
        import onnx
    except ImportError:
        raise FxcloneError(
            "ONNX export needs the onnx package; install it with pip install 'fxclone[export]'"
        ) from None
    if model.onnx_refusal:
        raise FxcloneError(
            f"{model.family} models do not export to ONNX: {model.onnx_refusal}. Run the model with"
            " fxclone apply, or train a family that exports (wavenet, lstm, gru)"
        )
    model = model.eval()
    names = state_names(model)
    state = model.init_state(1)
    x = torch.zeros(1, model.channels, 64)
    args: tuple[Tensor, ...] = (x,)
    inputs = ["x"]
    dynamic: dict[str, dict[int, str]] = {
        "x": {0: "batch", 2: "block"},
        "y": {0: "batch", 2: "block"},
    }
    if model.n_knobs:
        args += (torch.full((1, model.n_knobs), 0.5),)
        inputs.append("knobs")
        dynamic["knobs"] = {0: "batch"}
    args += tuple(state)
    axis = _state_batch_axis(model)
    for n in names:
        dynamic[n] = dynamic[f"{n}_out"] = {axis: "batch"}
    p = Path(path)
    with atomic_path(p) as tmp:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            # The TorchScript-based exporter: it needs no extra packages and keeps the block
            # axis dynamic; torch 2.13 still ships it.
            try:
                with _quiet_output():  # the exporter prints its whole graph on a failure
                    torch.onnx.export(
                        _Step(model),
                        args,
                        str(tmp),
                        input_names=inputs + names,
                        output_names=["y"] + [f"{n}_out" for n in names],
                        dynamic_axes=dynamic,
                        opset_version=OPSET,
                        dynamo=False,
                    )
            except Exception as exc:  # tracing failures surface as many exception types
                raise FxcloneError(
                    f"{model.family} models cannot be traced to ONNX ({_first_line(exc)});"
                    " export a model of another family, or run it with fxclone apply"
                ) from None
            finally:
                model.eval()  # the exporter can leave modules in training mode
        proto = onnx.load(str(tmp))
        props = {
            "fxclone.sample_rate": str(model.sample_rate),
            "fxclone.channels": str(model.channels),
            "fxclone.family": model.family,
            "fxclone.config": json.dumps(model.describe()["config"]),
            "fxclone.knobs": json.dumps([k.to_dict() for k in model.knobs]),
            "fxclone.state": json.dumps(
                [
                    {"name": n, "shape": list(s.shape), "batch_axis": axis}
                    for n, s in zip(names, state, strict=True)
                ]
            ),
            **{f"fxclone.{k}": str(v) for k, v in (metadata or {}).items() if v is not None},
        }
        for key, value in props.items():
            entry = proto.metadata_props.add()
            entry.key, entry.value = key, value
        proto.doc_string = "fxclone streaming step: (x, [knobs], *state) -> (y, *state_out)"
        onnx.save(proto, str(tmp))
        try:
            err = verify_onnx(model, tmp)
        except Exception as exc:  # ONNX Runtime rejects a graph traced from non-torch code
            raise FxcloneError(
                f"the ONNX graph of this {model.family} model does not run"
                f" ({_first_line(exc)}); run the model with fxclone apply, or export a model"
                " of another family"
            ) from None
        if err is not None and not err <= VERIFY_TOLERANCE:
            raise FxcloneError(
                f"the ONNX graph does not reproduce the model (max error {err:.3g}); "
                "this model cannot be exported to ONNX with this PyTorch"
            )
    return p


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:120]


@contextlib.contextmanager
def _quiet_output() -> Iterator[None]:
    """Route the process's stdout and stderr (file descriptors 1 and 2, where the exporter's
    C++ logging writes) to a temporary file, discarded, while inside; exceptions pass as
    usual."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved: list[int] = []
    try:
        for fd in (1, 2):
            saved.append(os.dup(fd))
    except OSError:  # no such descriptors (a detached process): nothing to quiet
        for fd in saved:
            os.close(fd)
        yield
        return
    with tempfile.TemporaryFile() as sink:
        try:
            os.dup2(sink.fileno(), 1)
            os.dup2(sink.fileno(), 2)
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)


def verify_onnx(model: EffectModel, path: str | os.PathLike[str]) -> float | None:
    """Max abs difference between ONNX Runtime and ``model`` on the reference probe, or None
    when onnxruntime is not installed. Runs the probe as two blocks to exercise the state."""
    try:
        import onnxruntime as ort
    except ImportError:
        return None
    from fxclone.modelfile import reference_input

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = reference_input(model.sample_rate, model.channels, 2048)
    knobs = torch.full((1, model.n_knobs), 0.5)
    with torch.no_grad():
        ref = model(x, knobs).numpy()
    state = [s.numpy() for s in model.init_state(1)]
    names = state_names(model)
    outs = []
    for block in (x[..., :1000], x[..., 1000:]):
        feeds: dict[str, np.ndarray] = {"x": block.numpy(), **dict(zip(names, state, strict=True))}
        if model.n_knobs:
            feeds["knobs"] = knobs.numpy()
        y, *state = sess.run(None, feeds)
        outs.append(y)
    return float(np.max(np.abs(np.concatenate(outs, axis=2) - ref)))
