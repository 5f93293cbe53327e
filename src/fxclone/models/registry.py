"""The one registry of model families and named presets.

A *family* is a model class (one file each); a *preset* is a family plus a configuration
with a name users type (``fxclone train --model wavenet-standard``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from fxclone.errors import FxcloneError
from fxclone.models.base import EffectModel, KnobSpec
from fxclone.models.cafx import CEQ, CAFx
from fxclone.models.compressor import Compressor
from fxclone.models.crafx import CRAFx, CWAFx
from fxclone.models.csafx import CSAFx
from fxclone.models.ffwavenet import FFWaveNet
from fxclone.models.hammerstein import HammersteinModel
from fxclone.models.ir import ImpulseResponse
from fxclone.models.kth import KTHCNN, KTHRecurrent
from fxclone.models.lfo import LFOModel
from fxclone.models.mccool import (
    McCoolCNN,
    McCoolMLP,
    McCoolWindowLSTM,
)
from fxclone.models.mulaw import MuLawWaveNet
from fxclone.models.octaver import OctaverModel
from fxclone.models.phaser import PhaserModel
from fxclone.models.pitch import PitchModel
from fxclone.models.presets import PRESETS, Preset
from fxclone.models.resample import ResampledModel, resampling_factor
from fxclone.models.rnn import RecurrentModel
from fxclone.models.rotary import RotaryModel
from fxclone.models.splice import SpliceModel
from fxclone.models.tape import TapeModel
from fxclone.models.tcn import TCN
from fxclone.models.wavenet import WaveNet

FAMILIES: dict[str, type[EffectModel]] = {
    WaveNet.family: WaveNet,
    RecurrentModel.family: RecurrentModel,
    ImpulseResponse.family: ImpulseResponse,
    LFOModel.family: LFOModel,
    PhaserModel.family: PhaserModel,
    PitchModel.family: PitchModel,
    OctaverModel.family: OctaverModel,
    TapeModel.family: TapeModel,
    SpliceModel.family: SpliceModel,
    RotaryModel.family: RotaryModel,
    HammersteinModel.family: HammersteinModel,
    Compressor.family: Compressor,
    # --- seed families: McCool, KTH, micro-TCN ---
    McCoolCNN.family: McCoolCNN,
    McCoolMLP.family: McCoolMLP,
    McCoolWindowLSTM.family: McCoolWindowLSTM,
    MuLawWaveNet.family: MuLawWaveNet,
    KTHRecurrent.family: KTHRecurrent,
    KTHCNN.family: KTHCNN,
    TCN.family: TCN,
    # --- end seed families ---
    # --- thesis families: Martinez Ramirez ---
    CEQ.family: CEQ,
    CAFx.family: CAFx,
    FFWaveNet.family: FFWaveNet,
    CRAFx.family: CRAFx,
    CWAFx.family: CWAFx,
    CSAFx.family: CSAFx,
    # --- end thesis families ---
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
