"""The reamping capture signal: one file to play through a real pedal or amp and record back.

The signal is mono float32, about 3 min 15 s long at any sample rate, and the same samples for
a given ``(version, sample_rate)`` (every random choice has a fixed seed). Its layout, in order
(times in seconds; every stretch is a named region, and the regions tile the file):

=====================  =======  ========  =====================================================
region                 split    seconds   content
=====================  =======  ========  =====================================================
``lead_in``            align    0.5       silence
``clicks_start``       align    2.0       3 clicks at +0.10, +0.35 and +0.75 s (distinct gaps)
``sweep_<level>``      train    5 + 1     log sine sweeps 20 Hz - 0.45 fs at -30, -12, -1 dBFS
``white_<level>``      train    2 + 0.5   white noise at -50, -30, -16 dBFS RMS
``pink_<level>``       train    2 + 0.5   pink noise at -40, -20 dBFS RMS
``steps_tone``         train    7.8 + 1   a 110 Hz band-limited saw stepping -40 .. -1 dBFS
``steps_noise``        train    7.8 + 1   pink noise stepping through the same levels
``music``              train    60 + 1    synthetic material (:data:`fxclone.signals.TRAIN_MIX`)
``plucks``             train    20 + 1    plucked strings and strummed chords
``repeat_a``           train    5 + 2     a 5-s passage peaking at -6 dBFS ...
``repeat_b``           train    5 + 1     ... and exactly the same samples again
``val``                val      20 + 1    validation material (another seed, ``TRAIN_MIX``)
``test``               test     25 + 1    test material (:data:`fxclone.signals.TEST_MIX`)
``clicks_end``         align    2.0       the 3 clicks again, for clock drift start to end
``lead_out``           align    0.5       silence
=====================  =======  ========  =====================================================

"+ 1" is a silent gap after the region (kind ``gap``), so reverb and delay tails decay before
the next one; a gap carries the split of the region before it, because it holds that region's
tail. Clicks are Hann-windowed sinc pulses (band-limited impulses) peaking at -1 dBFS; nothing
in the file peaks above -1 dBFS. The repeated passage measures the rig's own repeatability:
whatever differs between the two renditions of it in a recording (noise, hum, modulation) is a
floor no model can get under.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fxclone.audio import write_audio, write_json
from fxclone.signals import TEST_MIX, TRAIN_MIX, Mix, iter_segments
from fxclone.sounds import fade_edges

VERSION = 1
PEAK_DBFS = -1.0
SPLITS = ("train", "val", "test", "align")
CLICK_OFFSETS_S = (0.10, 0.35, 0.75)  # inside each click region: gaps of 0.25 s and 0.40 s
CLICK_HALF_WIDTH_S = 0.001  # the pulse spans +-1 ms around its peak
SWEEP_LEVELS_DB = (-30.0, -12.0, -1.0)
WHITE_RMS_DB = (-50.0, -30.0, -16.0)
PINK_RMS_DB = (-40.0, -20.0)
STEP_LEVELS_DB = (-40, -30, -20, -12, -6, -3, -1, -20, -1, -40, -6, -30, -1)
STEP_SECONDS = 0.6
REPEAT_PEAK_DBFS = -6.0
RECOGNISE_SECONDS = 10.0  # recognise() compares this much of the start sample by sample
RECOGNISE_TOLERANCE = 2e-4  # max |difference|: 16-bit PCM rounds by at most 1.5e-5
_PLUCK_MIX = Mix(pluck=3.0, chord=3.0, silence=0.3, name="capture-plucks")
_SEEDS = {"music": 1101, "plucks": 1102, "repeat": 1103, "val": 1104, "test": 1105, "noise": 1106}


@dataclass(frozen=True)
class Region:
    """A stretch ``[start, end)`` of the capture signal, in samples."""

    name: str
    kind: str  # silence, clicks, sweep, noise, steps, music, repeat, gap
    split: str  # one of SPLITS
    start: int
    end: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return {
            "name": self.name,
            "kind": self.kind,
            "split": self.split,
            "start": self.start,
            "end": self.end,
        }


@dataclass(frozen=True)
class Repeat:
    """The passage played twice: ``[start_a, start_a + length)`` equals ``[start_b, ...)``."""

    start_a: int
    start_b: int
    length: int


@dataclass(frozen=True, eq=False)
class Capture:
    """The capture signal and its layout. ``audio`` is float32 ``(1, n)`` and read-only."""

    audio: np.ndarray
    sample_rate: int
    version: int
    regions: tuple[Region, ...]
    clicks: tuple[int, ...]
    repeat: Repeat

    @property
    def samples(self) -> int:
        """Length in samples."""
        return int(self.audio.shape[1])

    def region(self, name: str) -> Region:
        """The region called ``name`` (``KeyError`` if there is none)."""
        for r in self.regions:
            if r.name == name:
                return r
        raise KeyError(name)

    def repeatability_esr(self, wet: np.ndarray, offset: int = 0) -> float | None:
        """The rig's noise floor, from a recording aligned to this signal.

        ``wet`` is ``(channels, samples)`` whose sample 0 lines up with this signal's sample
        ``offset``. With ``a`` and ``b`` the recording's two renditions of the repeated
        passage, returns ``sum((b - a)**2) / (sum(a**2) + sum(b**2))``: for independent noise
        in each, the noise-to-signal ratio of one rendition, which is the ESR a perfect model
        would score against this recording. None if the recording misses the passage.
        """
        rep = self.repeat
        a0, b0 = rep.start_a - offset, rep.start_b - offset
        if a0 < 0 or b0 + rep.length > wet.shape[-1]:
            return None
        a = np.asarray(wet[..., a0 : a0 + rep.length], dtype=np.float64)
        b = np.asarray(wet[..., b0 : b0 + rep.length], dtype=np.float64)
        energy = float(np.sum(a**2) + np.sum(b**2))
        return float(np.sum((b - a) ** 2) / energy) if energy > 0 else None

    def layout(self) -> dict[str, Any]:
        """The layout without the audio, JSON-ready (the sidecar file's content)."""
        return {
            "format": "fxclone-capture",
            "version": self.version,
            "sample_rate": self.sample_rate,
            "samples": self.samples,
            "seconds": round(self.samples / self.sample_rate, 3),
            "regions": [r.to_dict() for r in self.regions],
            "clicks": list(self.clicks),
            "repeat": {
                "start_a": self.repeat.start_a,
                "start_b": self.repeat.start_b,
                "length": self.repeat.length,
            },
        }


def capture_signal(sample_rate: int = 48000) -> Capture:
    """The capture signal at ``sample_rate`` (cached: every call returns the same object).

    Raises:
        ValueError: a sample rate below 8 kHz.
    """
    if int(sample_rate) != sample_rate or sample_rate < 8000:
        raise ValueError(f"capture sample rate {sample_rate!r} must be a whole number >= 8000")
    return _build(int(sample_rate))


def write_capture(path: str | os.PathLike[str], sample_rate: int = 48000) -> Path:
    """Write the capture signal as 32-bit float WAV and its layout beside it as ``<stem>.json``.

    Returns:
        the audio file's path.
    """
    p = Path(path)
    capture = capture_signal(sample_rate)
    write_audio(p, capture.audio, capture.sample_rate)
    write_json(p.with_suffix(".json"), capture.layout())
    return p


def recognise(dry: np.ndarray, sample_rate: int) -> Capture | None:
    """Return the :class:`Capture` if ``dry`` is the capture signal at ``sample_rate``, else None.

    ``dry`` is ``(channels, samples)`` or ``(samples,)``. It matches when it has exactly the
    capture's length and its first :data:`RECOGNISE_SECONDS` agree sample by sample within
    :data:`RECOGNISE_TOLERANCE` (so 16- and 24-bit re-encodings match; other rates do not).
    """
    x = np.asarray(dry)
    if x.ndim == 1:
        x = x[None, :]
    if x.ndim != 2 or int(sample_rate) < 8000 or sample_rate != int(sample_rate):
        return None
    sr = int(sample_rate)
    if x.shape[1] != _total_samples(sr):
        return None
    head = min(x.shape[1], round(RECOGNISE_SECONDS * sr))
    probe = x[:, :head].astype(np.float64).mean(axis=0)
    capture = capture_signal(sr)
    if float(np.max(np.abs(probe - capture.audio[0, :head]))) > RECOGNISE_TOLERANCE:
        return None
    return capture


# --- layout -------------------------------------------------------------------------------


def _plan() -> list[tuple[str, str, str, float, float]]:
    """``(name, kind, split, seconds, gap_after_seconds)`` for each region, in order."""
    plan: list[tuple[str, str, str, float, float]] = [
        ("lead_in", "silence", "align", 0.5, 0.0),
        ("clicks_start", "clicks", "align", 2.0, 0.0),
    ]
    plan += [(f"sweep_{_db(v)}", "sweep", "train", 5.0, 1.0) for v in SWEEP_LEVELS_DB]
    plan += [(f"white_{_db(v)}", "noise", "train", 2.0, 0.5) for v in WHITE_RMS_DB]
    plan += [(f"pink_{_db(v)}", "noise", "train", 2.0, 0.5) for v in PINK_RMS_DB]
    steps = len(STEP_LEVELS_DB) * STEP_SECONDS
    plan += [
        ("steps_tone", "steps", "train", steps, 1.0),
        ("steps_noise", "steps", "train", steps, 1.0),
        ("music", "music", "train", 60.0, 1.0),
        ("plucks", "music", "train", 20.0, 1.0),
        ("repeat_a", "repeat", "train", 5.0, 2.0),
        ("repeat_b", "repeat", "train", 5.0, 1.0),
        ("val", "music", "val", 20.0, 1.0),
        ("test", "music", "test", 25.0, 1.0),
        ("clicks_end", "clicks", "align", 2.0, 0.0),
        ("lead_out", "silence", "align", 0.5, 0.0),
    ]
    return plan


def _db(value: float) -> str:
    return f"{int(round(value))}dB".replace("-", "m")


@functools.lru_cache(maxsize=8)
def _layout(sample_rate: int) -> tuple[Region, ...]:
    regions: list[Region] = []
    position = 0
    for name, kind, split, seconds, gap in _plan():
        length = round(seconds * sample_rate)
        regions.append(Region(name, kind, split, position, position + length))
        position += length
        if gap > 0:
            length = round(gap * sample_rate)
            regions.append(Region(f"{name}_gap", "gap", split, position, position + length))
            position += length
    return tuple(regions)


def _total_samples(sample_rate: int) -> int:
    return _layout(sample_rate)[-1].end


# --- content ------------------------------------------------------------------------------


@functools.lru_cache(maxsize=4)
def _build(sample_rate: int) -> Capture:
    regions = _layout(sample_rate)
    out = np.zeros(regions[-1].end)
    rng = np.random.default_rng(_SEEDS["noise"])
    clicks: list[int] = []
    for r in regions:
        n = r.end - r.start
        if r.kind in ("silence", "gap") or r.name == "repeat_b":  # repeat_b: copied below
            continue
        if r.kind == "clicks":
            for offset in CLICK_OFFSETS_S:
                position = r.start + round(offset * sample_rate)
                _add_click(out, position, sample_rate)
                clicks.append(position)
            continue
        if r.kind == "sweep":
            part = _sweep(sample_rate, n) * _gain(_level(r.name))
        elif r.kind == "noise":
            part = _noise(rng, n, pink=r.name.startswith("pink"))
            part *= _gain(_level(r.name)) / np.sqrt(np.mean(part**2))
            fade_edges(part, round(0.01 * sample_rate), round(0.01 * sample_rate))
        elif r.kind == "steps":
            if r.name == "steps_tone":
                part = _saw(sample_rate, n, 110.0)
            else:
                part = _noise(rng, n, pink=True)
            part = part / np.max(np.abs(part)) * _steps(sample_rate, n)
        else:
            part = _material(r.name, sample_rate, n)
            if r.kind == "repeat":  # loud enough that the rig's noise floor is measurable
                part *= _gain(REPEAT_PEAK_DBFS) / np.max(np.abs(part))
        out[r.start : r.end] = _limit(part)
    repeat_a, repeat_b = _region(regions, "repeat_a"), _region(regions, "repeat_b")
    out[repeat_b.start : repeat_b.end] = out[repeat_a.start : repeat_a.end]
    audio = out.astype(np.float32)[None, :]
    audio.flags.writeable = False
    return Capture(
        audio=audio,
        sample_rate=sample_rate,
        version=VERSION,
        regions=regions,
        clicks=tuple(clicks),
        repeat=Repeat(repeat_a.start, repeat_b.start, repeat_a.end - repeat_a.start),
    )


def _region(regions: tuple[Region, ...], name: str) -> Region:
    return next(r for r in regions if r.name == name)


def _level(name: str) -> float:
    """The level in a region's name: ``sweep_m12dB`` is -12 dB."""
    return float(name.split("_")[1].removesuffix("dB").replace("m", "-"))


def _gain(db: float) -> float:
    return float(10 ** (db / 20))


def _limit(part: np.ndarray) -> np.ndarray:
    """Scale down (never up) so the peak is at most :data:`PEAK_DBFS`."""
    peak = float(np.max(np.abs(part))) if part.size else 0.0
    ceiling = _gain(PEAK_DBFS)
    return part * (ceiling / peak) if peak > ceiling else part


def _add_click(out: np.ndarray, position: int, sample_rate: int) -> None:
    """A Hann-windowed sinc (cut-off 0.4 fs) peaking at ``position`` at -1 dBFS."""
    half = max(4, round(CLICK_HALF_WIDTH_S * sample_rate))
    k = np.arange(-half, half + 1)
    pulse = np.sinc(0.8 * k) * (0.5 + 0.5 * np.cos(np.pi * k / (half + 1)))
    out[position - half : position + half + 1] += pulse / pulse.max() * _gain(PEAK_DBFS)


def _sweep(sample_rate: int, n: int) -> np.ndarray:
    """Exponential sine sweep from 20 Hz to 0.45 fs over ``n`` samples, peak 1, faded edges."""
    f1, f2 = 20.0, 0.45 * sample_rate
    duration = n / sample_rate
    rate = np.log(f2 / f1)
    t = np.arange(n) / sample_rate
    phase = 2 * np.pi * f1 * duration / rate * (np.exp(t * rate / duration) - 1.0)
    sweep = np.sin(phase)
    fade_edges(sweep, round(0.05 * sample_rate), round(0.005 * sample_rate))
    return sweep


def _noise(rng: np.random.Generator, n: int, *, pink: bool) -> np.ndarray:
    noise = rng.standard_normal(n)
    if pink:  # -3 dB/octave
        spectrum = np.fft.rfft(noise)
        bins = np.arange(spectrum.size, dtype=np.float64)
        bins[0] = np.inf
        noise = np.fft.irfft(spectrum / np.sqrt(np.maximum(bins, 1.0)), n)
    return noise


def _saw(sample_rate: int, n: int, freq: float) -> np.ndarray:
    """A band-limited sawtooth (harmonics up to 0.42 fs) from a one-cycle table."""
    size = 1 << 15
    spectrum = np.zeros(size // 2 + 1, dtype=np.complex128)
    k = np.arange(1, int(0.42 * sample_rate // freq) + 1)
    spectrum[k] = 1j * size / (np.pi * k)
    table = np.fft.irfft(spectrum, size)
    table = np.append(table, table[0])
    position = (np.arange(n) * (freq / sample_rate) % 1.0) * size
    index = position.astype(np.int64)
    return table[index] + (position - index) * (table[index + 1] - table[index])


def _steps(sample_rate: int, n: int) -> np.ndarray:
    """Gain following :data:`STEP_LEVELS_DB`, one step per :data:`STEP_SECONDS`, 1-ms ramps."""
    levels = np.asarray(STEP_LEVELS_DB, dtype=np.float64)
    edges = np.linspace(0, n, levels.size + 1)
    ramp = 0.001 * sample_rate
    xp = np.concatenate(
        [[0.0], np.repeat(edges[1:-1], 2) + np.tile([-ramp, ramp], levels.size - 1), [n]]
    )
    gain = 10 ** (np.interp(np.arange(n), xp, np.repeat(levels, 2)) / 20)
    fade_edges(gain, round(0.005 * sample_rate), round(0.005 * sample_rate))
    return gain


def _material(name: str, sample_rate: int, n: int) -> np.ndarray:
    mix = {"plucks": _PLUCK_MIX, "test": TEST_MIX}.get(name, TRAIN_MIX)
    seed = _SEEDS["repeat" if name.startswith("repeat") else name]
    seconds = n / sample_rate
    segment = min(10.0, seconds)
    part = np.concatenate(list(iter_segments(seed, sample_rate, seconds, mix, segment)))
    part = part.astype(np.float64)[:n]
    fade_edges(part, round(0.005 * sample_rate), round(0.02 * sample_rate))
    return part
