#!/usr/bin/env bash
# Install fxclone and its test tools, then run the linters and the default test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
# System packages the browser tests need (Debian/Ubuntu, as root): Chromium and its driver.
if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
  else
    echo "note: chromium/chromedriver missing and not installable here; browser tests will skip" >&2
  fi
fi
bash scripts/setup.sh dev
.venv/bin/ruff check src tests benchmarks
.venv/bin/python -m pytest -q "$@"
