"""The effect interface, its knobs, and the one registry of effects users can name.

An :class:`Effect` maps dry audio to wet audio: float32 ``(channels, samples)`` in, the same
shape out, at any sample rate. Each effect declares its knobs (name, unit, range, default) so
the CLI can list them, datasets can record them and models can be conditioned on them.
"""

from __future__ import annotations

import math
import re
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from fxclone.errors import FxcloneError

_EFFECT_NAME = re.compile(r"^[a-z][a-z0-9_-]*$")


@dataclass(frozen=True)
class Knob:
    """One control of an effect, in the unit a musician would read on the panel.

    Attributes:
        name: identifier used on the command line (``--knob drive=30``), lowercase.
        unit: ``"dB"``, ``"Hz"``, ``"ms"``, ``"ratio"``, ``"%"`` or ``""`` for unitless.
        minimum: smallest accepted value, in ``unit``.
        maximum: largest accepted value, in ``unit``.
        default: value used when the knob is not given, in ``unit``.
        description: one line for ``fxclone effects``.
        log_scale: the range is geometric (frequencies, times), so :meth:`normalise` maps
            equal ratios to equal steps; requires ``minimum > 0``.
        integer: only whole numbers are accepted (e.g. a filter order).
    """

    name: str
    unit: str
    minimum: float
    maximum: float
    default: float
    description: str
    log_scale: bool = False
    integer: bool = False

    def __post_init__(self) -> None:
        if not self.minimum < self.maximum:
            raise ValueError(f"knob {self.name!r}: minimum must be below maximum")
        if not self.minimum <= self.default <= self.maximum:
            raise ValueError(f"knob {self.name!r}: default {self.default} is outside its range")
        if self.log_scale and self.minimum <= 0:
            raise ValueError(f"knob {self.name!r}: a log-scale knob needs a positive minimum")

    def normalise(self, value: float) -> float:
        """Map ``value`` (in ``unit``) to [0, 1]; geometric for log-scale knobs.

        Values outside the range map outside [0, 1] (no clamping), so the map is invertible.
        """
        if self.log_scale:
            if value <= 0:
                raise FxcloneError(
                    f"knob {self.name!r} = {value:g} cannot be placed on its log scale; "
                    f"give a value in {self.range_text()}"
                )
            lo, hi = math.log(self.minimum), math.log(self.maximum)
            return (math.log(value) - lo) / (hi - lo)
        return (value - self.minimum) / (self.maximum - self.minimum)

    def denormalise(self, u: float) -> float:
        """Inverse of :meth:`normalise`: a position ``u`` in [0, 1] back to a value in ``unit``."""
        if self.log_scale:
            lo, hi = math.log(self.minimum), math.log(self.maximum)
            return math.exp(lo + u * (hi - lo))
        return self.minimum + u * (self.maximum - self.minimum)

    def range_text(self) -> str:
        """The range as users read it, e.g. ``"0..40 dB"``."""
        unit = f" {self.unit}" if self.unit else ""
        return f"{self.minimum:g}..{self.maximum:g}{unit}"

    def check(self, value: object, effect: str) -> float:
        """``value`` as a float if it is a valid setting; otherwise :class:`FxcloneError`."""
        try:
            number = float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise FxcloneError(
                f"knob {self.name!r} of {effect} got {value!r}, not a number; "
                f"give a value in {self.range_text()}"
            ) from None
        unit = f" {self.unit}" if self.unit else ""
        # NaN fails every comparison, so it needs its own test to be refused.
        if not math.isfinite(number) or not self.minimum <= number <= self.maximum:
            raise FxcloneError(
                f"knob {self.name!r} = {number:g}{unit} is outside {effect}'s range "
                f"{self.range_text()}; pick a value in that range"
            )
        if self.integer and number != round(number):
            raise FxcloneError(
                f"knob {self.name!r} = {number:g} must be a whole number; "
                f"give an integer in {self.range_text()}"
            )
        return number


