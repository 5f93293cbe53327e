"""Real-time factor of `fxclone apply` on one CPU thread at 48 kHz, for every registered model.

Usage: .venv/bin/python benchmarks/apply_speed.py [--seconds 60] [--block-size 8192]

Streams a synthetic guitar-range file from disk to disk through each preset (untrained
weights; speed does not depend on their values) and prints seconds of audio per second of
wall time. Threads are pinned to one before torch starts.
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import platform  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402

from fxclone.audio import write_audio  # noqa: E402
from fxclone.models import PRESETS, create_model  # noqa: E402
from fxclone.signals import TEST_MIX, synth_track  # noqa: E402
from fxclone.streaming import apply_file  # noqa: E402

SR = 48000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--block-size", type=int, default=8192)
    parser.add_argument("--models", nargs="*", default=list(PRESETS))
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.set_flush_denormal(True)
    print(f"# {platform.processor() or platform.machine()}, torch {torch.__version__}, 1 thread")
    print(f"# {args.seconds:g} s at {SR} Hz, block size {args.block_size}")
    print("| model | parameters | real-time factor |")
    print("|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        dry = synth_track(7, SR, args.seconds, TEST_MIX)[None]
        src = write_audio(Path(tmp) / "in.wav", dry, SR)
        for name in args.models:
            torch.manual_seed(0)
            model = create_model(name, sample_rate=SR).eval()
            t0 = time.perf_counter()
            apply_file(model, src, Path(tmp) / "out.wav", block_size=args.block_size)
            rtf = args.seconds / (time.perf_counter() - t0)
            print(f"| {name} | {model.num_parameters():,} | {rtf:.1f}x |", flush=True)


if __name__ == "__main__":
    main()
