"""Aligning a recording (the wet) to the dry signal that was played to make it.

A reamped recording comes back late, with a DC offset, at another level and, when player and
recorder run on different clocks, stretched by some parts per million. :func:`align_pair`
undoes that so the wet lines up with the dry sample for sample, as a model needs.

Latency and drift are measured by :mod:`fxclone.latency`.
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from fxclone.audio import audio_info, read_audio, write_audio, write_json
from fxclone.capture import Capture, recognise
from fxclone.errors import FxcloneError
from fxclone.latency import (
    DriftEstimate,
    analyse,
    as_mono,
    as_two_d,
    correct_drift,
    estimate_drift,
    estimate_latency,
    fractional_delay,
    refine,
)

__all__ = [
    "AlignReport",
    "DriftEstimate",
    "align_files",
    "align_pair",
    "correct_drift",
    "estimate_drift",
    "estimate_latency",
    "fractional_delay",
]

CLIP_LEVEL = 0.999


@dataclass(frozen=True)
class AlignReport:
    """What :func:`align_pair` measured and did (gain in dB applied to the wet, or None)."""

    sample_rate: int
    samples: int
    latency_samples: float
    kept_samples: float
    correlation: float
    polarity_inverted: bool
    drift: DriftEstimate
    dc_offset: float
    gain_db: float | None
    trimmed_start: int
    trimmed_end: int
    wet_peak: float
    clip_fraction: float
    clipped: bool
    repeatability_esr: float | None = None
    capture_version: int | None = None
    notes: tuple[str, ...] = ()

    @property
    def latency_ms(self) -> float:
        """The latency in milliseconds."""
        return 1000.0 * self.latency_samples / self.sample_rate

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields, the drift nested, the latency also in ms."""
        return {**dataclasses.asdict(self), "latency_ms": self.latency_ms}

    def summary_lines(self) -> list[str]:
        """Human-readable lines, one per finding."""
        d, peak_db = self.drift, 20 * math.log10(max(self.wet_peak, 1e-12))
        lines = [
            f"latency {self.latency_samples:.2f} samples ({self.latency_ms:.2f} ms), corrected"
            + (
                f" except {self.kept_samples:.1f} samples kept so the effect stays causal"
                if self.kept_samples
                else ""
            ),
            *(["polarity inverted (kept as recorded)"] if self.polarity_inverted else []),
            f"clock drift {d.ppm:+.1f} ppm, corrected"
            if d.detected
            else f"no clock drift detected (fit {d.fitted_ppm:+.3f} ppm)",
            f"DC offset {self.dc_offset:.4f} removed",
            "level kept as recorded"
            if self.gain_db is None
            else f"level matched: wet scaled by {self.gain_db:+.1f} dB",
            f"trimmed {self.trimmed_start} samples at the start, {self.trimmed_end} at the end",
            f"clipping: the recording reaches full scale ({peak_db:.2f} dBFS, "
            f"{100 * self.clip_fraction:.3f} % of samples flat at the peak); record again "
            "with less input gain"
            if self.clipped
            else f"no clipping (peak {peak_db:.1f} dBFS)",
        ]
        if self.repeatability_esr is not None:
            lines.append(f"repeatability floor ESR {self.repeatability_esr:.1e}")
        return lines + list(self.notes)


