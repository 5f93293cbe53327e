"""Blind listening tests served on 127.0.0.1: ABX and MUSHRA.

A session owns the audio, the randomised plan and the results JSON; :func:`start_server` puts it
behind a small stdlib HTTP server. Every answer is written to the JSON the moment it is posted
(temporary file, then rename), so a crash or a closed tab loses nothing, and opening the same
JSON again resumes where the listener stopped.

Pages are plain HTML with a few lines of inline JavaScript and no external URLs. Audio URLs
name the trial and the player (``/audio/3/X``), never the file, so the page source does not give
the answer away.
"""

from fxclone.report.listening.abx import AbxSession
from fxclone.report.listening.common import (
    ANCHOR,
    ANCHOR_CUTOFF_HZ,
    HIDDEN_REFERENCE,
    abx_p_value,
    lowpass_anchor,
    mushra_stats,
)
from fxclone.report.listening.mushra import MushraSession
from fxclone.report.listening.server import serve, start_server

__all__ = [
    "ANCHOR",
    "ANCHOR_CUTOFF_HZ",
    "HIDDEN_REFERENCE",
    "AbxSession",
    "MushraSession",
    "abx_p_value",
    "lowpass_anchor",
    "mushra_stats",
    "serve",
    "start_server",
]
