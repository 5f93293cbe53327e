"""Model families (one file each) and the registry of named presets."""

from fxclone.models.base import EffectModel, KnobSpec, State
from fxclone.models.registry import (
    DEFAULT_MODEL,
    FAMILIES,
    PRESETS,
    build_model,
    create_model,
    get_preset,
)

__all__ = [
    "DEFAULT_MODEL",
    "FAMILIES",
    "PRESETS",
    "EffectModel",
    "KnobSpec",
    "State",
    "build_model",
    "create_model",
    "get_preset",
]
