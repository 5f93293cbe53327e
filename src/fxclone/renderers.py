"""Renderers: what turns a dataset's dry audio into its wet audio (``fxclone render``).

A :class:`Renderer` takes one continuous float32 stream ``(channels, samples)`` and returns
the wet stream ``(1 or channels, samples)``; ``knobs`` are the resolved values recorded with
every item and ``describe()`` is what the manifest records as its ``effect``. Kinds: a
built-in effect (:class:`fxclone.rendering.BuiltinRenderer`), an external program
(:class:`CommandRenderer`) and a VST3/AU plugin hosted by pedalboard (:class:`PluginRenderer`).
Renderers check their arguments when made, so mistakes surface before anything is written.
"""

from __future__ import annotations

import math
import numbers
import os
import re
import shlex
import shutil
import subprocess
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from fxclone.audio import resample, write_audio
from fxclone.dataset import LENGTH_TOLERANCE
from fxclone.errors import FxcloneError

OUT_CHANNELS = ("left", "right", "mix")
DEFAULT_TIMEOUT = 600.0  # seconds per split for --command
FILES = ("dry", "wet")
# "{{" and "}}" are literal braces; "{name}" or "{name=default}" is a placeholder.
_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_]*)(?:=([^{}]*))?\}")


class Renderer(ABC):
    """Dry stream in, wet stream out; ``knobs`` and ``describe()`` go into the manifest."""

    knobs: dict[str, Any]

    @abstractmethod
    def render(self, dry: np.ndarray, sample_rate: int) -> np.ndarray:
        """Render one continuous float32 ``(channels, samples)`` stream."""

    @abstractmethod
    def describe(self) -> dict[str, Any]:
        """The JSON object the manifest records as ``effect``."""


