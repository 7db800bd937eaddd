#!/usr/bin/env bash
# Build the course website:  bash docs/build.sh OUTDIR
#
# Executes every lesson (full mode; CNNVIZ_QUICK=1 for quick mode) on the CPU, offline, with
# the embedded models, and writes static HTML pages to OUTDIR (open OUTDIR/index.html).
# Needs the docs tools: pip install -e ".[docs]". Executed lessons are cached in build/site/
# (CNNVIZ_SITE_CACHE to put them elsewhere), so an unchanged lesson is not run again.
# Exits non-zero when a lesson fails or a page has a problem (a broken link, a missing image).
set -euo pipefail
if [ "$#" -ne 1 ]; then
    echo "usage: bash docs/build.sh OUTDIR" >&2
    exit 2
fi
PYTHON="${PYTHON:-python3}"
OUT="$("$PYTHON" -c 'import os, sys; print(os.path.abspath(sys.argv[1]))' "$1")"
cd "$(dirname "$0")/.."
exec "$PYTHON" docs/site/build.py "$OUT"
