"""One model for the whole pedal: a knob-conditioned capture against single-setting captures.

For one effect (built-in, or an external command such as an LV2 plugin through ``lv2file``):

1. ``fxclone generate`` the dataset and ``fxclone render`` it with every given knob range
   sampled per segment (Latin hypercube), so each 2-s segment has its own setting;
2. ``fxclone train`` one knob-conditioned model for ``--minutes``;
3. ``fxclone sweep`` it over ``--points`` settings that were never rendered for training
   (each at least ``--min-distance``, normalised, from every training and validation
   setting; each knob's extremes included), rendering the test split at each;
4. for 3 of those settings (the worst, the median and the best of the sweep), render the
   same dry audio at that one setting, train a single-setting model for the same
   ``--minutes``, and score both models on that setting's test split with ``fxclone
   evaluate``.

With two knobs, settings sampled per 2-s segment leave no point 0.1 away from all of them:
train on a grid instead (``--sampling grid --segment-seconds 14.4``: 36 segments, a grid of 6
values per knob) and sweep a grid that falls between (``--levels 11``: 42 of its points are
0.1 or more from every training setting, the extremes of both knobs among them).

The result (``OUT/result.json`` and a Markdown table) gives the sweep's median and worst test
ESR and their ratios to the single-setting models' ESR: the median of the sweep over the
median of the three single-setting models, and the worst setting against its own
single-setting model (ESRs under 1e-12, 120 dB down, count as 1e-12).

    python benchmarks/knobs.py --effect distortion --knob drive=0:40 --knob tone=500:8000 \\
        --knob level=-24:6 --minutes 10 --out /tmp/knobs_distortion
    python benchmarks/knobs.py --effect compressor --knob threshold=-60:0 --knob ratio=1:20 \\
        --knob attack=0.1:200 --knob release=5:2000 --minutes 10 --out /tmp/knobs_comp
    python benchmarks/knobs.py --in-channels 2 --out-channel left --knob drive=0:1 \\
        --knob muffle=0:1 --sampling grid --segment-seconds 14.4 --levels 11 --minutes 10 \\
        --command 'lv2file -i {dry} -o {wet} -p drive:{drive} -p muffle:{muffle} \\
        http://drobilla.net/plugins/mda/Overdrive' --out /tmp/knobs_overdrive
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

# ESRs below this count as this in the ratios: an error 120 dB under the signal, a few hundred
# times the float32 rounding of the rendered files (about 1e-15). Exact grey-box models reach
# that rounding, and a ratio of two rounding errors, or of anything to an ESR of 0, says
# nothing.
ESR_FLOOR = 1e-12


def ratio(conditioned: float, single: float) -> float:
    return max(conditioned, ESR_FLOOR) / max(single, ESR_FLOOR)


def fxclone(*args: str, cwd: Path, threads: int | None = None) -> str:
    env = dict(os.environ)
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    proc = subprocess.run(
        [sys.executable, "-m", "fxclone", *args], cwd=cwd, capture_output=True, text=True, env=env
    )
    if proc.returncode != 0:
        sys.exit(f"fxclone {' '.join(args)} failed:\n{proc.stdout}{proc.stderr}")
    return proc.stdout


def source_args(args: argparse.Namespace) -> list[str]:
    if args.command:
        out = ["--out-channel", args.out_channel] if args.out_channel else []
        return ["--command", args.command, "--in-channels", str(args.in_channels), *out]
    return ["--effect", args.effect]


def esr_of(out: Path, model: str, data: str, name: str, threads: int | None) -> float:
    fxclone("evaluate", model, data, "--out", name, cwd=out, threads=threads)
    return float(json.loads((out / name / "metrics.json").read_text())["esr"])


def train(out: Path, data: str, model: str, args: argparse.Namespace, extra=()) -> None:
    if (out / model).exists():
        return  # resumable: a finished model is kept
    fxclone("train", data, "--out", model, "--minutes", str(args.minutes), "--epochs", "100000",
            "--seed", str(args.seed), *(["--model", args.model] if args.model else []), *extra,
            cwd=out, threads=args.threads)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="working folder (resumable)")
    parser.add_argument("--effect", default="distortion", help="built-in effect")
    parser.add_argument("--command", help="external renderer (fxclone render --command)")
    parser.add_argument("--in-channels", type=int, default=1)
    parser.add_argument("--out-channel", help="keep one channel of a stereo renderer (left)")
    parser.add_argument("--knob", action="append", default=[], help="NAME=LO:HI or NAME=VALUE")
    parser.add_argument("--minutes", type=float, default=10.0, help="training wall time each")
    parser.add_argument("--model", help="model preset for every model (default: fxclone's)")
    parser.add_argument("--train-seconds", type=float, default=360.0)
    parser.add_argument("--points", type=int, default=24, help="unseen settings in the sweep")
    parser.add_argument("--min-distance", type=float, default=0.1)
    parser.add_argument("--sampling", default="lhs", help="training settings: lhs, random, grid")
    parser.add_argument("--segment-seconds", type=float, help="seconds per training setting")
    parser.add_argument("--levels", type=int, default=5, help="sweep grid values per knob")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, help="OMP_NUM_THREADS for training")
    parser.add_argument("--jobs", type=int, default=1, help="single-setting models at once")
    parser.add_argument(
        "--train-config", type=Path,
        help="JSON training settings for the conditioned model (fxclone train --config)",
    )  # fmt: skip
    args = parser.parse_args()
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    knobs = [a for k in args.knob for a in ("--knob", k)]
    generate = ["--train-seconds", str(args.train_seconds), "--seed", str(args.seed)]

    if not (out / "data" / "wet").is_dir():
        fxclone("generate", "data", *generate, cwd=out)
        segments = ["--segment-seconds", str(args.segment_seconds)] if args.segment_seconds else []
        fxclone("render", "data", *source_args(args), *knobs, "--seed", str(args.seed),
                "--sampling", args.sampling, *segments, cwd=out)  # fmt: skip
    t0 = time.time()
    extra = ["--config", str(args.train_config.resolve())] if args.train_config else []
    train(out, "data", "conditioned.safetensors", args, extra)
    if not (out / "sweep" / "sweep.json").exists():
        fxclone("sweep", "conditioned.safetensors", "data", "--out", "sweep", "--points",
                str(args.points), "--min-distance", str(args.min_distance), "--levels",
                str(args.levels), cwd=out)  # fmt: skip
    sweep = json.loads((out / "sweep" / "sweep.json").read_text())
    rows = sorted(sweep["rows"], key=lambda r: r["esr"])
    picks = {"best": rows[0], "median": rows[len(rows) // 2], "worst": rows[-1]}

    for label, row in picks.items():
        folder = f"single_{label}"
        fixed = [
            a for name, value in row["setting"].items() for a in ("--knob", f"{name}={value:g}")
        ]
        record = out / folder / "setting.json"
        setting = json.dumps({k: round(v, 6) for k, v in sorted(row["setting"].items())})
        if (out / folder).exists() and (not record.exists() or record.read_text() != setting):
            # a rerun picked another setting for this label: its single-setting model goes
            for stale in (folder, f"{folder}.safetensors", f"{folder}.safetensors.run",
                          f"eval_{folder}"):  # fmt: skip
                path = out / stale
                if path.is_dir():
                    shutil.rmtree(path)
                elif path.exists():
                    path.unlink()
        if not (out / folder / "wet").is_dir():
            fxclone("generate", folder, *generate, cwd=out)
            fxclone("render", folder, *source_args(args), *fixed, cwd=out)
            record.write_text(setting)
    # the single-setting models, --jobs at a time (one thread each with --threads 1)
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        for done in [pool.submit(train, out, f"single_{label}", f"single_{label}.safetensors",
                                 args) for label in picks]:  # fmt: skip
            done.result()

    compared = {}
    for label, row in picks.items():
        setting = row["setting"]
        folder = f"single_{label}"
        model = f"{folder}.safetensors"
        single = esr_of(out, model, folder, f"eval_{folder}", args.threads)
        conditioned = esr_of(out, "conditioned.safetensors", folder, f"eval_cond_{label}",
                             args.threads)  # fmt: skip
        compared[label] = {"setting": setting, "sweep_esr": row["esr"],
                           "conditioned_esr": conditioned, "single_esr": single,
                           "ratio": ratio(conditioned, single)}  # fmt: skip

    esrs = [r["esr"] for r in rows]
    single_median = statistics.median(c["single_esr"] for c in compared.values())
    result = {
        "effect": args.command or args.effect,
        "knobs": args.knob,
        "minutes": args.minutes,
        "model": args.model or "default",
        "train_seconds": args.train_seconds,
        "settings": len(rows),
        "min_distance_to_training": min(r["nearest_training_distance"] for r in rows),
        "sweep_median_esr": statistics.median(esrs),
        "sweep_worst_esr": max(esrs),
        "single_median_esr": single_median,
        "median_ratio": ratio(statistics.median(esrs), single_median),
        "worst_ratio": ratio(compared["worst"]["conditioned_esr"], compared["worst"]["single_esr"]),
        "esr_floor": ESR_FLOOR,
        "compared": compared,
        "hours": round((time.time() - t0) / 3600, 2),
        "date": time.strftime("%Y-%m-%d"),
    }
    (out / "result.json").write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))
    print("\n| effect | settings | median ESR | worst ESR | single-setting ESR (median of 3) "
          "| median ratio | worst ratio |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    print(
        f"| {result['effect']} {' '.join(args.knob)} | {len(rows)} "
        f"| {result['sweep_median_esr']:.4g} | {result['sweep_worst_esr']:.4g} "
        f"| {single_median:.4g} | {result['median_ratio']:.2f} | {result['worst_ratio']:.2f} |"
    )
    print("\n| setting | sweep ESR | conditioned ESR (eval) | single-setting ESR | ratio |")
    print("|---|---|---|---|---|")
    for label, c in compared.items():
        text = ", ".join(f"{k}={v:.4g}" for k, v in c["setting"].items())
        print(f"| {label}: {text} | {c['sweep_esr']:.4g} | {c['conditioned_esr']:.4g} "
              f"| {c['single_esr']:.4g} | {c['ratio']:.2f} |")  # fmt: skip


if __name__ == "__main__":
    main()
