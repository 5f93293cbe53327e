"""Shared fixtures: the forked CLI runner (see tests/cli_harness.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from cli_harness import Cli


@pytest.fixture(scope="module")
def cli(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cli]:
    runner = Cli(tmp_path_factory.mktemp("cli_logs"))
    yield runner
    runner.close()
