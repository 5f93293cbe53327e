#!/usr/bin/env bash
# Create .venv (if needed) and install fxclone with PyTorch's CPU build.
# Usage: bash scripts/setup.sh [extra]   e.g. "dev" for the test tools
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
# torch first: the pinned CPU wheel; a bare requirement would pull a multi-GB CUDA build.
pip_install() {
  # Hide pip's notes about local package folders that do not exist on this machine.
  .venv/bin/python -m pip install -q --disable-pip-version-check "$@" 2> >(grep -v "is ignored: it is neither" >&2)
}
pip_install "torch==2.13.0"
extra="${1:-}"
pip_install -e ".${extra:+[$extra]}"
