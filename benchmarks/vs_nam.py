"""fxclone against Neural Amp Modeler's own trainer: same data, same CPU wall time, same test.

Both trainers get the same dry/wet dataset (an fxclone dataset folder: its train split to
train on, its validation split to select checkpoints, its test split, never trained on, to
score) and the same wall-clock budget on the same machine, one after the other:

* **NAM**: the ``neural-amp-modeler`` package's full trainer (``nam.train.full.main``) with
  its standard WaveNet (``nam_full_configs/models/wavenet.json``: 16/8 channels, Adam at
  lr 0.004, ExponentialLR gamma 0.993), the loss its simplified trainer uses (ESR validation
  loss, MRSTFT weight 5e-4), batch 16 and ny 8192 as in its default learning config. Its
  exported ``.nam`` is read back with ``fxclone.export.import_nam`` (exact; see
  tests/test_export.py).
* **fxclone**: ``fxclone train`` with the default model and recipe.

Both models are then scored by ``fxclone evaluate`` on the same test split.

Examples::

    python benchmarks/vs_nam.py --effect ampcab --minutes 10 --out /tmp/vs_ampcab
    python benchmarks/vs_nam.py --effect fuzz --minutes 10 --out /tmp/vs_fuzz
    python benchmarks/vs_nam.py --minutes 10 --out /tmp/vs_combo --in-channels 2 --knob drive=0.8 \
        --command 'lv2file -i {dry} -o {wet} -p drive:{drive} http://drobilla.net/plugins/mda/Combo'

Results: ``OUT/result.json`` and one Markdown row printed for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
NAM_MODEL = {
    "net": {
        "name": "WaveNet",
        "config": {
            "layers_configs": [
                {"condition_size": 1, "input_size": 1, "channels": 16, "kernel_size": 3,
                 "head": {"out_channels": 8, "kernel_size": 1, "bias": False},
                 "dilations": [1, 2, 4, 8, 16, 32, 64, 128, 256, 512],
                 "activation": "Tanh", "gated": False},
                {"condition_size": 1, "input_size": 16, "channels": 8, "kernel_size": 3,
                 "head": {"out_channels": 1, "kernel_size": 1, "bias": True},
                 "dilations": [1, 2, 4, 8, 16, 32, 64, 128, 256, 512],
                 "activation": "Tanh", "gated": False},
            ],
            "head_scale": 0.02,
        },
    },
    "loss": {"val_loss": "esr", "mrstft_weight": 5e-4},
    "optimizer": {"lr": 0.004},
    "lr_scheduler": {"class": "ExponentialLR", "kwargs": {"gamma": 0.993}},
}  # fmt: skip


def fxclone(*args: str, cwd: Path) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "fxclone", *args], cwd=cwd, capture_output=True, text=True
    )
    if proc.returncode != 0:
        sys.exit(f"fxclone {' '.join(args)} failed:\n{proc.stdout}{proc.stderr}")
    return proc.stdout


def make_dataset(args: argparse.Namespace, out: Path) -> Path:
    """The dataset folder: given, or generated and rendered through the effect."""
    if args.data:
        return args.data.resolve()
    data = out / "data"
    if not (data / "wet").is_dir():
        fxclone("generate", "data", "--seed", str(args.seed), cwd=out)
        knobs = [a for k in args.knob for a in ("--knob", k)]
        if args.command:
            source = ["--command", args.command, "--in-channels", str(args.in_channels)]
        else:
            source = ["--effect", args.effect]
        fxclone("render", "data", *source, *knobs, cwd=out)
    return data


def joined(data: Path, split: str, out: Path) -> tuple[Path, Path]:
    """One dry and one wet file holding a split's items end to end (NAM reads one pair)."""
    import soundfile as sf

    paths = []
    for side in ("dry", "wet"):
        files = sorted((data / side).glob(f"{split}_*.wav"))
        audio = [sf.read(f, dtype="float32", always_2d=True)[0][:, 0] for f in files]
        rate = sf.info(files[0]).samplerate
        path = out / f"nam_{split}_{side}.wav"
        sf.write(path, np.concatenate(audio), rate, subtype="FLOAT")
        paths.append(path)
    return paths[0], paths[1]


