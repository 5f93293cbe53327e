"""Knob automation for ``fxclone apply --automation FILE``: a CSV of knob changes over time.

One change per row, ``time,knob,value``: the time in seconds from the start of the input,
the knob's name and its new value in the knob's unit (``fxclone info MODEL`` lists them). An
optional first line ``time,knob,value`` is a header; blank lines and lines starting with
``#`` are skipped. Rows may come in any order. Each change ramps over ``--ramp-ms``
(:meth:`fxclone.streaming.StreamProcessor.set_knobs`), so a step in the file does not click::

    time,knob,value
    0.0,drive,10
    2.5,drive,35
    2.5,level,-12
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

from fxclone.errors import FxcloneError
from fxclone.models.base import EffectModel


@dataclass(frozen=True)
class KnobChange:
    """Knob values (in their units) that take effect at ``time_seconds``."""

    time_seconds: float
    values: dict[str, float]


def read_automation(path: str | os.PathLike[str], model: EffectModel) -> list[KnobChange]:
    """Parse and check an automation CSV against ``model``'s knobs; changes sorted by time
    (rows at the same time are merged)."""
    from fxclone.streaming import knob_tensor

    src = Path(path)
    if not model.knobs:
        raise FxcloneError(
            f"{src}: this model has no knobs to automate; train on a dataset rendered across "
            "knob settings (docs/capture.md) or drop --automation"
        )
    try:
        text = src.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise FxcloneError(f"cannot read the automation file {src}: {exc}") from None
    changes: dict[float, dict[str, float]] = {}
    for line_no, row in enumerate(csv.reader(text.splitlines()), start=1):
        cells = [c.strip() for c in row]
        if not cells or not any(cells) or cells[0].startswith("#"):
            continue
        if line_no == 1 and [c.lower() for c in cells] == ["time", "knob", "value"]:
            continue
        where = f"{src}, line {line_no}"
        if len(cells) != 3:
            raise FxcloneError(
                f"{where}: expected 3 columns time,knob,value but got {len(cells)} "
                f"({','.join(cells)}); write one change per line"
            )
        time_text, name, value_text = cells
        try:
            time_seconds, value = float(time_text), float(value_text)
        except ValueError:
            raise FxcloneError(
                f"{where}: time {time_text!r} and value {value_text!r} must be numbers"
            ) from None
        if not time_seconds >= 0:
            raise FxcloneError(f"{where}: time {time_text} must be 0 or more seconds")
        try:
            knob_tensor(model, {name: value})
        except FxcloneError as exc:
            raise FxcloneError(f"{where}: {exc}") from None
        changes.setdefault(time_seconds, {})[name] = value
    if not changes:
        raise FxcloneError(f"{src} holds no knob changes; write lines of time,knob,value")
    return [KnobChange(t, changes[t]) for t in sorted(changes)]
