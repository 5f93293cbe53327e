"""fxclone: learn a neural model of an audio effect from audio, measure it, run it in real time."""

from fxclone.errors import FxcloneError

__version__ = "0.1.0"

__all__ = ["FxcloneError", "__version__"]
