"""The model contract every family implements.

Shapes: audio is ``(batch, channels, samples)``; knobs are ``(batch, n_knobs)`` holding values
already normalised to [0, 1] with the ranges in :attr:`EffectModel.knobs` (``n_knobs`` may be 0).

Every model offers two equivalent ways to run:

* ``forward(x, knobs)`` — offline, on a whole buffer, starting from silence;
* ``step(x_block, knobs, state) -> (y_block, state)`` — streaming, with all memory held in
  ``state``, a tuple of tensors created by ``init_state(batch)``. No Python-side buffers, so the
  state can become ONNX inputs/outputs.

Running ``step`` over consecutive blocks from ``init_state`` gives the same output as ``forward``
on the concatenated blocks (to float tolerance), for any block sizes.

Latency: a model that looks ``L = latency_samples`` samples ahead (non-causal frames or windows)
outputs at index ``n`` its estimate of the wet sample ``n - L``, in ``forward`` and ``step``
alike, so it can stream. Training, evaluation and ``apply`` compensate: the output is compared
with the target ``L`` samples earlier, and files are padded with ``L`` zeros at the end.
"""

from __future__ import annotations

import dataclasses
import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from torch import Tensor, nn

from fxclone.errors import FxcloneError

State = tuple[Tensor, ...]
# Training or validation items: (dry, wet, knobs), float32 (channels, samples) audio and the
# normalised knob vector (n_knobs,).
Items = Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class KnobSpec:
    """A knob a model is conditioned on: name, unit and the range that maps to [0, 1]."""

    name: str
    minimum: float
    maximum: float
    unit: str = ""
    log_scale: bool = False

    def normalise(self, value: float) -> float:
        """Map a knob value in its unit to [0, 1] (geometrically for log-scale knobs)."""
        if self.maximum == self.minimum:
            return 0.0
        if self.log_scale:
            lo, hi = math.log(self.minimum), math.log(self.maximum)
            return (math.log(value) - lo) / (hi - lo)
        return (value - self.minimum) / (self.maximum - self.minimum)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> KnobSpec:
        return config_from_dict(cls, data, "knob")


def config_from_dict(cls: type, data: Mapping[str, Any], what: str) -> Any:
    """Build a frozen dataclass from a mapping, refusing unknown keys with a clear error."""
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise FxcloneError(
            f"unknown {what} key(s) {', '.join(unknown)}; valid keys are {', '.join(sorted(names))}"
        )
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name in data:
            value = data[f.name]
            # JSON gives lists; configs are frozen and hashable, so store tuples.
            if isinstance(value, list):
                value = tuple(tuple(v) if isinstance(v, list) else v for v in value)
            kwargs[f.name] = value
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise FxcloneError(f"invalid {what} configuration: {exc}") from None


@dataclass(frozen=True)
class Stage:
    """One stage of a model's training protocol (most models have one: supervised training).

    Each stage is trained as its own run, with a fresh Adam optimiser, on ``budget`` of the
    run's epochs and minutes, and keeps its best checkpoint by its own validation loss.

    * ``data``: ``"pairs"`` trains on (dry, wet) windows; ``"autoencoder"`` pools dry and wet
      windows and makes each its own target (unsupervised pretraining).
    * ``forward(model, x, knobs, target)`` gives what ``loss`` compares with the target;
      default ``model(x, knobs)``. ``target`` (the whole window, aligned with ``x``) is there
      for teacher forcing only. The result's last axis is time and is cropped like the
      audio, so logits ``(batch, classes, samples)`` work too.
    * ``loss(estimate, target)``: default, the training config's loss (ESR + pre-emphasised
      ESR, optionally MRSTFT); validation then scores ESR on whole files as usual.
    * ``parameters(model)``: what this stage trains; default every parameter.
    * ``lr_scale``: the stage's learning rate is the configured one times this.
    """

    name: str = "supervised"
    data: str = "pairs"
    forward: Callable[[Any, Tensor, Tensor, Tensor], Tensor] | None = None
    loss: Callable[[Tensor, Tensor], Tensor] | None = None
    parameters: Callable[[Any], Iterable[nn.Parameter]] | None = None
    lr_scale: float = 1.0
    budget: float = 1.0

    def __post_init__(self) -> None:
        if self.data not in ("pairs", "autoencoder"):
            raise ValueError(f"stage data must be 'pairs' or 'autoencoder', not {self.data!r}")