def train_nam(data: Path, out: Path, minutes: float, seed: int) -> tuple[Path, float]:
    """Train NAM's standard WaveNet for ``minutes``; returns its .nam file and seconds."""
    import torch
    from nam.train.full import main as nam_main

    torch.manual_seed(seed)
    tx, ty = joined(data, "train", out)
    vx, vy = joined(data, "val", out)
    data_config = {
        "train": {"x_path": str(tx), "y_path": str(ty), "ny": 8192},
        "validation": {"x_path": str(vx), "y_path": str(vy), "ny": None},
        "common": {"delay": 0, "require_input_pre_silence": None},
    }
    learning_config = {
        "train_dataloader": {"batch_size": 16, "shuffle": True, "pin_memory": False,
                             "drop_last": True, "num_workers": 0},
        "val_dataloader": {},
        "trainer": {"accelerator": "cpu", "devices": 1, "max_epochs": 100_000,
                    "max_time": {"seconds": int(minutes * 60)}, "enable_progress_bar": False,
                    "logger": False},
    }  # fmt: skip
    run = out / "nam_run"
    run.mkdir(exist_ok=True)
    t0 = time.time()
    nam_main(data_config, NAM_MODEL, learning_config, run, no_show=True, make_plots=False)
    return run / "model.nam", time.time() - t0


def to_fxclone(nam_file: Path, dest: Path) -> Path:
    from fxclone.export import import_nam
    from fxclone.modelfile import save_model

    return save_model(dest, import_nam(nam_file), training={"trainer": "neural-amp-modeler"})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="working folder")
    parser.add_argument("--minutes", type=float, default=10.0, help="wall time per trainer")
    parser.add_argument("--effect", default="ampcab", help="built-in effect to capture")
    parser.add_argument("--command", help="external renderer (fxclone render --command)")
    parser.add_argument("--in-channels", type=int, default=1)
    parser.add_argument("--knob", action="append", default=[], help="NAME=VALUE")
    parser.add_argument("--data", type=Path, help="an already rendered dataset folder")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--reuse-nam",
        action="store_true",
        help="keep the NAM model an earlier run left in OUT (nam.safetensors, nam.json)",
    )
    args = parser.parse_args()
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    data = make_dataset(args, out)
    result: dict = {"data": str(data), "minutes": args.minutes, "cpus": os.cpu_count()}

    nam_record = out / "nam.json"
    if args.reuse_nam and nam_record.exists() and (out / "nam.safetensors").exists():
        nam_seconds = json.loads(nam_record.read_text())["train_seconds"]
    else:
        nam_file, nam_seconds = train_nam(data, out, args.minutes, args.seed)
        to_fxclone(nam_file, out / "nam.safetensors")
        nam_record.write_text(json.dumps({"train_seconds": nam_seconds, "minutes": args.minutes}))
    fxclone("train", str(data), "--out", "fx.safetensors", "--minutes", str(args.minutes),
            "--epochs", "100000", "--seed", str(args.seed), "--fresh", cwd=out)  # fmt: skip
    for name in ("nam", "fx"):
        fxclone("evaluate", f"{name}.safetensors", str(data), "--out", f"eval_{name}", cwd=out)
        metrics = json.loads((out / f"eval_{name}" / "metrics.json").read_text())
        result[name] = {k: metrics.get(k) for k in ("esr", "esr_pre_emph", "mrstft")}
    result["nam"]["train_seconds"] = round(nam_seconds, 1)
    result["ratio"] = result["fx"]["esr"] / result["nam"]["esr"]
    result["date"] = time.strftime("%Y-%m-%d")
    (out / "result.json").write_text(json.dumps(result, indent=1))
    label = args.command or args.effect if not args.data else str(args.data)
    print(json.dumps(result, indent=1))
    print(
        f"| {label} {' '.join(args.knob)} | {args.minutes:g} min | {result['nam']['esr']:.4g} "
        f"| {result['fx']['esr']:.4g} | {result['ratio']:.2f} |"
    )


if __name__ == "__main__":
    main()
