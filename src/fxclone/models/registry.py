"""The one registry of model families and named presets.

A *family* is a model class (one file each); a *preset* is a family plus a configuration
with a name users type (``fxclone train --model wavenet-standard``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from fxclone.errors import FxcloneError
from fxclone.models.base import EffectModel, KnobSpec
from fxclone.models.resample import ResampledModel, resampling_factor
from fxclone.models.rnn import RecurrentModel, RNNConfig
from fxclone.models.wavenet import LayerArrayConfig, WaveNet, WaveNetConfig

FAMILIES: dict[str, type[EffectModel]] = {
    WaveNet.family: WaveNet,
    RecurrentModel.family: RecurrentModel,
    # --- seed families: McCool, KTH, micro-TCN ---
    # --- end seed families ---
    # --- thesis families: Martinez Ramirez ---
    # --- end thesis families ---
}


@dataclass(frozen=True)
class Preset:
    """A named configuration of a family."""

    name: str
    family: str
    config: Any
    description: str
    # Training settings this model's authors used (window length, batch, learning rate),
    # applied where the user's settings are silent.
    train_defaults: Mapping[str, Any] = field(default_factory=dict)
    # Config overrides giving a tiny model of the same family, for the contract tests.
    tiny: Mapping[str, Any] = field(default_factory=dict)


def _nam_small(channels: int, head: int) -> WaveNetConfig:
    """NAM's lite/feather/nano layout: 7 + 13 layers, two arrays."""
    return WaveNetConfig(
        layers=(
            LayerArrayConfig(channels=channels, head_size=head, dilations=(1, 2, 4, 8, 16, 32, 64)),
            LayerArrayConfig(
                channels=head,
                head_size=1,
                head_bias=True,
                dilations=(128, 256, 512, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512),
            ),
        )
    )


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset(
            "wavenet-standard",
            "wavenet",
            WaveNetConfig(),
            "NAM standard WaveNet: 16/8 channels, kernel 3, dilations 1..512 twice",
        ),
        Preset("wavenet-lite", "wavenet", _nam_small(12, 6), "NAM lite WaveNet: 12/6 channels"),
        Preset("wavenet-feather", "wavenet", _nam_small(8, 4), "NAM feather WaveNet: 8/4 channels"),
        Preset("wavenet-nano", "wavenet", _nam_small(4, 2), "NAM nano WaveNet: 4/2 channels"),
        Preset(
            "lstm",
            "rnn",
            RNNConfig(cell="lstm", hidden_size=32, skip=True),
            "Wright et al. LSTM, 32 units, input skip",
        ),
        Preset(
            "gru",
            "rnn",
            RNNConfig(cell="gru", hidden_size=32, skip=True),
            "GRU, 32 units, input skip",
        ),
        Preset(
            "nam-lstm",
            "rnn",
            RNNConfig(cell="lstm", hidden_size=24, num_layers=1, skip=False),
            "NAM standard LSTM: 1 layer of 24 units, linear head, no skip",
        ),
        # --- seed presets: McCool, KTH, micro-TCN ---
        # --- end seed presets ---
        # --- thesis presets: Martinez Ramirez ---
        # --- end thesis presets ---
    )
}

DEFAULT_MODEL = "wavenet-standard"


def get_preset(name: str) -> Preset:
    """Look up a preset by name; unknown names get a list of the valid ones."""
    try:
        return PRESETS[name]
    except KeyError:
        raise FxcloneError(
            f"unknown model {name!r}; choose one of {', '.join(PRESETS)} (see `fxclone models`)"
        ) from None


def config_from_mapping(family: str, data: Mapping[str, Any]) -> Any:
    """Build a family's typed config from a JSON mapping (unknown keys are refused)."""
    cls = _family(family)
    return cls.config_class.from_dict(dict(data))  # type: ignore[attr-defined]


def create_model(
    name: str,
    *,
    sample_rate: int,
    knobs: Sequence[KnobSpec] = (),
    channels: int = 1,
    overrides: Mapping[str, Any] | None = None,
) -> EffectModel:
    """Instantiate a preset, optionally overriding top-level config fields."""
    preset = get_preset(name)
    config = preset.config
    if overrides:
        merged = {**_as_mapping(config), **overrides}
        config = config_from_mapping(preset.family, merged)
    return build_model(
        preset.family, config, sample_rate=sample_rate, knobs=knobs, channels=channels
    )


def build_model(
    family: str,
    config: Any,
    *,
    sample_rate: int,
    knobs: Sequence[KnobSpec] = (),
    channels: int = 1,
) -> EffectModel:
    """Instantiate a family from a typed config (or a JSON mapping of one)."""
    cls = _family(family)
    if isinstance(config, Mapping):
        config = config_from_mapping(family, config)
    # A model designed for a lower rate runs there, behind resamplers (models/resample.py).
    factor = resampling_factor(cls.native_sample_rate, sample_rate)
    rate = int(round(sample_rate / factor))
    try:
        model = cls(config, sample_rate=rate, knobs=tuple(knobs), channels=channels)
    except ValueError as exc:
        raise FxcloneError(f"invalid {family} configuration: {exc}") from None
    return model if factor == 1 else ResampledModel(model, factor, sample_rate)


def _family(family: str) -> type[EffectModel]:
    try:
        return FAMILIES[family]
    except KeyError:
        raise FxcloneError(
            f"unknown model family {family!r}; known families: {', '.join(FAMILIES)}"
        ) from None


def _as_mapping(config: Any) -> dict[str, Any]:
    return {k: getattr(config, k) for k in config.__dataclass_fields__}


__all__ = [
    "DEFAULT_MODEL",
    "FAMILIES",
    "PRESETS",
    "Preset",
    "build_model",
    "create_model",
    "get_preset",
]
