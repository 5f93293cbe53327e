"""Leaderboards of every model on the seed effects, through ``fxclone compare``.

For each effect: the default dataset (``fxclone generate``, 120 s train / 20 s validation /
30 s test) rendered through the built-in effect, then ``fxclone compare`` with every preset (or
``--models``) at ``--minutes`` of training each. Results accumulate in
``OUT/<effect>/board/leaderboard.json``, so the list can be filled over several sittings:
re-running skips what is scored and resumes what was interrupted.

The effects are the seeds' tasks: McCool's distortion, a compressor, the KTH 440 Hz
high-pass (at 16 kHz with a 4-s test split, see EFFECTS) and McCool's chorus.

    python benchmarks/leaderboards.py --out /tmp/boards --minutes 2
    python benchmarks/leaderboards.py --out /tmp/boards --effects highpass --models kth-lstm,kth-gru
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

# effect: (render knobs, generate options)
EFFECTS = {
    "distortion": ([], []),
    "compressor": ([], []),
    # KTH's task. At 16 kHz with a 4-s test split, so that their window-per-sample models
    # (hundreds of times slower than real time on a CPU) can be scored at all.
    "highpass": (["--knob", "cutoff=440"], ["--sample-rate", "16000", "--test-seconds", "4"]),
    "chorus": ([], []),
}


def run(*args: str, cwd: Path, threads: int | None) -> None:
    env = dict(os.environ)
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    proc = subprocess.run([sys.executable, "-m", "fxclone", *args], cwd=cwd, env=env)
    if proc.returncode != 0:
        sys.exit(f"fxclone {' '.join(args)} failed in {cwd}")


def prepare(
    folder: Path, render: list[str], threads: int | None, generate: Sequence[str] = ()
) -> Path:
    """``folder`` (made if absent, resolved) holding ``data``: the default dataset generated
    with ``generate`` options and rendered with ``render`` arguments, unless already there."""
    folder = folder.resolve()
    folder.mkdir(parents=True, exist_ok=True)
    if not (folder / "data" / "wet").is_dir():
        run("generate", "data", *generate, cwd=folder, threads=threads)
        run("render", "data", *render, cwd=folder, threads=threads)
    return folder


def main() -> None:
    from fxclone.models.registry import PRESETS

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--effects", default=",".join(EFFECTS))
    parser.add_argument("--models", default=",".join(PRESETS))
    parser.add_argument("--minutes", type=float, default=2.0)
    parser.add_argument("--threads", type=int, help="OMP_NUM_THREADS for training")
    parser.add_argument(
        "--max-eval-minutes", type=float, default=15.0,
        help="models slower than this over the test split are scored on part of it",
    )  # fmt: skip
    args = parser.parse_args()
    for effect in args.effects.split(","):
        knobs, options = EFFECTS[effect]
        folder = prepare(args.out / effect, ["--effect", effect, *knobs], args.threads, options)
        run("compare", "data", "--models", args.models, "--minutes", str(args.minutes),
            "--max-eval-minutes", str(args.max_eval_minutes), "--out", "board", cwd=folder,
            threads=args.threads)  # fmt: skip
        print(f"\n### {effect}\n")
        print((folder / "board" / "leaderboard.md").read_text())


if __name__ == "__main__":
    main()