class CommandRenderer(Renderer):
    """An external program run once per split, without a shell: ``{dry}`` in, ``{wet}`` out.

    The template is split into words as a shell would (:func:`shlex.split`); in each word
    ``{dry}`` and ``{wet}`` become temporary file paths and ``{NAME}`` (or ``{NAME=DEFAULT}``)
    a knob value. The dry stream is written as a float32 WAV with ``in_channels`` channels (a
    mono dry copied to both for 2); ``out_channel`` picks ``left``, ``right`` or the ``mix``
    of a stereo output. An output at another sample rate is resampled, and that is recorded.
    """

    def __init__(
        self,
        template: str,
        knobs: Mapping[str, float] | None = None,
        *,
        in_channels: int = 1,
        out_channel: str = "mix",
        timeout: float | None = DEFAULT_TIMEOUT,
    ) -> None:
        _check_io(in_channels, out_channel)
        if timeout is not None and not (_is_number(timeout) and 0 < timeout < math.inf):
            raise FxcloneError(f"--timeout {timeout!r} is not a positive number of seconds")
        self.template, self.in_channels, self.out_channel = template, in_channels, out_channel
        self.timeout = None if timeout is None else float(timeout)
        self.resampled_from: int | None = None
        self.who = f"--command {_shorten(template)!r}"
        try:
            self.words = shlex.split(template)
        except ValueError as exc:
            raise FxcloneError(f"{self.who} cannot be split ({exc}); check its quotes") from None
        if not self.words:
            raise FxcloneError("--command is empty; give one, e.g. --command 'sox {dry} {wet}'")
        found = self._placeholders()
        for name in FILES:
            if name not in found:
                raise FxcloneError(
                    f"{self.who} has no {{{name}}} placeholder; write {{dry}} where the program "
                    "reads its input file and {wet} where it writes its output file"
                )
        given = dict(knobs or {})
        for name in given:
            if name in FILES:
                raise FxcloneError(f"--knob {name}= is taken by the {name} file; rename the knob")
            if name not in found:
                raise FxcloneError(
                    f"--knob {name}= has no {{{name}}} placeholder in {self.who}; add {{{name}}} "
                    f"to the command or drop the knob"
                )
        self.knobs = {}
        for name, default in found.items():
            value = given.get(name, default)
            if name not in FILES and value is None:
                raise FxcloneError(
                    f"placeholder {{{name}}} in {self.who} has no value; pass --knob {name}=VALUE "
                    f"or give a default in the command as {{{name}=VALUE}}"
                )
            if name not in FILES:
                self.knobs[name] = _finite(value, name)
        if not _PLACEHOLDER.search(self.words[0]):
            _find_program(self.words[0], self.who)

    def _placeholders(self) -> dict[str, float | None]:
        """Placeholder names in order of appearance, with their defaults (the first given)."""
        found: dict[str, float | None] = {}
        for match in (m for word in self.words for m in _PLACEHOLDER.finditer(word)):
            name, text = match.group(1), match.group(2)
            if name is None:
                continue
            if text is not None and name in FILES:
                raise FxcloneError(f"{{{name}}} in {self.who} cannot have a default")
            if found.get(name) is None:
                found[name] = None if text is None else _finite(text, f"{{{name}=...}} default")
        return found

    def argv(self, dry_path: str | os.PathLike[str], wet_path: str | os.PathLike[str]) -> list[str]:
        """The command's words with every placeholder filled in."""
        values = {name: _format_number(v) for name, v in self.knobs.items()}
        values.update(dry=os.fspath(dry_path), wet=os.fspath(wet_path))

        def fill(match: re.Match[str]) -> str:
            return match.group(0)[0] if match.group(1) is None else values[match.group(1)]

        return [_PLACEHOLDER.sub(fill, word) for word in self.words]

    def render(self, dry: np.ndarray, sample_rate: int) -> np.ndarray:
        with tempfile.TemporaryDirectory(prefix="fxclone-render-") as tmp:
            dry_path, wet_path = Path(tmp) / "dry.wav", Path(tmp) / "wet.wav"
            write_audio(dry_path, _to_channels(dry, self.in_channels), sample_rate)
            self._run(self.argv(dry_path, wet_path))
            wet, rate = self._read(wet_path)
        if rate != sample_rate:
            wet = resample(wet, rate, sample_rate)
            self.resampled_from = rate
        return _finish(_pick(wet, self.out_channel), dry.shape[1], self.who)

    def _run(self, argv: list[str]) -> None:
        try:
            proc = subprocess.run(
                argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=self.timeout
            )
        except subprocess.TimeoutExpired:
            raise FxcloneError(
                f"{self.who} did not finish within {self.timeout:g} s; raise --timeout, or make "
                "sure the program does not wait for input"
            ) from None
        except OSError as exc:
            _find_program(argv[0], self.who)
            raise FxcloneError(
                f"{self.who}: program {argv[0]!r} cannot be started ({exc.strerror}); "
                "check that it is an executable program"
            ) from None
        code = proc.returncode
        if code != 0:
            status = f"exited with status {code}" if code > 0 else f"was killed by signal {-code}"
            said = _last_line(proc.stderr) or _last_line(proc.stdout) or "it printed nothing"
            hint = ""
            if self.in_channels == 1 and "channel" in said.lower():
                hint = " (a stereo plugin needs --in-channels 2)"
            raise FxcloneError(f"{self.who} {status} ({said}); fix the command{hint}")

    def _read(self, path: Path) -> tuple[np.ndarray, int]:
        wrote = f"{self.who} exited successfully but wrote"
        if not path.is_file():
            raise FxcloneError(f"{wrote} no file; make it write its output to {{wet}}")
        if path.stat().st_size == 0:
            raise FxcloneError(f"{wrote} an empty file (0 bytes); make it write audio to {{wet}}")
        try:
            data, rate = sf.read(str(path), dtype="float32", always_2d=True)
        except Exception as exc:
            raise FxcloneError(
                f"{wrote} a file that is not readable audio ({_last_line(exc)}); make it write "
                "a WAV file to {wet}"
            ) from None
        if data.shape[0] == 0:
            raise FxcloneError(
                f"{wrote} an audio file with 0 frames; run the program by hand to see why"
            )
        return np.ascontiguousarray(data.T), int(rate)

    def describe(self) -> dict[str, Any]:
        described: dict[str, Any] = {
            "kind": "command",
            "command": self.template,
            "knobs": dict(self.knobs),
            "in_channels": self.in_channels,
            "out_channel": self.out_channel,
        }
        if self.resampled_from is not None:
            described["resampled_from"] = self.resampled_from
        return described


def load_plugin(path: str) -> Any:
    """Load a VST3 or Audio Unit plugin with pedalboard (the one place that imports it)."""
    try:
        import pedalboard
    except ImportError:
        raise FxcloneError(
            f"{path}: hosting plugins needs the pedalboard package; `pip install pedalboard`"
        ) from None
    return pedalboard.load_plugin(path)


