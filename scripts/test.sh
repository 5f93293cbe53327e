#!/usr/bin/env bash
# Install fxclone and its test tools, then run the linters and the default test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh dev
.venv/bin/ruff check src tests benchmarks
.venv/bin/python -m pytest -q "$@"
