"""The MUSHRA-style test: rate conditions 0-100 against an open reference."""

from __future__ import annotations

import html
import os
from collections.abc import Mapping, Sequence

import numpy as np

from fxclone.errors import FxcloneError
from fxclone.report.listening.common import (
    ANCHOR,
    HIDDEN_REFERENCE,
    PathLike,
    Session,
    as_strs,
    ci_text,
    fade,
    lowpass_anchor,
    mushra_stats,
    now,
    page_html,
    read_matching,
    wav_bytes,
)


class MushraSession(Session):
    """A MUSHRA test: rate each condition 0-100 against an open reference.

    Besides the given conditions every screen holds a hidden reference (the reference itself)
    and an anchor (the reference low-passed at 3.5 kHz, see :func:`lowpass_anchor`), shuffled
    per screen with ``np.random.default_rng(seed)`` and labelled 1..K.

    Args:
        reference_path: one file, cut into ``screens`` equal segments whose first
            ``excerpt_seconds`` are played; or a list of files, one per screen (``screens``
            is then the length of the list and each condition must be a list of the same
            length).
        conditions: ``{name: file or list of files}``, at least one, e.g. model outputs
            aligned with the reference.
        out_json: results file; an existing one from the same test is resumed.
        screens: number of screens when cutting one reference file.
        seed: shuffle seed.
        excerpt_seconds: longest excerpt per screen, in seconds.
        debug: render each slider's condition name as ``data-condition`` (automated tests).
    """

    def __init__(
        self,
        reference_path: PathLike | Sequence[PathLike],
        conditions: Mapping[str, PathLike | Sequence[PathLike]],
        out_json: PathLike,
        screens: int = 2,
        seed: int = 0,
        excerpt_seconds: float = 8.0,
        debug: bool = False,
    ) -> None:
        if len(conditions) < 1:
            raise FxcloneError(
                "MUSHRA needs at least 1 condition besides the reference, got 0; "
                "pass a model output to rate"
            )
        for name in (HIDDEN_REFERENCE, ANCHOR):
            if name in conditions:
                raise FxcloneError(f"condition name {name!r} is reserved; rename that condition")
        names = list(conditions)
        screen_clips, sample_rate = self._clips(
            reference_path, conditions, screens, excerpt_seconds
        )
        rng = np.random.default_rng(seed)
        all_names = [*names, HIDDEN_REFERENCE, ANCHOR]
        self.order = [[all_names[i] for i in rng.permutation(len(all_names))] for _ in screen_clips]
        config = {
            "test": "mushra",
            "reference": as_strs(reference_path),
            "conditions": {k: as_strs(v) for k, v in conditions.items()},
            "screens": len(screen_clips),
            "seed": seed,
            "excerpt_seconds": excerpt_seconds,
            "order": self.order,
        }
        super().__init__(out_json, config, debug)
        for s, (ref, clips) in enumerate(screen_clips):
            items = {**dict(zip(names, clips, strict=True)), HIDDEN_REFERENCE: ref}
            items[ANCHOR] = lowpass_anchor(ref, sample_rate)
            self.audio[f"{s + 1}/ref"] = wav_bytes(fade(ref, sample_rate), sample_rate)
            for label, name in enumerate(self.order[s], start=1):
                self.audio[f"{s + 1}/{label}"] = wav_bytes(
                    fade(items[name], sample_rate), sample_rate
                )

    @staticmethod
    def _clips(
        reference_path: PathLike | Sequence[PathLike],
        conditions: Mapping[str, PathLike | Sequence[PathLike]],
        screens: int,
        excerpt_seconds: float,
    ) -> tuple[list[tuple[np.ndarray, list[np.ndarray]]], int]:
        """Return ``[(reference, [condition clips...]) per screen]`` and the sample rate."""
        if not isinstance(reference_path, str | os.PathLike):
            refs = list(reference_path)
            cond_lists = []
            for name, value in conditions.items():
                files = [value] if isinstance(value, str | os.PathLike) else list(value)
                if len(files) != len(refs):
                    raise FxcloneError(
                        f"condition {name!r} has {len(files)} file(s) but there are "
                        f"{len(refs)} reference files; give one file per reference"
                    )
                cond_lists.append(files)
            out = []
            for i, ref in enumerate(refs):
                clips, sample_rate = read_matching([ref, *(c[i] for c in cond_lists)])
                n = min(c.shape[-1] for c in clips)
                out.append((clips[0][:, :n], [c[:, :n] for c in clips[1:]]))
            return out, sample_rate
        if screens < 1:
            raise FxcloneError(f"MUSHRA screens={screens}; use at least 1")
        for name, value in conditions.items():
            if not isinstance(value, str | os.PathLike):
                raise FxcloneError(
                    f"condition {name!r} is a list but the reference is one file; "
                    "give one file per condition, or a list of reference files"
                )
        clips, sample_rate = read_matching([reference_path, *conditions.values()])  # type: ignore[list-item]
        n = min(c.shape[-1] for c in clips)
        segment = n // screens
        if segment < 0.5 * sample_rate:
            raise FxcloneError(
                f"{reference_path} gives {n / sample_rate:.2f} s of audio, too short for "
                f"{screens} screens of at least 0.5 s; pass fewer screens or longer audio"
            )
        length = min(segment, int(excerpt_seconds * sample_rate))
        cuts = [c_[:, s * segment : s * segment + length] for s in range(screens) for c_ in clips]
        k = len(clips)
        return [(cuts[s * k], cuts[s * k + 1 : (s + 1) * k]) for s in range(screens)], sample_rate

    @property
    def finished(self) -> bool:  # type: ignore[override]
        return len(self.results) >= len(self.order)

    def audio_for(self, key: str) -> bytes | None:
        """WAV bytes for ``"<screen>/ref"`` or ``"<screen>/<label>"``, or ``None``."""
        return self.audio.get(key)

    def summary(self) -> dict | None:
        if not self.results:
            return None
        per_name: dict[str, list[float]] = {name: [] for name in self.order[0]}
        for r in self.results:
            for name, value in r["ratings"].items():
                per_name[name].append(value)
        return mushra_stats(per_name)

    def submit(self, form: Mapping[str, str]) -> None:
        screen = int(form["screen"])
        if self.finished or screen != len(self.results) + 1:
            return  # a repeated post of a rated screen
        ratings = {}
        for label, name in enumerate(self.order[screen - 1], start=1):
            value = float(form[f"r{label}"])
            if not 0.0 <= value <= 100.0:
                raise ValueError(f"rating {value} is outside 0..100")
            ratings[name] = value
        self.results.append({"screen": screen, "ratings": ratings, "time": now()})
        self.save()

    def page(self) -> str:
        if self.finished:
            stats_by_name = sorted((self.summary() or {}).items(), key=lambda kv: -kv[1]["mean"])
            rows = "".join(
                f"<tr><td>{html.escape(name)}</td><td>{s['mean']:.1f}</td>"
                f"<td>{ci_text(s['ci95'])}</td><td>{s['n']}</td></tr>"
                for name, s in stats_by_name
            )
            return page_html(
                "MUSHRA result",
                "<h1>MUSHRA result</h1><table id='results'><tr><th>condition</th><th>mean</th>"
                f"<th>95 % CI</th><th>n</th></tr>{rows}</table>"
                f"<p>Saved to {html.escape(str(self.out_json))}</p><p>You can close this tab.</p>",
            )
        screen = len(self.results) + 1
        sliders = []
        for label, name in enumerate(self.order[screen - 1], start=1):
            attr = f" data-condition='{html.escape(name)}'" if self.debug else ""
            sliders.append(
                f"<div class='player'><b>{label}</b><audio controls preload='auto' "
                f"src='/audio/{screen}/{label}'></audio><input type='range' min='0' max='100' "
                f"value='50' name='r{label}' id='r{label}'{attr}><output>50</output></div>"
            )
        return page_html(
            f"MUSHRA screen {screen}",
            f"<h1>MUSHRA: screen {screen} of {len(self.order)}</h1>"
            "<p>Rate each sound against the reference: 100 = indistinguishable, 0 = bad.</p>"
            f"<div class='player'><b>Reference</b><audio controls preload='auto' "
            f"src='/audio/{screen}/ref'></audio></div>"
            f"<form method='post' action='/submit' id='rate'>"
            f"<input type='hidden' name='screen' value='{screen}'>{''.join(sliders)}"
            "<button id='next'>Next</button></form>",
        )
