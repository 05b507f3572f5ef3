#!/usr/bin/env bash
# Run the whole test suite (unit, link proxy, Docker, TUI), setting up what is missing first.
# Extra arguments go to pytest, e.g. scripts/test.sh tests/unit -x
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/bootstrap.sh all
exec .venv/bin/python -m pytest "${@:--q}"
