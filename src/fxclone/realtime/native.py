"""Builds and loads the native WaveNet kernel with the system C compiler, once per machine.

The shared library is compiled from :data:`fxclone.realtime._csource.SOURCE` with
``-O3 -march=native`` into a cache folder (``$FXCLONE_CACHE`` or ``~/.cache/fxclone``),
keyed by the source, the compiler and the CPU, and reused afterwards. Where no compiler
works, :func:`load` returns ``None`` and the numba kernel is used instead.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
from functools import cache
from pathlib import Path

from fxclone.realtime._csource import SOURCE

_FLAGS = (["-O3", "-march=native"], ["-O3"])


def cache_dir() -> Path:
    root = os.environ.get("FXCLONE_CACHE") or Path.home() / ".cache" / "fxclone"
    return Path(root) / "kernels"


def _cpu_signature() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return platform.processor()
    lines = [ln for ln in text.splitlines() if ln.startswith(("model name", "flags", "Features"))]
    return "\n".join(sorted(set(lines)))


def load(shapes: tuple[tuple[int, bool], ...]) -> ctypes.CDLL | None:
    """The kernel library for these ``(channels, gated)`` layer shapes, or ``None``.

    ``None`` where it cannot be built on this machine, or when ``FXCLONE_NATIVE=0``.
    """
    if os.environ.get("FXCLONE_NATIVE", "1") == "0":
        return None
    return _load(tuple(sorted(set(shapes))))


@cache
def _load(shapes: tuple[tuple[int, bool], ...]) -> ctypes.CDLL | None:
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if not cc:
        return None
    define = "SHAPES(X)=" + " ".join(f"X({c}, {int(g)})" for c, g in shapes)
    key = hashlib.sha256(
        "\n".join([SOURCE, define, cc, platform.machine(), _cpu_signature()]).encode()
    ).hexdigest()[:16]
    target = cache_dir() / f"wavenet-{key}.so"
    if not target.exists() and not _build(cc, define, target):
        return None
    try:
        lib = ctypes.CDLL(str(target))
    except OSError:
        return None
    vp = ctypes.c_void_p
    lib.wn_process.restype = None
    lib.wn_process.argtypes = [vp]
    return lib


def _build(cc: str, define: str, target: Path) -> bool:
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
            src = Path(tmp) / "wavenet.c"
            src.write_text(SOURCE)
            out = Path(tmp) / target.name
            for flags in _FLAGS:
                cmd = [cc, *flags, f"-D{define}", "-shared", "-fPIC", "-o", str(out), str(src)]
                done = subprocess.run(cmd, capture_output=True, timeout=300, check=False)
                if done.returncode == 0:
                    os.replace(out, target)  # atomic: concurrent builders agree
                    return True
    except (OSError, subprocess.SubprocessError):
        pass
    return False
