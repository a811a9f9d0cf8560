#!/usr/bin/env bash
# Install what is needed (idempotent), then run the default test suite (excludes `-m slow`).
# Extra arguments go to pytest, e.g. `bash scripts/run_tests.sh -m slow` or `... tests/spice`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
exec .venv/bin/python -m pytest "$@"
