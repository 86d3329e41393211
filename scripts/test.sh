#!/usr/bin/env bash
# The test command: installs what the tests need, lints, type-checks, runs pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
PY=${PYTHON:-python3}
# Sandbox tests must run for real where the tools exist: a missing engine fails, never skips.
export RFTGRADE_REQUIRE_SANDBOXES=${RFTGRADE_REQUIRE_SANDBOXES:-1}
if [ -f scripts/sandbox-env.sh ]; then source scripts/sandbox-env.sh; fi
source scripts/ray-env.sh
$PY -m ruff check .
$PY -m ruff format --check .
$PY -m mypy
$PY -m pytest -q "$@"
