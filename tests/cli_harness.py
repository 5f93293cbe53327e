"""Running the ``fxclone`` CLI in tests: forked from one warm process, checked for clean failure.

Each case runs ``python -m fxclone ...`` in a process of its own. To keep dozens of cases
fast, the processes are forked from one server that has already imported fxclone and its
dependencies (torch, lightning) without computing anything; each child then runs the
``fxclone`` module as ``__main__`` exactly as ``python -m fxclone`` does, with its own
stdout/stderr files, working folder and file-size limit. ``test_forked_cases_match_a_plain_
subprocess`` (tests/test_cli_errors.py) checks that a plain subprocess behaves the same.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

SR = 48000

SERVER = r"""
import json, os, resource, runpy, sys, traceback
import fxclone.cli, fxclone.effects, fxclone.journey, fxclone.modelfile, fxclone.training
import lightning.pytorch  # imported, never run, so forking is safe
for line in sys.stdin:
    req = json.loads(line)
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.chdir(req["cwd"])
            for fd, name, flags in ((0, os.devnull, os.O_RDONLY),
                                    (1, req["stdout"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC),
                                    (2, req["stderr"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC)):
                os.dup2(os.open(name, flags, 0o644), fd)
            if req.get("tmpdir"):
                import tempfile
                os.environ["TMPDIR"] = tempfile.tempdir = req["tmpdir"]
            if req["fsize"]:
                resource.setrlimit(resource.RLIMIT_FSIZE, (req["fsize"], req["fsize"]))
            sys.argv = ["fxclone", *req["argv"]]
            try:
                runpy.run_module("fxclone", run_name="__main__", alter_sys=True)
                code = 0
            except SystemExit as exc:
                if isinstance(exc.code, int) or exc.code is None:
                    code = exc.code or 0
                else:
                    print(exc.code, file=sys.stderr)
        except BaseException:
            traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    print(json.dumps(os.waitstatus_to_exitcode(status)), flush=True)
"""


class Cli:
    """Runs ``fxclone`` commands in forked processes (see the module docstring)."""

    def __init__(self, logs: Path) -> None:
        self.logs, self.n = logs, 0
        self.proc = subprocess.Popen(
            [sys.executable, "-c", SERVER],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "OMP_NUM_THREADS": "1"},
        )

    def __call__(
        self, *args: str, cwd: Path, fsize: int = 0, tmpdir: Path | None = None
    ) -> subprocess.CompletedProcess[str]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.n += 1
        out, err = self.logs / f"{self.n}.out", self.logs / f"{self.n}.err"
        req = {"argv": list(args), "cwd": str(cwd), "stdout": str(out), "stderr": str(err)}
        req["tmpdir"] = str(tmpdir) if tmpdir else ""
        self.proc.stdin.write(json.dumps({**req, "fsize": fsize}) + "\n")
        self.proc.stdin.flush()
        if not select.select([self.proc.stdout], [], [], 300)[0]:
            self.proc.kill()
            pytest.fail(f"fxclone {' '.join(args)} did not finish in 300 s")
        rc = json.loads(self.proc.stdout.readline())
        return subprocess.CompletedProcess(list(args), rc, out.read_text(), err.read_text())

    def close(self) -> None:
        self.proc.kill()  # nothing to finish: each request was answered
        self.proc.wait(timeout=30)


def plain_cli(*args: str, cwd: Path, fsize: int = 0) -> subprocess.CompletedProcess[str]:
    def limit() -> None:
        import resource

        resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))

    return subprocess.run(
        [sys.executable, "-m", "fxclone", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=limit if fsize else None,
    )


def nonblank_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def assert_clean_failure(proc: subprocess.CompletedProcess[str], *needles: str) -> None:
    text = proc.stdout + proc.stderr
    assert proc.returncode == 2, text
    assert "Traceback" not in text, text
    lines = nonblank_lines(proc.stderr)
    assert len(lines) == 1, text
    assert lines[0].startswith("error: "), lines[0]
    for needle in needles:
        assert needle in lines[0], lines[0]


def no_output(path: Path) -> None:
    assert not path.exists()
    if path.parent.is_dir():
        assert not list(path.parent.glob(f".{path.name}.*")), "temporary file left behind"


def write_wav(path: Path, audio: np.ndarray, rate: int = SR, subtype: str = "FLOAT") -> Path:
    sf.write(path, np.asarray(audio, np.float32).T, rate, subtype=subtype)
    return path
