"""Effect renderers: dry audio in, wet audio out, with named knobs.

Importing this package registers the built-in effects, so :func:`get_effect` and
:func:`list_effects` see them.
"""

# Importing the effect modules registers their effects.
from fxclone.effects import builtin as _builtin  # noqa: F401
from fxclone.effects import drive as _drive  # noqa: F401
from fxclone.effects import echoes as _echoes  # noqa: F401
from fxclone.effects import filters as _filters  # noqa: F401
from fxclone.effects import modulation as _modulation  # noqa: F401
from fxclone.effects import pitch as _pitch  # noqa: F401
from fxclone.effects import reverbs as _reverbs  # noqa: F401
from fxclone.effects.registry import (
    Effect,
    Knob,
    get_effect,
    list_effects,
    parse_knob_args,
    register,
)

__all__ = ["Effect", "Knob", "get_effect", "list_effects", "parse_knob_args", "register"]
