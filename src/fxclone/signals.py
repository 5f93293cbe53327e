"""Synthetic dry material: seeded tones, plucks, chords, noise, silences and level sweeps.

This extends McCool's generator (10-s segments of chirps, sines, square and sawtooth waves,
80-1200 Hz, with varying note density and note length) to the guitar/bass/keys range (about
40 Hz - 4 kHz fundamentals) and adds Karplus-Strong plucked strings, chords, noise bursts,
silences and level sweeps, because a model only learns the part of an effect the training
audio visits: nonlinear effects depend on level, compressors on level changes, delays and
reverbs on silence after a note.

Every segment is built from *events*. Each event draws its material from a :class:`Mix`
(relative weights), a duration, a start time and a level; the segment is then scaled so its
peak lies in :data:`PEAK_DBFS_RANGE`, so levels vary from one segment to the next.
Square and sawtooth waves are synthesised from their harmonics up to
``HARMONIC_LIMIT * sample_rate`` (a band-limited wavetable), so the dry signal never aliases.
Everything is numpy float64 inside and float32 mono ``(samples,)`` outside; the same seed
always gives the same samples.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass

import numpy as np

from fxclone.sounds import (
    EVENTS,
    cos_ramp,
    log_uniform,
    peak_normalise,
)

MATERIALS = (
    "chirp",
    "sine",
    "square",
    "saw",
    "pluck",
    "chord",
    "noise",
    "silence",
    "level_sweep",
)
PEAK_DBFS_RANGE = (-30.0, -1.0)  # each segment's peak is drawn uniformly (in dB) from here
VELOCITY_DB = (-24.0, 0.0)  # per-note level inside a segment


@dataclass(frozen=True)
class Mix:
    """Relative weights of the materials in :data:`MATERIALS` (any non-negative scale).

    ``silence`` mutes stretches of a segment; ``level_sweep`` is a held sound under a fade,
    swell or staircase of level changes. ``name`` is recorded in dataset manifests.
    """

    chirp: float = 0.0
    sine: float = 0.0
    square: float = 0.0
    saw: float = 0.0
    pluck: float = 0.0
    chord: float = 0.0
    noise: float = 0.0
    silence: float = 0.0
    level_sweep: float = 0.0
    name: str = "custom"

    def __post_init__(self) -> None:
        for material in MATERIALS:
            weight = getattr(self, material)
            if not (isinstance(weight, int | float) and np.isfinite(weight) and weight >= 0):
                raise ValueError(f"Mix {self.name!r}: weight {material}={weight!r} must be >= 0")
        if not any(getattr(self, m) > 0 for m in MATERIALS if m != "silence"):
            raise ValueError(f"Mix {self.name!r} needs a positive weight on a sounding material")

    def probabilities(self) -> np.ndarray:
        """The weights in :data:`MATERIALS` order, scaled to sum to 1."""
        weights = np.array([getattr(self, m) for m in MATERIALS], dtype=np.float64)
        return weights / weights.sum()

    def to_dict(self) -> dict[str, float | str]:
        """A JSON-ready description (for manifests)."""
        return asdict(self)


# McCool's material dominates training; the test mix leans on what training sees least
# (plucked strings, chords, level sweeps), so test figures measure generalisation.
TRAIN_MIX = Mix(
    chirp=2.0,
    sine=2.0,
    square=2.0,
    saw=2.0,
    pluck=1.0,
    chord=0.5,
    noise=0.5,
    silence=0.5,
    level_sweep=0.5,
    name="train-mix",
)
TEST_MIX = Mix(
    chirp=1.0, pluck=3.0, chord=3.0, noise=0.3, silence=0.5, level_sweep=2.0, name="test-mix"
)


def synth_segment(
    rng: np.random.Generator, sample_rate: int, seconds: float, mix: Mix
) -> np.ndarray:
    """One segment of synthetic dry audio.

    Args:
        rng: the source of every random choice (the segment is a pure function of its state).
        sample_rate: in Hz.
        seconds: segment length; ``round(seconds * sample_rate)`` samples (at least one).
        mix: material weights.

    Returns:
        float32 ``(samples,)``, peak drawn from :data:`PEAK_DBFS_RANGE` (so never above -1 dBFS).
    """
    n = max(1, round(seconds * sample_rate))
    out = np.zeros(n)
    notes = _note_count(rng, seconds)
    events = rng.choice(len(MATERIALS), size=notes, p=mix.probabilities())
    # A chord or a sweep holds several notes; counting them keeps the density musical.
    events = events[: int(np.searchsorted(np.cumsum(_NOTE_COST[events]), notes)) + 1]
    silence = MATERIALS.index("silence")
    if np.all(events == silence):  # a segment always holds at least one sound
        sounding = mix.probabilities().copy()
        sounding[silence] = 0.0
        events[0] = rng.choice(len(MATERIALS), p=sounding / sounding.sum())
    mutes = []
    for index in events:
        material = MATERIALS[index]
        length = min(n, max(1, round(_duration_s(rng, material) * sample_rate)))
        start = int(rng.integers(0, n - length + 1))
        if material == "silence":
            mutes.append((start, length))
            continue
        sound = EVENTS[material](rng, sample_rate, length)
        # Sweeps carry their own 20-39 dB level range; a velocity on top would bury them.
        velocity_db = 0.0 if material == "level_sweep" else rng.uniform(*VELOCITY_DB)
        out[start : start + length] += peak_normalise(sound) * 10 ** (velocity_db / 20)
    muted = _mute(out, mutes, round(0.005 * sample_rate))
    if np.any(muted):
        out = muted
    peak_db = rng.uniform(*PEAK_DBFS_RANGE)
    return (peak_normalise(out) * 10 ** (peak_db / 20)).astype(np.float32)


def iter_segments(
    seed: int, sample_rate: int, seconds: float, mix: Mix, segment_seconds: float = 10.0
) -> Iterator[np.ndarray]:
    """Yield the segments of :func:`synth_track` one at a time (bounded memory).

    Segment ``k`` depends only on ``(seed, k)``, so a longer track starts with the same audio.
    """
    total = round(seconds * sample_rate)
    step = max(1, round(segment_seconds * sample_rate))
    count = -(-total // step)
    for k, child in enumerate(np.random.SeedSequence(seed).spawn(count)):
        length = min(step, total - k * step)
        yield synth_segment(np.random.default_rng(child), sample_rate, length / sample_rate, mix)


def synth_track(
    seed: int, sample_rate: int, seconds: float, mix: Mix, segment_seconds: float = 10.0
) -> np.ndarray:
    """Concatenated segments: float32 ``(round(seconds * sample_rate),)``, mono."""
    segments = list(iter_segments(seed, sample_rate, seconds, mix, segment_seconds))
    return np.concatenate(segments) if segments else np.zeros(0, dtype=np.float32)


# --- event scheduling ------------------------------------------------------------------


_NOTE_COST = np.array([4.0 if m in ("chord", "level_sweep") else 1.0 for m in MATERIALS])


def _note_count(rng: np.random.Generator, seconds: float) -> int:
    # McCool's notes-per-10-s draw (genrate.py:41-45), scaled to the segment length.
    u = rng.random()
    low, high = (5, 50) if u < 0.4 else (1, 10) if u < 0.8 else (10, 100) if u < 0.9 else (100, 150)
    return max(1, round(int(rng.integers(low, high)) * seconds / 10.0))


def _duration_s(rng: np.random.Generator, material: str) -> float:
    if material in ("chirp", "sine", "square", "saw"):
        # McCool's note lengths (genrate.py:54-58), made continuous.
        u = rng.random()
        if u < 0.3:
            return rng.uniform(0.8, 1.2)
        if u < 0.6:
            return rng.uniform(1.0, 2.5)
        return rng.uniform(0.05, 1.0) if u < 0.8 else rng.uniform(0.02, 0.5)
    low, high = {
        "pluck": (0.15, 4.0),
        "chord": (0.3, 4.0),
        "noise": (0.02, 2.0),
        "level_sweep": (1.0, 6.0),
        "silence": (0.1, 2.0),
    }[material]
    return log_uniform(rng, low, high)


def _mute(audio: np.ndarray, mutes: list[tuple[int, int]], ramp: int) -> np.ndarray:
    """Silence the given ``(start, length)`` stretches (ramped), at most half the segment."""
    gain = np.ones_like(audio)
    budget = audio.size // 2
    for start, length in mutes:
        length = min(length, budget)
        if length <= 2 * ramp:
            continue
        budget -= length
        hole = np.ones(length)
        hole[ramp:-ramp] = 0.0
        hole[:ramp] = cos_ramp(ramp)[::-1]
        hole[-ramp:] = cos_ramp(ramp)
        gain[start : start + length] = np.minimum(gain[start : start + length], hole)
    return audio * gain
