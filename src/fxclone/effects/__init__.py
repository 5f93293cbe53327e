"""Effect renderers: dry audio in, wet audio out, with named knobs.

Importing this package registers the built-in effects, so :func:`get_effect` and
:func:`list_effects` see them.
"""

from fxclone.effects import builtin as _builtin  # noqa: F401  (registers the built-ins)
from fxclone.effects.registry import (
    Effect,
    Knob,
    get_effect,
    list_effects,
    parse_knob_args,
    register,
)

__all__ = ["Effect", "Knob", "get_effect", "list_effects", "parse_knob_args", "register"]
