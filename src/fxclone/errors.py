"""The one exception type for user mistakes.

Anything a user can cause (a missing file, a bad knob value, a corrupt model) raises
:class:`FxcloneError` with a one-line message that names the file or value and says how to
fix it. The CLI prints that line and exits non-zero; it never shows a traceback for these.
"""

from __future__ import annotations


class FxcloneError(Exception):
    """A user-facing error: ``str(err)`` is one line naming the culprit and the fix."""

    exit_code = 2

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(message.split()))