class Effect(ABC):
    """A deterministic audio effect with named knobs.

    Subclasses set the class attributes and implement :meth:`process`; callers use
    :meth:`render`, which validates the audio and knobs first.

    Attributes:
        name: registry key, lowercase (``"distortion"``).
        description: one line for ``fxclone effects``.
        knobs: the controls, in panel order.
    """

    name: str = ""
    description: str = ""
    knobs: tuple[Knob, ...] = ()

    @abstractmethod
    def process(self, dry: np.ndarray, sample_rate: int, knobs: Mapping[str, float]) -> np.ndarray:
        """Apply the effect.

        Args:
            dry: float32 ``(channels, samples)``, finite, at least one sample.
            sample_rate: Hz, positive.
            knobs: every knob of this effect, validated and in range.

        Returns:
            wet audio, ``(channels, samples)`` like ``dry``; each channel processed alone.
        """

    def render(
        self,
        dry: np.ndarray,
        sample_rate: int,
        knobs: Mapping[str, float] | None = None,
    ) -> np.ndarray:
        """Validate the audio and knobs (missing knobs take their defaults), then process.

        Args:
            dry: ``(channels, samples)`` audio, any float dtype; converted to float32.
            sample_rate: Hz.
            knobs: knob values in their units; ``None`` or missing names use the defaults.

        Returns:
            wet float32 ``(channels, samples)``, the same shape as ``dry``.
        """
        values = self.resolve_knobs(knobs)
        audio = _check_dry(dry, self.name)
        rate = _check_sample_rate(sample_rate, self.name)
        if audio.shape[1] == 0:
            return audio.copy()
        wet = np.asarray(self.process(audio, rate, values), dtype=np.float32)
        if wet.shape != audio.shape:
            raise RuntimeError(
                f"effect {self.name} returned shape {wet.shape} for input {audio.shape}"
            )
        return wet

    def resolve_knobs(self, knobs: Mapping[str, float] | None) -> dict[str, float]:
        """Return every knob's value: the given ones checked, the rest at their defaults.

        Raises:
            FxcloneError: an unknown knob name (the message lists the valid ones), a value
                outside its range, or a non-number.
        """
        given = dict(knobs or {})
        by_name = {k.name: k for k in self.knobs}
        unknown = sorted(set(given) - set(by_name))
        if unknown:
            valid = ", ".join(by_name) if by_name else "none"
            raise FxcloneError(
                f"effect {self.name} has no knob {', '.join(map(repr, unknown))}; "
                f"its knobs are: {valid}"
            )
        return {
            name: knob.check(given[name], self.name) if name in given else float(knob.default)
            for name, knob in by_name.items()
        }

    def knob(self, name: str) -> Knob:
        """The knob called ``name``; unknown names raise :class:`FxcloneError`."""
        for k in self.knobs:
            if k.name == name:
                return k
        raise FxcloneError(
            f"effect {self.name} has no knob {name!r}; its knobs are: "
            f"{', '.join(k.name for k in self.knobs) or 'none'}"
        )

    def __repr__(self) -> str:
        return f"<effect {self.name}: {', '.join(k.name for k in self.knobs)}>"


def _check_dry(dry: np.ndarray, effect: str) -> np.ndarray:
    audio = np.asarray(dry)
    if audio.ndim != 2 or audio.shape[0] == 0:
        raise FxcloneError(
            f"{effect} got audio of shape {audio.shape}; pass (channels, samples), "
            "e.g. audio[None, :] for a mono signal"
        )
    if not np.issubdtype(audio.dtype, np.number) or np.iscomplexobj(audio):
        raise FxcloneError(f"{effect} got {audio.dtype} audio; pass real float samples")
    audio = np.ascontiguousarray(audio, dtype=np.float32)
    if not np.isfinite(audio).all():
        raise FxcloneError(
            f"{effect} got audio with NaN or Inf samples; clean or re-export the input"
        )
    return audio


def _check_sample_rate(sample_rate: object, effect: str) -> int:
    if isinstance(sample_rate, (int, float, np.integer, np.floating)) and not isinstance(
        sample_rate, bool
    ):
        if math.isfinite(sample_rate) and sample_rate > 0 and int(sample_rate) == sample_rate:
            return int(sample_rate)
    raise FxcloneError(
        f"sample rate {sample_rate!r} given to {effect} is not a positive whole number of Hz; "
        "pass the rate of the audio file, e.g. 48000"
    )


_REGISTRY: dict[str, Effect] = {}


def register(effect: Effect) -> Effect:
    """Add ``effect`` to the registry under ``effect.name`` and return it.

    Registering another instance of the same class again replaces it (so reloading a module
    is harmless); a different class under a taken name is refused.
    """
    name = effect.name
    if not _EFFECT_NAME.match(name):
        raise ValueError(f"effect name {name!r} must be lowercase letters, digits, '-' or '_'")
    names = [k.name for k in effect.knobs]
    if len(set(names)) != len(names):
        raise ValueError(f"effect {name!r} declares a knob name twice: {names}")
    existing = _REGISTRY.get(name)
    if existing is not None and type(existing) is not type(effect):
        raise FxcloneError(
            f"an effect called {name!r} is already registered ({type(existing).__name__}); "
            "give the new effect another name"
        )
    _REGISTRY[name] = effect
    return effect


def get_effect(name: str) -> Effect:
    """The registered effect called ``name`` (case-insensitive)."""
    key = name.strip().lower()
    try:
        return _REGISTRY[key]
    except KeyError:
        available = ", ".join(sorted(_REGISTRY)) or "none"
        raise FxcloneError(
            f"unknown effect {name!r}; available effects: {available} "
            "(run `fxclone effects` to see them with their knobs)"
        ) from None


def list_effects() -> list[Effect]:
    """Every registered effect, sorted by name."""
    return [_REGISTRY[name] for name in sorted(_REGISTRY)]


def parse_knob_args(args: Sequence[str]) -> dict[str, float]:
    """Parse command-line knob settings: ``["drive=30", "tone=3000"]`` -> ``{"drive": 30.0, ...}``.

    Only the syntax is checked here; names and ranges are checked against an effect by
    :meth:`Effect.resolve_knobs`.
    """
    values: dict[str, float] = {}
    for arg in args:
        name, sep, text = arg.partition("=")
        name, text = name.strip(), text.strip()
        if not sep or not name or not text:
            raise FxcloneError(f"knob setting {arg!r} is malformed; use --knob NAME=VALUE")
        try:
            value = float(text)
        except ValueError:
            raise FxcloneError(
                f"knob setting {arg!r}: {text!r} is not a number; use --knob NAME=VALUE, "
                "e.g. --knob drive=30"
            ) from None
        if not math.isfinite(value):
            raise FxcloneError(f"knob setting {arg!r} is not a finite number; give a real value")
        if name in values:
            raise FxcloneError(f"knob {name!r} is given twice ({arg!r}); keep one --knob {name}=")
        values[name] = value
    return values
