"""Long-memory effects (delay, reverbs, tape echo, spring): the linear impulse-response model.

For each effect: the default dataset (``fxclone generate``: 120 s train, 20 s validation,
30 s test of other material, 48 kHz) rendered through the built-in effect at its default
knobs (the reverb at each of its three types), then ``fxclone compare`` with the models in
``--models`` (default: the ``ir`` model alone) at ``--minutes`` of training each. The
``ir`` model's closed-form least-squares fit happens before its clock starts; the minutes
are its fine-tuning. Results accumulate in ``OUT/<name>/board/leaderboard.json``.

    python benchmarks/long_memory.py --out /tmp/long --minutes 1 --threads 1
    python benchmarks/long_memory.py --out /tmp/long --effects spring --models ir,wavenet-lite
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from leaderboards import prepare, run

# name: (effect, render knobs)
EFFECTS = {
    "delay": ("delay", []),
    "reverb-room": ("reverb", ["--knob", "type=0"]),
    "reverb-plate": ("reverb", ["--knob", "type=1"]),
    "reverb-hall": ("reverb", ["--knob", "type=2"]),
    "tape_echo": ("tape_echo", []),
    "spring": ("spring", []),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--effects", default=",".join(EFFECTS))
    parser.add_argument("--models", default="ir")
    parser.add_argument("--minutes", type=float, default=1.0)
    parser.add_argument("--threads", type=int, help="OMP_NUM_THREADS for training")
    args = parser.parse_args()
    rows = []
    for name in args.effects.split(","):
        effect, knobs = EFFECTS[name]
        folder = prepare(args.out / name, ["--effect", effect, *knobs], args.threads)
        run("compare", "data", "--models", args.models, "--minutes", str(args.minutes),
            "--out", "board", cwd=folder, threads=args.threads)  # fmt: skip
        board = json.loads((folder / "board" / "leaderboard.json").read_text())
        rows += [(name, entry) for entry in board["rows"]]
    print("| effect | model | test ESR | linear FIR baseline (1,024 taps) | MRSTFT | x real time |")
    print("|---|---|---|---|---|---|")
    for name, e in rows:
        if e.get("test_esr") is None:
            continue
        print(f"| {name} | {e['model']} | {e['test_esr']:.3g} | {e['esr_linear_baseline']:.3g} | "
              f"{e['test_mrstft']:.3g} | {e['rtf_64']} |")  # fmt: skip


if __name__ == "__main__":
    main()
