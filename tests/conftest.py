"""Shared fixtures: the forked CLI runner (see tests/cli_harness.py), one server for the
whole session (each command runs in a fresh fork of it, so nothing carries over)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from cli_harness import Cli


@pytest.fixture(scope="session")
def cli(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cli]:
    runner = Cli(tmp_path_factory.mktemp("cli_logs"))
    yield runner
    runner.close()


@pytest.fixture(scope="module")
def one_torch_thread() -> Iterator[None]:
    """One torch thread for a module of small-tensor tests: fastest, and robust on a busy
    machine (use with ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
