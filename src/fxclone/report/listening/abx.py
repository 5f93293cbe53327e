"""The ABX test: is X the first file or the second?"""

from __future__ import annotations

import html
from collections.abc import Mapping

import numpy as np

from fxclone.errors import FxcloneError
from fxclone.report.listening.common import (
    PathLike,
    Session,
    abx_p_value,
    now,
    page_html,
    read_matching,
    wav_bytes,
)


class AbxSession(Session):
    """An ABX test: is file A audibly different from file B?

    Per trial X is A or B, and the two files may be swapped between the "A" and "B" players;
    both are drawn up front from ``np.random.default_rng(seed)`` and saved in the JSON as
    ``plan`` entries ``{"trial", "x_is", "swapped"}``, where ``x_is`` names the player
    ("A"/"B") and ``swapped`` means the "A" player plays ``b_path``.

    Args:
        a_path, b_path: the two audio files (same sample rate), e.g. target and model output.
        out_json: results file; an existing one from the same test is resumed.
        trials: number of trials (>= 1).
        seed: randomisation seed.
        labels: names of ``a_path`` and ``b_path`` in the results.
        debug: render X's identity as ``data-x`` on the page (for automated tests only).
    """

    def __init__(
        self,
        a_path: PathLike,
        b_path: PathLike,
        out_json: PathLike,
        trials: int = 10,
        seed: int = 0,
        labels: tuple[str, str] = ("A", "B"),
        debug: bool = False,
    ) -> None:
        if trials < 1:
            raise FxcloneError(f"ABX trials={trials}; use at least 1 (10 or more is usual)")
        (a, b), sample_rate = read_matching([a_path, b_path])
        rng = np.random.default_rng(seed)
        x_is_a = rng.integers(0, 2, size=trials) == 0
        swapped = rng.integers(0, 2, size=trials) == 1
        self.plan = [
            {"trial": i + 1, "x_is": "A" if x_is_a[i] else "B", "swapped": bool(swapped[i])}
            for i in range(trials)
        ]
        config = {
            "test": "abx",
            "a": str(a_path),
            "b": str(b_path),
            "labels": list(labels),
            "trials": trials,
            "seed": seed,
            "plan": self.plan,
        }
        super().__init__(out_json, config, debug)
        self._files = {"a": wav_bytes(a, sample_rate), "b": wav_bytes(b, sample_rate)}
        self.labels = labels

    @property
    def finished(self) -> bool:  # type: ignore[override]
        return len(self.results) >= len(self.plan)

    def file_of(self, trial: int, player: str) -> str:
        """Which file ("a" or "b") the ``player`` ("A", "B" or "X") plays in 1-based ``trial``."""
        step = self.plan[trial - 1]
        if player == "X":
            player = str(step["x_is"])
        return "ab"[(player == "B") != step["swapped"]]

    def audio_for(self, key: str) -> bytes | None:
        """WAV bytes for an audio key ``"<trial>/<A|B|X>"``, or ``None`` if there is none."""
        trial, _, player = key.partition("/")
        if not trial.isdigit() or not 1 <= int(trial) <= len(self.plan) or player not in "ABX":
            return None
        return self._files[self.file_of(int(trial), player)]

    def summary(self) -> dict | None:
        if not self.finished:
            return None
        correct = sum(r["correct"] for r in self.results)
        trials = len(self.results)
        return {"correct": correct, "trials": trials, "p_value": abx_p_value(correct, trials)}

    def submit(self, form: Mapping[str, str]) -> None:
        trial, answer = int(form["trial"]), form["answer"]
        if answer not in ("A", "B"):
            raise ValueError(f"answer must be A or B, not {answer!r}")
        if self.finished or trial != len(self.results) + 1:
            return  # a repeated post (reload, double click) of an answered trial
        step = self.plan[trial - 1]
        self.results.append(
            {
                "trial": trial,
                "x_is": step["x_is"],
                "x_file": self.labels[self.file_of(trial, "X") == "b"],
                "answer": answer,
                "correct": answer == step["x_is"],
                "time": now(),
            }
        )
        self.save()

    def page(self) -> str:
        if self.finished:
            s = self.summary() or {}
            return page_html(
                "ABX result",
                f"<h1>ABX result</h1><p id='score'>{s['correct']}/{s['trials']} correct</p>"
                f"<p id='p'>One-sided binomial p = {s['p_value']:.3g} (chance of scoring "
                f"at least this well by guessing)</p><p>Saved to {html.escape(str(self.out_json))}"
                "</p><p>You can close this tab.</p>",
            )
        trial = len(self.results) + 1
        x_attr = f" data-x='{self.plan[trial - 1]['x_is']}'" if self.debug else ""
        players = "".join(
            f"<div class='player'><b>{p}</b><audio controls preload='auto' "
            f"src='/audio/{trial}/{p}'></audio></div>"
            for p in "ABX"
        )
        return page_html(
            f"ABX trial {trial}",
            f"<h1>ABX: trial {trial} of {len(self.plan)}</h1>"
            f"<p>Is X the same as A or as B?</p>{players}"
            f"<form method='post' action='/submit' id='answer'{x_attr}>"
            f"<input type='hidden' name='trial' value='{trial}'>"
            "<button name='answer' value='A' id='xa'>X is A</button>"
            "<button name='answer' value='B' id='xb'>X is B</button></form>",
        )