class EffectModel(nn.Module, ABC):
    """Base class of every model family.

    Subclasses set ``family`` and ``config_class`` and implement ``forward``,
    ``init_state`` and ``step``. ``latency_samples`` is the look-ahead a model needs (0 for
    causal models); ``receptive_field`` is how many samples of the past (including the current
    one) influence an output sample (``math.inf`` style models report a practical bound).
    """

    family: ClassVar[str] = ""
    config_class: ClassVar[type] = object
    # The rate the architecture was designed for (e.g. 16 kHz for the thesis models); at a
    # higher rate the registry wraps the model in an integer-factor resampler (models/resample).
    native_sample_rate: ClassVar[int | None] = None
    # False for families that cannot be conditioned on knobs (they refuse knob specs).
    takes_knobs: ClassVar[bool] = True
    # True for models holding an oscillator (or other state, such as a divider's parity)
    # that runs on from the start of a stream: a dataset split (rendered as one stream) is
    # then validated and scored as one stream.
    free_running: ClassVar[bool] = False
    # Why the family has no ONNX graph (its step runs compiled or NumPy code, which tracing
    # would freeze into constants, or operations opset 17 lacks); None: it traces.
    onnx_refusal: ClassVar[str | None] = None

    def __init__(
        self,
        config: Any,
        *,
        sample_rate: int,
        knobs: Sequence[KnobSpec] = (),
        channels: int = 1,
    ) -> None:
        super().__init__()
        self.config = config
        self.sample_rate = int(sample_rate)
        self.knobs: tuple[KnobSpec, ...] = tuple(knobs)
        self.channels = int(channels)

    @property
    def n_knobs(self) -> int:
        return len(self.knobs)

    @property
    @abstractmethod
    def receptive_field(self) -> int:
        """Samples of past input (including the current sample) that affect one output."""

    @property
    def latency_samples(self) -> int:
        """Samples of future input an output needs; 0 for causal models."""
        return 0

    @abstractmethod
    def init_state(self, batch_size: int) -> State:
        """Fresh streaming state (silence in the past) for ``batch_size`` streams."""

    @abstractmethod
    def step(self, x: Tensor, knobs: Tensor, state: State) -> tuple[Tensor, State]:
        """Process one block ``(batch, channels, samples)``; return output and new state."""

    def forward(self, x: Tensor, knobs: Tensor | None = None) -> Tensor:
        """Offline processing of ``(batch, channels, samples)`` from silence."""
        knobs = self.check_inputs(x, knobs)
        y, _ = self.step(x, knobs, self.init_state(x.shape[0]))
        return y

    def check_inputs(self, x: Tensor, knobs: Tensor | None) -> Tensor:
        """Validate shapes; return a ``(batch, n_knobs)`` knob tensor (empty if none)."""
        if x.ndim != 3 or x.shape[1] != self.channels:
            raise ValueError(
                f"expected audio of shape (batch, {self.channels}, samples), got {tuple(x.shape)}"
            )
        if knobs is None:
            if self.n_knobs:
                raise ValueError(f"this model needs {self.n_knobs} knob value(s)")
            return x.new_zeros((x.shape[0], 0))
        if knobs.shape != (x.shape[0], self.n_knobs):
            raise ValueError(
                f"expected knobs of shape ({x.shape[0]}, {self.n_knobs}), got {tuple(knobs.shape)}"
            )
        return knobs

    def training_stages(self) -> tuple[Stage, ...]:
        """The model's training protocol; default: one supervised stage."""
        return (Stage(),)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    def describe(self) -> dict[str, Any]:
        """Architecture summary recorded in saved models and printed by ``fxclone info``."""
        return {
            "family": self.family,
            "config": config_to_dict(self.config),
            "sample_rate": self.sample_rate,
            "channels": self.channels,
            "knobs": [k.to_dict() for k in self.knobs],
            "receptive_field": self.receptive_field,
            "latency_samples": self.latency_samples,
            "parameters": self.num_parameters(),
        }


def config_to_dict(config: Any) -> dict[str, Any]:
    """A JSON-ready dict of a (nested) config dataclass."""
    return json_ready(dataclasses.asdict(config))


def json_ready(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(v) for v in value]
    return value


def broadcast_knobs(knobs: Tensor, samples: int) -> Tensor:
    """``(batch, n_knobs)`` -> ``(batch, n_knobs, samples)`` without copying."""
    return knobs[:, :, None].expand(-1, -1, samples)


__all__ = [
    "EffectModel",
    "KnobSpec",
    "Stage",
    "State",
    "broadcast_knobs",
    "config_from_dict",
    "config_to_dict",
]