class PluginRenderer(Renderer):
    """A plugin hosted by pedalboard; its parameters are the knobs, in their own units.

    The preset (a ``.vstpreset`` file) is loaded before the knobs are set. Each split is
    processed as one stream from a reset plugin; a plugin that holds audio back (latency)
    is fed silence until its output is as long as the input.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        knobs: Mapping[str, float] | None = None,
        *,
        preset: str | os.PathLike[str] | None = None,
        in_channels: int = 1,
        out_channel: str = "mix",
    ) -> None:
        _check_io(in_channels, out_channel)
        self.path = Path(path)
        self.preset = None if preset is None else Path(preset)
        self.in_channels, self.out_channel = in_channels, out_channel
        self.who = f"plugin {self.path.name}"
        if not self.path.exists():
            raise FxcloneError(
                f"{self.path}: no such plugin file; give the path of a .vst3 plugin "
                "(or an Audio Unit .component on macOS)"
            )
        if self.preset is not None and not self.preset.is_file():
            raise FxcloneError(f"{self.preset}: no such preset file; save one from the plugin")
        try:
            plugin = load_plugin(str(self.path))
        except FxcloneError:
            raise
        except Exception as exc:
            raise FxcloneError(
                f"{self.path}: pedalboard cannot load this plugin ({_last_line(exc)}); give a "
                "VST3 plugin built for this system (Audio Units only on macOS)"
            ) from None
        if self.preset is not None:
            try:
                plugin.load_preset(str(self.preset))
            except Exception as exc:
                raise FxcloneError(
                    f"{self.preset}: {self.who} cannot load this preset ({_last_line(exc)}); "
                    "save a .vstpreset from this plugin"
                ) from None
        params = dict(plugin.parameters)
        self.plugin, self.parameter_names, self._parameters = plugin, list(params), params
        self.knobs: dict[str, float] = {}
        self.knob_ranges: dict[str, list[float]] = {}
        self.at(dict(knobs or {}))

    def at(self, setting: Mapping[str, float]) -> PluginRenderer:
        """This renderer with the parameters in ``setting`` set (checked like the knobs);
        the plugin stays loaded, so rendering many settings costs no reloads."""
        for name, value in setting.items():
            if name not in self._parameters:
                raise FxcloneError(
                    f"{self.who} has no parameter {name!r}; its parameters are: "
                    f"{', '.join(self._parameters) or 'none'}"
                )
            self.knobs[name], self.knob_ranges[name] = _set(
                self.plugin, name, self._parameters[name], value
            )
        return self

    def render(self, dry: np.ndarray, sample_rate: int) -> np.ndarray:
        audio = np.ascontiguousarray(_to_channels(dry, self.in_channels), dtype=np.float32)
        n = audio.shape[1]
        try:
            parts = [np.atleast_2d(self.plugin.process(audio, float(sample_rate), reset=True))]
            for _ in range(8):  # flush what a plugin with latency still holds
                got = sum(part.shape[1] for part in parts)
                if got >= n:
                    break
                silence = np.zeros((audio.shape[0], n - got), np.float32)
                parts.append(np.atleast_2d(self.plugin.process(silence, sample_rate, reset=False)))
        except Exception as exc:
            raise FxcloneError(
                f"{self.who} failed while processing ({_last_line(exc)}); try --in-channels 2, "
                "other knob values or another plugin"
            ) from None
        wet = np.concatenate(parts, axis=1).astype(np.float32, copy=False)
        return _finish(_pick(wet, self.out_channel), n, self.who)

    def describe(self) -> dict[str, Any]:
        parameters = {}
        for name in self.parameter_names:
            try:
                parameters[name] = _json_parameter(getattr(self.plugin, name))
            except Exception:  # a parameter the plugin cannot report is left out
                continue
        return {
            "kind": "plugin",
            "path": str(self.path.resolve()),
            "preset": None if self.preset is None else str(self.preset.resolve()),
            "knobs": dict(self.knobs),
            "knob_ranges": {k: list(v) for k, v in self.knob_ranges.items()},
            "in_channels": self.in_channels,
            "out_channel": self.out_channel,
            "parameters": parameters,
        }


# --- internals ---------------------------------------------------------------------------


def _set(plugin: Any, name: str, param: Any, value: Any) -> tuple[float, list[float]]:
    """Check ``value`` against the parameter's range and set it; return it and the range."""
    number, kind = _finite(value, name), getattr(param, "type", float)
    if kind is bool:
        if number not in (0.0, 1.0):
            raise FxcloneError(f"plugin parameter {name!r} is a switch; give --knob {name}=0 or 1")
        setattr(plugin, name, bool(number))
        return number, [0.0, 1.0]
    low, high = getattr(param, "min_value", None), getattr(param, "max_value", None)
    if (low is None or high is None) and getattr(param, "range", None) is not None:
        low, high = param.range[0], param.range[1]
    if kind is str or not _is_number(low) or not _is_number(high):
        choices = ", ".join(map(str, getattr(param, "valid_values", None) or [])) or "?"
        raise FxcloneError(
            f"plugin parameter {name!r} takes one of {choices}, not a number; set it in a "
            "preset (--preset) instead"
        )
    low, high = float(low), float(high)  # type: ignore[arg-type]
    unit = f" {param.units}" if getattr(param, "units", None) else ""
    if not low <= number <= high:
        raise FxcloneError(
            f"knob {name!r} = {number:g}{unit} is outside the plugin parameter's range "
            f"{low:g}..{high:g}{unit}; pick a value in that range"
        )
    try:
        setattr(plugin, name, number)
    except Exception as exc:
        raise FxcloneError(f"the plugin refused {name}={number:g} ({_last_line(exc)})") from None
    return number, [low, high]


