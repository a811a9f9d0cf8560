#!/usr/bin/env bash
# Idempotent set-up for a fresh Debian 12 / Python 3.11 machine (run as root, or with sudo available):
# Debian's ngspice + libngspice0 and chromium (the report's browser test drives it), a virtual environment in
# .venv, the CPU build of torch 2.13.0, then cosim with its extras. Safe to run again: each step is skipped when
# already done.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v ngspice >/dev/null 2>&1 || need_apt+=(ngspice)
ldconfig -p 2>/dev/null | grep -q libngspice.so || need_apt+=(libngspice0)
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)  # the report's browser test (Playwright drives it)
if [ ${#need_apt[@]} -gt 0 ]; then
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    echo "cosim setup: installing Debian packages: ${need_apt[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
stamp=.venv/.cosim-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    .venv/bin/python -m pip install -q --upgrade pip
    # The pinned CPU build first: an unpinned torch would pull a multi-GB CUDA build.
    .venv/bin/python -m pip install -q torch==2.13.0
    .venv/bin/python -m pip install -q -e ".[test,dask]"
    touch "$stamp"
fi
