"""Pitch shift and octave: the phase-vocoder and octaver models against plain networks, the dry
signal and silence.

For each effect: the default dataset (``fxclone generate``: 120 s train, 20 s validation, 30 s
test of other material, 48 kHz) rendered through the built-in effect at its default knobs
(``pitch``: +7 semitones, shifted voice only; ``octave``: octave down 40 %, up 25 %, dry
40 %), then ``fxclone train --model pitch`` and ``--model octaver`` (closed form: seconds to a
minute) and, for comparison,
``wavenet-standard`` and ``lstm`` trained for ``--minutes`` each. Scored on the test split
(never used for fitting): MRSTFT distance (phase-blind) and ESR of each, of the dry signal
and of silence; and the fundamental of steady test tones (sines at 110, 220, 440 and 880 Hz)
through the model against the effect's, in cents.

    python benchmarks/pitch.py --out /tmp/pitch --threads 1
    python benchmarks/pitch.py --out /tmp/pitch --effects octave --minutes 2
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import torch
from leaderboards import prepare, run

EFFECTS = ("pitch", "octave")
FITTED = ("pitch", "octaver")
BASELINES = ("wavenet-standard", "lstm")
TONES_HZ = (110.0, 220.0, 440.0, 880.0)


def f0(x: np.ndarray, sr: int) -> float:
    """The strongest frequency of a steady tone (zero-padded FFT peak)."""
    spectrum = np.abs(np.fft.rfft(x * np.hanning(x.size), 1 << 22))
    return float(np.argmax(spectrum)) * sr / (1 << 22)


def tone_cents(model, effect: str, sr: int) -> list[float]:
    """Per test tone: the model's output fundamental against the effect's, in cents (both
    measured on the second half of a 2-s sine)."""
    from fxclone.effects.registry import get_effect

    fx = get_effect(effect)
    knobs = {k.name: k.default for k in fx.knobs}
    t = np.arange(2 * sr) / sr
    errors = []
    for hz in TONES_HZ:
        tone = (0.3 * np.sin(2 * np.pi * hz * t)).astype(np.float32)
        target = fx.process(tone[None], sr, knobs)[0][sr:]
        with torch.no_grad():
            out = model(torch.from_numpy(tone)[None, None])[0, 0].numpy()[sr:]
        errors.append(1200 * float(np.log2(f0(out, sr) / f0(target, sr))))
    return errors


def score(folder: Path, effect: str, names: list[str]) -> dict:
    from fxclone.dataset import load_dataset, load_pairs
    from fxclone.metrics import esr, mrstft
    from fxclone.modelfile import load_model

    info = load_dataset(folder / "data")
    test = load_pairs(info, "test")
    dry = np.concatenate([p.dry for p in test], axis=1)
    wet = np.concatenate([p.wet for p in test], axis=1)
    sr = info.sample_rate
    rows = {"dry": dry, "silence": np.zeros_like(dry)}
    result: dict = {"effect": effect}
    for name in names:
        model = load_model(folder / f"{name}.safetensors").model.eval()
        with torch.no_grad():
            rows[name] = model(torch.from_numpy(dry)[None])[0].numpy()
        if name == "pitch":
            result["ratio"] = model.ratio
        if name in FITTED:
            result.setdefault("tone_cents", {})[name] = tone_cents(model, effect, sr)
    for name, out in rows.items():
        result[name] = {"mrstft": mrstft(wet, out, sr), "esr": esr(wet, out)}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--effects", default=",".join(EFFECTS))
    parser.add_argument("--minutes", type=float, default=2.0, help="each plain network's budget")
    parser.add_argument("--threads", type=int, help="OMP_NUM_THREADS for training")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    results = []
    for effect in args.effects.split(","):
        folder = prepare(args.out / effect, ["--effect", effect], args.threads)
        times = (
            json.loads((folder / "times.json").read_text())
            if (folder / "times.json").exists()
            else {}
        )
        for name in (*FITTED, *BASELINES):
            if not (folder / f"{name}.safetensors").exists():
                t0 = time.time()
                run("train", "data", "--model", name, "--minutes", str(args.minutes), "--out",
                    f"{name}.safetensors", cwd=folder, threads=args.threads)  # fmt: skip
                times[name] = time.time() - t0
                (folder / "times.json").write_text(json.dumps(times))
        result = score(folder, effect, [*FITTED, *BASELINES]) | {"times": times}
        (folder / "result.json").write_text(json.dumps(result, indent=1))
        results.append(result)
    print(f"command: {' '.join(os.sys.argv)}")
    print("| effect | output | MRSTFT | ESR | time (s) |")
    print("|---|---|---|---|---|")
    for r in results:
        for name in (*FITTED, *BASELINES, "dry", "silence"):
            seconds = r["times"].get(name)
            print(f"| {r['effect']} | {name} | {r[name]['mrstft']:.3g} | {r[name]['esr']:.3g} "
                  f"| {'' if seconds is None else f'{seconds:.0f}'} |")  # fmt: skip
    for r in results:
        for name, errors in r["tone_cents"].items():
            cents = ", ".join(f"{c:+.2f}" for c in errors)
            ratio = f"; ratio {r['ratio']:.5f}" if name == "pitch" else ""
            print(f"{r['effect']}, {name}: test tones {TONES_HZ} Hz, model - effect (cents): "
                  f"{cents}{ratio}")  # fmt: skip


if __name__ == "__main__":
    main()
