#!/usr/bin/env bash
# Install fxclone and its test tools, then run the linters and the default test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
# System packages the tests need (Debian/Ubuntu, as root): Chromium and its driver for the
# browser tests, lv2file and the mda LV2 plugins for rendering through external commands.
missing=()
command -v chromium >/dev/null || missing+=(chromium)
command -v chromedriver >/dev/null || missing+=(chromium-driver)
command -v lv2file >/dev/null || missing+=(lv2file)
[ -d /usr/lib/lv2/mda.lv2 ] || dpkg -s mda-lv2 >/dev/null 2>&1 || missing+=(mda-lv2)
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "note: ${missing[*]} missing and not installable here; the tests needing them will skip" >&2
  fi
fi
bash scripts/setup.sh dev
# Neural Amp Modeler's own package, to check exported .nam files against it. Its pins would
# downgrade Lightning and pull in training extras; what its import needs is already here.
.venv/bin/python -m pip install -q --disable-pip-version-check --no-deps \
  "neural-amp-modeler==0.13.0" "wavio>=0.0.5" 2> >(grep -v "is ignored: it is neither" >&2)
.venv/bin/ruff check src tests benchmarks
# One worker per core (pytest-xdist), each with one torch/BLAS thread: the suite is many
# small tests, which share two cores better as two processes than as one with two threads.
OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}" .venv/bin/python -m pytest -q -n auto --maxprocesses 8 "$@"
