#!/usr/bin/env bash
# Install fxclone and run the whole journey on the built-in distortion (CPU, minutes).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/fxclone demo --out "${1:-demo_out}"
