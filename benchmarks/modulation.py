"""Time-varying effects (tremolo, vibrato, chorus, flanger, phaser): the oscillator models.

For each effect: the default dataset (``fxclone generate``: 120 s train, 20 s validation, 30 s
test of other material, 48 kHz; every split rendered as one continuous stream), rendered
through the built-in effect at its default knobs, then ``fxclone train --model lfo`` (the
phaser: ``--model phaser``). The test split is never used for fitting or selection. Each
result is reported three ways:

(a) test ESR of the model run from the start of the test stream, and after re-fitting only
    its oscillator phase on the first 2 s of the test pair (scored on the rest);
(b) the modulation-spectrum distance between the model's test output and the target's
    (:func:`fxclone.metrics.modulation_distance`; the dry signal's for comparison);
(c) the model's oscillator rate and depth against the effect's knobs, read from the model
    without any fitting on the test split.

    python benchmarks/modulation.py --out /tmp/modulation --threads 1
    python benchmarks/modulation.py --out /tmp/modulation --effects chorus,flanger
    python benchmarks/modulation.py --out /tmp/modulation --effects mda-thruzero,mda-dubdelay
    python benchmarks/modulation.py --out /tmp/modulation --effects mda-detune

The ``mda-*`` entries render the mda LV2 plugins at their default settings through
``lv2file`` (``--command``, the left channel of their stereo output) and fit the oscillator
model, the impulse-response model to the delay and the ambience, or the splice model (a
delay-line pitch shifter) to Detune.
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

MDA = "lv2file -i {dry} -o {wet} http://drobilla.net/plugins/mda/"
STEREO = ["--in-channels", "2", "--out-channel", "left"]
# name: (render arguments, model, the effect's own rate in Hz where known)
EFFECTS: dict[str, tuple[list[str], str, float | None]] = {
    name: (["--effect", name], "phaser" if name == "phaser" else "lfo", None)
    for name in ("tremolo", "vibrato", "chorus", "flanger", "phaser")
} | {
    # ThruZero's default rate knob 0.3: 10^(3 x 0.3 - 2) Hz at the 44.1 kHz the plugin's
    # code assumes, so 48/44.1 of that at 48 kHz (measured on noise: a 11.6-s period, 0.086
    # Hz: its phase is a float32 sum, whose rounding slows it a little); its sweep is
    # 1 - saw^2 (a cusp at zero delay), 2000 x 0.43^2 = 370 samples deep (185 +- 185)
    "mda-thruzero": (
        ["--command", MDA + "ThruZero", *STEREO],
        "lfo",
        10 ** (3 * 0.3 - 2) * 48000 / 44100,
    ),
    # Leslie's defaults: the fast setting; its horn turns at 6.599 Hz and its drum at 5.475
    # (measured at 48 kHz on impulses and a 60-Hz tone: 33/32 of the 6.40 and 5.31 its code
    # sets), both spinning up from rest over seconds; the horn's Doppler delay swings along
    # 22.7 (1 + cos^3) samples (0.6^2 fs / 760), 0.474 ms either side of its centre
    "mda-leslie": (["--command", MDA + "Leslie", *STEREO], "rotary", 6.599),
    "mda-dubdelay": (["--command", MDA + "DubDelay", *STEREO], "ir", None),
    "mda-ambience": (["--command", MDA + "Ambience", *STEREO], "ir", None),
    # Detune's default: 2.4 cents down on the left (3 x 0.2^3 semitones), a 1024-sample
    # window at 48 kHz: the taps wrap round it at 48000 (1 - 2^(-0.024/12)) / 1024 Hz
    "mda-detune": (["--command", MDA + "Detune", *STEREO], "splice", 0.0649),
}


def depth_of(model, effect: str) -> float:
    """The model's modulation depth in the unit of the effect's ``depth`` knob."""
    if effect == "phaser":  # the break frequency's excursion, in % of the knobs' half span
        from fxclone.effects.registry import get_effect

        knobs = {k.name: k.default for k in get_effect(effect).knobs}
        half_span = 0.5 * np.log(knobs["high"] / knobs["low"])
        return float(100.0 * torch.linalg.vector_norm(model.sweep.detach()[0]) / half_span)
    if effect == "tremolo":  # the gain dip at the LFO's peak, in %
        theta = torch.linspace(0, 2 * np.pi, 4097)[:-1]
        from fxclone.models.lfo import harmonic_series

        gain = 1.0 + harmonic_series(theta, model.gain_shape.detach())
        return float(100.0 * (1.0 - gain.min() / gain.max()))
    voice = int(torch.argmax(model.voice_gain.detach().abs()))
    return abs(float(model.depth_ms.detach()[voice]))  # ms, peak deviation from the centre


def score(folder: Path, effect: str) -> dict:
    from fxclone.dataset import load_dataset, load_pairs
    from fxclone.effects.registry import get_effect
    from fxclone.metrics import esr, modulation_distance
    from fxclone.modelfile import load_model
    from fxclone.models.phase import refit_phase

    info = load_dataset(folder / "data")
    test = load_pairs(info, "test")
    dry = np.concatenate([p.dry for p in test], axis=1)
    wet = np.concatenate([p.wet for p in test], axis=1)
    model = load_model(folder / "model.safetensors").model.eval()
    sr = info.sample_rate
    with torch.no_grad():
        out = model(torch.from_numpy(dry)[None])[0].numpy()
    start = 2 * sr
    fitted = out
    if model.free_running:
        refit_phase(model, dry[0], wet[0], seconds=2.0)
        with torch.no_grad():
            fitted = model(torch.from_numpy(dry)[None])[0].numpy()
    row = {
        "effect": effect,
        "model": model.family,
        "esr": esr(wet, out),
        "esr_phase_fit": esr(wet[:, start:], fitted[:, start:]),
        "esr_dry": esr(wet, dry),
        "modulation_distance": modulation_distance(wet, out, sr),
        "modulation_distance_dry": modulation_distance(wet, dry, sr),
        "rate": getattr(model, "rate_hz", None),
        "rate_knob": EFFECTS[effect][2],
        "depth": None,
        "depth_knob": None,
    }
    if EFFECTS[effect][0][0] == "--effect":
        knobs = {k.name: k.default for k in get_effect(effect).knobs}
        row |= {"rate_knob": knobs["rate"], "depth": depth_of(model, effect)}
        row |= {"depth_knob": knobs["depth"]}
    if effect == "mda-thruzero":  # half the sweep: 0 to 2000 x 0.43^2 samples
        row |= {"depth": depth_of(model, effect), "depth_knob": 2000 * 0.43**2 / 2 / 48.0}
    if model.family == "rotary":  # the horn's Doppler swing (ms either side) and the drum
        row |= {"depth": model.depth_ms(1), "depth_knob": 0.6**2 / 760 * 1e3}
        row |= {"rate_low": model.rates_hz[0], "rate_low_knob": 5.475}
    return row


def _num(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}g}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--effects", default=",".join(list(EFFECTS)[:5]), help=", ".join(EFFECTS))
    parser.add_argument("--threads", type=int, help="OMP_NUM_THREADS for fitting")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = []
    for effect in args.effects.split(","):
        render, model, _ = EFFECTS[effect]
        folder = prepare(args.out / effect, render, args.threads)
        if not (folder / "model.safetensors").exists():
            t0 = time.time()
            # (the minutes are the ir model's fine-tuning; the others have no training stage)
            run("train", "data", "--model", model, "--minutes", "1", "--out",
                "model.safetensors", cwd=folder, threads=args.threads)  # fmt: skip
            (folder / "fit_seconds.txt").write_text(f"{time.time() - t0:.0f}")
        row = score(folder, effect) | {"fit_s": float((folder / "fit_seconds.txt").read_text())}
        (folder / "result.json").write_text(json.dumps(row, indent=1))
        rows.append(row)
    print(f"command: {' '.join(os.sys.argv)}")
    print("| effect | model | test ESR | after phase fit | dry ESR | modulation distance (dry) "
          "| rate Hz (effect's) | depth (knob) | fit time s |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['effect']} | {r['model']} | {r['esr']:.3g} | {r['esr_phase_fit']:.3g} "
              f"| {r['esr_dry']:.3g} | {r['modulation_distance']:.3g} "
              f"({r['modulation_distance_dry']:.3g}) | {_num(r['rate'], 5)} "
              f"({_num(r['rate_knob'])}) | {_num(r['depth'])} ({_num(r['depth_knob'])}) "
              f"| {r['fit_s']:.0f} |")  # fmt: skip


if __name__ == "__main__":
    main()
