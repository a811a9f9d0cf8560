#!/usr/bin/env bash
# Install what is needed (idempotent), then run cosim's main job on the embedded defaults.
# Extra arguments go to `cosim run`, e.g. `bash scripts/run_main.sh --out runs/mine`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
exec .venv/bin/cosim run "$@"