def _json_parameter(value: Any) -> Any:
    if isinstance(value, str):
        return str(value)
    if _is_number(value):
        return float(value) if math.isfinite(float(value)) else str(value)
    return bool(value)  # bool, numpy bool and pedalboard's bool-like switch values


def _check_io(in_channels: Any, out_channel: Any) -> None:
    if in_channels not in (1, 2) or isinstance(in_channels, bool):
        raise FxcloneError(f"--in-channels {in_channels!r} is not 1 or 2 (2: stereo plugins)")
    if out_channel not in OUT_CHANNELS:
        raise FxcloneError(f"--out-channel {out_channel!r} is not one of left, right, mix")


def _to_channels(dry: np.ndarray, channels: int) -> np.ndarray:
    """``dry`` with ``channels`` channels: a mono signal is copied, others averaged first."""
    if dry.shape[0] == channels:
        return dry
    return np.repeat(dry.mean(axis=0, keepdims=True, dtype=np.float32), channels, axis=0)


def _pick(wet: np.ndarray, out_channel: str) -> np.ndarray:
    """The mono wet signal ``out_channel`` chooses from a (possibly stereo) output."""
    if wet.shape[0] == 1:
        return wet
    if out_channel != "mix":
        return wet[:1] if out_channel == "left" else wet[1:2]
    return (wet.sum(axis=0, keepdims=True) / np.float32(wet.shape[0])).astype(np.float32)


def _finish(wet: np.ndarray, n: int, who: str) -> np.ndarray:
    """Refuse a wet stream of the wrong length or with NaN/Inf; trim a few extra samples."""
    gap = wet.shape[1] - n
    if abs(gap) > LENGTH_TOLERANCE:
        longer = "longer" if gap > 0 else "shorter"
        raise FxcloneError(
            f"{who}: output is {abs(gap)} samples {longer} than its input ({wet.shape[1]} vs "
            f"{n}); make it keep the input's length, or if it adds latency, record the output "
            "and line it up with `fxclone align`"
        )
    bad = int(np.sum(~np.isfinite(wet)))
    if bad:
        raise FxcloneError(f"{who}: output has {bad} NaN/Inf sample(s); try other knob values")
    return np.ascontiguousarray(wet[:, :n], dtype=np.float32)


def _find_program(program: str, who: str) -> None:
    if os.sep in program or (os.altsep and os.altsep in program):
        found = Path(program).is_file() and os.access(program, os.X_OK)
    else:
        found = shutil.which(program) is not None
    if not found:
        raise FxcloneError(f"{who}: program {program!r} not found; install it or give its path")


def _finite(value: Any, name: str) -> float:
    try:
        number = math.nan if isinstance(value, bool) else float(value)
    except (TypeError, ValueError):
        number = math.nan
    if not math.isfinite(number):
        raise FxcloneError(f"knob {name!r} = {value!r} is not a finite number; give a number")
    return number


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _format_number(value: float) -> str:
    return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)


def _shorten(text: str, limit: int = 120) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _last_line(text: Any) -> str:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    return _shorten(lines[-1], 160) if lines else ""
