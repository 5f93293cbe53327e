"""The one exception type for user mistakes, and the one warning type for notices.

Anything a user can cause (a missing file, a bad knob value, a corrupt model) raises
:class:`FxcloneError` with a one-line message that names the file or value and says how to
fix it. The CLI prints that line and exits non-zero; it never shows a traceback for these.
:class:`FxcloneNotice` is a warning for something worth knowing that is not an error (an input
file shorter than its header says, read as far as it goes); the CLI prints it as one line.
"""

from __future__ import annotations


class FxcloneError(Exception):
    """A user-facing error: ``str(err)`` is one line naming the culprit and the fix."""

    exit_code = 2

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(message.split()))


class FxcloneNotice(UserWarning):
    """A user-facing notice, raised with :func:`warnings.warn`; one line of text."""
