#!/usr/bin/env bash
# Create .venv (if needed) and install fxclone with PyTorch's CPU build.
# Usage: bash scripts/setup.sh [extra]   e.g. "dev" for the test tools
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
# torch first: the pinned CPU wheel; a bare requirement would pull a multi-GB CUDA build.
.venv/bin/python -m pip install -q --disable-pip-version-check "torch==2.13.0"
extra="${1:-}"
.venv/bin/python -m pip install -q --disable-pip-version-check -e ".${extra:+[$extra]}"
