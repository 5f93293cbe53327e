"""Real-time streaming speed on one CPU thread at 48 kHz, and `apply`'s peak memory.

Usage:
  .venv/bin/python benchmarks/realtime.py [--seconds 20] [--repeats 3] [--json out.json]
  .venv/bin/python benchmarks/realtime.py --memory [--max-seconds 7200] [--model wavenet-nano]

Speed: for every registered preset (untrained weights; speed does not depend on their
values) the same synthetic guitar-range audio is streamed through ``StreamProcessor`` in
blocks of 32, 64, 256 and 2048 samples. Per block size: the real-time factor (audio
seconds per wall second, mean over all blocks) and the 99th-percentile block time as a
fraction of the block's duration; then the real-time factor on digital silence after the
signal (64-sample blocks; a slowdown there would mean denormal numbers). In the same run,
Neural Amp Modeler's own PyTorch WaveNet of the standard size (``nam`` package, when it
can be imported) processes the same audio whole-buffer under ``torch.inference_mode``
(its fastest mode), and again on the first 5 s alone (its speed depends on the buffer
length); the ratios compare it with wavenet-standard at 64-sample blocks.
Each figure is the median of ``--repeats`` runs. Threads are pinned to one before numpy,
torch and numba start.

Memory: writes a 1-minute and a ``--max-seconds`` mono 16-bit WAV (streamed to disk in
chunks) and runs ``python -m fxclone apply`` on each in a subprocess, reporting each
child's peak resident memory (``wait4``'s ``ru_maxrss``).
"""

from __future__ import annotations

import argparse
import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[_var] = "1"

import datetime  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from statistics import median  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

from fxclone.models import PRESETS, create_model  # noqa: E402
from fxclone.signals import TEST_MIX, synth_track  # noqa: E402
from fxclone.streaming import StreamProcessor  # noqa: E402

SR = 48000
BLOCKS = (32, 64, 256, 2048)
NAM_STANDARD = {
    "layers": [
        {"input_size": 1, "condition_size": 1, "channels": 16, "kernel_size": 3,
         "head": {"out_channels": 8, "kernel_size": 1, "bias": False},
         "dilations": [1, 2, 4, 8, 16, 32, 64, 128, 256, 512], "activation": "Tanh",
         "gated": False},
        {"input_size": 16, "condition_size": 1, "channels": 8, "kernel_size": 3,
         "head": {"out_channels": 1, "kernel_size": 1, "bias": True},
         "dilations": [1, 2, 4, 8, 16, 32, 64, 128, 256, 512], "activation": "Tanh",
         "gated": False},
    ],
    "head": None,
    "head_scale": 0.02,
}  # fmt: skip