def align_pair(
    dry: np.ndarray,
    wet: np.ndarray,
    sample_rate: int,
    *,
    capture: Capture | None = None,
    match_level: bool = True,
    max_latency_s: float = 1.0,
    keep_ms: float = 0.0,
) -> tuple[np.ndarray, np.ndarray, AlignReport]:
    """Line the wet up with the dry: ``(dry, wet, report)``, float32, trimmed to one length.

    Removes the wet's DC, corrects clock drift, removes the latency (fractional delay), scales
    the wet to the dry's RMS over the aligned span if ``match_level``, and trims both to the
    span they share. ``dry`` and ``wet`` are ``(channels, n)`` or ``(n,)`` (analysed as the
    channels' mean); after the latency the wet may be up to max(1 s, 1 %) longer or shorter.
    ``capture`` (the dry's layout if it is the capture signal) adds the repeatability floor,
    :meth:`fxclone.capture.Capture.repeatability_esr`.

    The latency measured is where the wet correlates best with the dry, which for an effect
    with filters includes some of its own group delay. ``keep_ms`` leaves that much of the
    latency in place (the wet stays slightly late), so a causal model never has to predict
    the wet from dry input that has not arrived yet; 0 aligns exactly.
    """
    sr = int(sample_rate)
    dry2, wet2 = as_two_d(dry, "dry"), as_two_d(wet, "wet")
    n_dry = dry2.shape[1]
    if capture is not None and (capture.samples, capture.sample_rate) != (n_dry, sr):
        raise FxcloneError(
            f"the capture layout ({capture.samples} samples at {capture.sample_rate} Hz) does "
            f"not fit the dry ({n_dry} samples at {sr} Hz); pass the capture signal as the dry"
        )
    peak = float(np.max(np.abs(wet2)))
    clip_fraction = _flat_fraction(wet2, peak)
    dc = wet2.mean(axis=1, keepdims=True)
    wet2 = wet2 - dc
    d = as_mono(dry2, "dry")
    latency, correlation, inverted, drift, pool = analyse(
        d, as_mono(wet2, "wet"), sr, max_latency_s
    )
    if drift.detected:  # resample, then measure the latency again from the same windows
        wet2 = correct_drift(wet2, drift.ppm)
        expected = round(latency / (1.0 + drift.ppm * 1e-6))
        latency = refine(d, as_mono(wet2, "wet"), pool[0], pool[1], expected, pool[2])[0]
    n_wet = wet2.shape[1]
    surplus = (n_wet - latency) - n_dry
    if abs(surplus) > max(sr, 0.01 * n_dry):
        raise FxcloneError(
            f"the recording is {abs(surplus) / sr:.2f} s {'longer' if surplus > 0 else 'shorter'} "
            f"than the dry signal (wet {n_wet} samples = {n_wet / sr:.2f} s, dry {n_dry} samples "
            f"= {n_dry / sr:.2f} s, latency {latency:.1f} samples); record the whole dry file "
            "and stop within 1 s of its end, or trim both to the same passage"
        )
    kept = min(max(0.0, keep_ms * sr / 1000.0), max(0.0, latency))
    shift = latency - kept
    start = max(0, math.ceil(-shift - 0.01))  # a hundredth of a sample is rounding
    end = min(n_dry, math.floor(n_wet - shift + 0.01))
    if end - start < sr:
        raise FxcloneError(
            f"after removing a latency of {latency:.1f} samples only {max(0, end - start)} "
            "samples of the recording overlap the dry; give at least 1 s of recording"
        )
    out_dry = dry2[:, start:end].astype(np.float32)
    out_wet = fractional_delay(wet2.astype(np.float32), -shift)[:, start:end]
    gain_db = None
    if match_level and np.any(out_wet) and np.any(out_dry):
        gain = math.sqrt(np.mean(out_dry.astype(np.float64) ** 2) / np.mean(out_wet**2.0))
        gain_db, out_wet = 20 * math.log10(gain), (out_wet * np.float32(gain)).astype(np.float32)
    report = AlignReport(
        sample_rate=sr,
        samples=end - start,
        latency_samples=float(latency),
        kept_samples=float(kept),
        correlation=correlation,
        polarity_inverted=inverted,
        drift=drift,
        dc_offset=float(dc.ravel()[int(np.argmax(np.abs(dc.ravel())))]),
        gain_db=gain_db,
        trimmed_start=start,
        trimmed_end=n_dry - end,
        wet_peak=peak,
        clip_fraction=clip_fraction,
        clipped=peak >= CLIP_LEVEL,
        repeatability_esr=None if capture is None else capture.repeatability_esr(out_wet, start),
        capture_version=None if capture is None else capture.version,
    )
    return (
        (out_dry[0] if np.ndim(dry) == 1 else out_dry),
        (out_wet[0] if np.ndim(wet) == 1 else out_wet),
        report,
    )


def align_files(
    dry_path: str | os.PathLike[str],
    wet_path: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    *,
    report_path: str | os.PathLike[str] | None = None,
    **kwargs: Any,
) -> AlignReport:
    """Align the recording ``wet_path`` to ``dry_path``; write it to ``out_path``.

    The wet is resampled to the dry's rate and mixed to mono for a mono dry if need be (the
    notes say so); the file written has the dry's rate and length, silent where the recording
    did not cover the dry. A capture-signal dry is recognised. ``kwargs`` go to
    :func:`align_pair`; the report is written as JSON to ``report_path`` if given.
    """
    dry, sr = read_audio(dry_path)
    wet_rate = audio_info(wet_path)[0]
    wet, _ = read_audio(wet_path, sample_rate=sr)
    notes = [f"recording resampled from {wet_rate} Hz to the dry's {sr} Hz"] * (wet_rate != sr)
    if dry.shape[0] == 1 and wet.shape[0] > 1:
        notes.append(f"{wet.shape[0]}-channel recording mixed to mono to match the mono dry")
        wet = wet.mean(axis=0, keepdims=True)
    if "capture" not in kwargs:
        kwargs["capture"] = recognise(dry, sr)
    try:
        _, aligned, report = align_pair(dry, wet, sr, **kwargs)
    except FxcloneError as err:
        raise FxcloneError(f"{wet_path} against {dry_path}: {err}") from None
    report = dataclasses.replace(report, notes=report.notes + tuple(notes))
    full = np.zeros((aligned.shape[0], dry.shape[1]), dtype=np.float32)
    full[:, report.trimmed_start : report.trimmed_start + report.samples] = aligned
    write_audio(out_path, full, sr)
    if report_path is not None:
        write_json(report_path, report.to_dict())
    return report


def _flat_fraction(wet: np.ndarray, peak: float) -> float:
    """Share of samples within 0.1 % of the peak in runs of 3 or more (flat, clipped tops)."""
    flat = 0
    for channel in np.abs(wet) >= peak * 0.999 if peak > 0 else []:
        edges = np.diff(np.concatenate([[0], channel.astype(np.int8), [0]]))
        runs = np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1)
        flat += int(runs[runs >= 3].sum())
    return flat / wet.size