def stream_times(proc: StreamProcessor, audio: np.ndarray, block: int) -> np.ndarray:
    """Seconds spent on each block of ``audio`` (1, samples)."""
    times = np.empty((audio.shape[1] + block - 1) // block)
    clock = time.perf_counter
    for i, start in enumerate(range(0, audio.shape[1], block)):
        chunk = audio[:, start : start + block]
        t0 = clock()
        proc.process(chunk)
        times[i] = clock() - t0
    return times


def measure_model(name: str, audio: np.ndarray, reference: bool) -> dict:
    torch.manual_seed(0)
    model = create_model(name, sample_rate=SR).eval()
    row: dict = {"parameters": model.num_parameters()}
    proc = StreamProcessor(model, reference=reference)
    row["backend"] = "torch" if proc.kernel is None else proc.kernel.backend
    proc.process(audio[:, :4096])  # compile / warm up
    for block in BLOCKS:
        proc.reset()
        t = stream_times(proc, audio, block)
        row[f"rtf_{block}"] = audio.shape[1] / SR / t.sum()
        row[f"p99_{block}"] = float(np.percentile(t, 99)) / (block / SR)
    proc.reset()
    proc.process(audio)  # signal, then silence
    silence = np.zeros_like(audio)
    row["rtf_silence_64"] = silence.shape[1] / SR / stream_times(proc, silence, 64).sum()
    return row


def nam_whole_buffer(audio: np.ndarray) -> float | None:
    """Real-time factor of NAM's PyTorch WaveNet (standard size), or None if not importable."""
    try:
        from nam.models._from_nam import _init_wavenet
    except Exception:  # noqa: BLE001 - any import failure means: not available
        return None
    torch.manual_seed(0)
    model = _init_wavenet(json.loads(json.dumps(NAM_STANDARD)), float(SR)).eval()
    x = torch.from_numpy(audio)
    with torch.inference_mode():
        model(x[:, :SR])  # warm up
        t0 = time.perf_counter()
        y = model(x)
        elapsed = time.perf_counter() - t0
    assert y.shape[-1] == audio.shape[1]
    return audio.shape[1] / SR / elapsed


def run_speed(args: argparse.Namespace) -> dict:
    audio = synth_track(7, SR, args.seconds, TEST_MIX)[None].astype(np.float32)
    runs: list[dict] = []
    nam_rtf: list[float] = []
    nam_short: list[float] = []  # NAM's speed depends on the buffer length (cache)
    for _ in range(args.repeats):
        nam = nam_whole_buffer(audio)
        if nam is not None:
            nam_rtf.append(nam)
            nam_short.append(nam_whole_buffer(audio[:, : 5 * SR]) or 0.0)
        runs.append({n: measure_model(n, audio, args.reference) for n in args.models})
    models = {}
    for name in args.models:
        rows = [r[name] for r in runs]
        models[name] = {
            k: (median(r[k] for r in rows) if isinstance(rows[0][k], float) else rows[0][k])
            for k in rows[0]
        }
    result: dict = {"models": models, "nam_pytorch_rtf": median(nam_rtf) if nam_rtf else None}
    std = models.get("wavenet-standard")
    if result["nam_pytorch_rtf"] and std:
        result["nam_pytorch_rtf_5s"] = median(nam_short)
        result["standard_64_vs_nam"] = std["rtf_64"] / result["nam_pytorch_rtf"]
        result["standard_64_vs_nam_5s"] = std["rtf_64"] / result["nam_pytorch_rtf_5s"]
    return result


def write_wav(path: Path, seconds: float) -> None:
    import soundfile as sf

    rng = np.random.default_rng(0)
    chunk = SR * 60
    with sf.SoundFile(path, "w", SR, 1, subtype="PCM_16") as f:
        left = int(seconds * SR)
        while left > 0:
            n = min(chunk, left)
            f.write(0.3 * np.sin(np.arange(n) * 0.05) + 0.05 * rng.standard_normal(n))
            left -= n


def peak_rss_mb(cmd: list[str]) -> tuple[float, float]:
    """Run ``cmd``; return (peak resident memory in MB, wall seconds)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed with exit code {proc.returncode}")
    return usage.ru_maxrss / 1024, time.perf_counter() - t0


def run_memory(args: argparse.Namespace) -> dict:
    from fxclone.modelfile import save_model

    torch.manual_seed(0)
    result = {}
    with tempfile.TemporaryDirectory() as tmp:
        model = create_model(args.model, sample_rate=SR)
        model_path = save_model(Path(tmp) / "m.safetensors", model)
        for label, seconds in (("1 min", 60.0), (f"{args.max_seconds:g} s", args.max_seconds)):
            src, dst = Path(tmp) / "in.wav", Path(tmp) / "out.wav"
            write_wav(src, seconds)
            cmd = [sys.executable, "-m", "fxclone", "apply", str(model_path), str(src), str(dst)]
            rss, wall = peak_rss_mb(cmd)
            result[label] = {"seconds": seconds, "peak_rss_mb": rss, "wall_s": wall}
            print(f"| {label} | {rss:.0f} MB | {wall:.0f} s |", flush=True)
            src.unlink()
            dst.unlink()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--models", nargs="*", default=list(PRESETS))
    parser.add_argument("--reference", action="store_true", help="time the PyTorch step path")
    parser.add_argument("--memory", action="store_true", help="measure apply's peak memory")
    parser.add_argument("--max-seconds", type=float, default=7200.0)
    parser.add_argument("--model", default="wavenet-nano", help="model for --memory")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.set_flush_denormal(True)
    head = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.processor()}",
        "python": platform.python_version(),
        "torch": torch.__version__,
        "date": datetime.date.today().isoformat(),
        "threads": 1,
    }
    print(f"# {head}")
    if args.memory:
        print("| input | peak RSS | wall |\n|---|---|---|")
        result = {**head, "model": args.model, "memory": run_memory(args)}
    else:
        result = {**head, "seconds": args.seconds, "repeats": args.repeats, **run_speed(args)}
        print_table(result)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


def print_table(result: dict) -> None:
    cols = " | ".join(f"{b}: RTF, p99" for b in BLOCKS)
    print(f"| model | backend | {cols} | silence after signal (64) |")
    print("|---|---|" + "---|" * len(BLOCKS) + "---|")
    for name, r in result["models"].items():
        cells = " | ".join(f"{r[f'rtf_{b}']:.1f}x, {r[f'p99_{b}']:.2f}" for b in BLOCKS)
        print(f"| {name} | {r['backend']} | {cells} | {r['rtf_silence_64']:.1f}x |")
    nam = result["nam_pytorch_rtf"]
    if nam is None:
        print("Neural Amp Modeler (nam) could not be imported: its column is skipped.")
    else:
        print(f"NAM PyTorch WaveNet (standard), whole buffer: {nam:.1f}x real time")
        if "standard_64_vs_nam" in result:
            ratio = result["standard_64_vs_nam"]
            print(f"wavenet-standard at 64-sample blocks / NAM: {ratio:.1f}x")
            short, ratio5 = result["nam_pytorch_rtf_5s"], result["standard_64_vs_nam_5s"]
            print(f"NAM on the first 5 s only: {short:.1f}x real time (ratio {ratio5:.1f}x)")


if __name__ == "__main__":
    main()
