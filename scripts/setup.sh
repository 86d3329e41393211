#!/usr/bin/env bash
# Install everything rftgrade's tests need on a fresh Debian/Ubuntu machine:
# system packages (Docker engine, bubblewrap, debootstrap, WordNet data) and the
# Python package with all extras. Safe to run again; it skips what is present.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v dockerd >/dev/null 2>&1 || need_apt+=(docker.io)
command -v bwrap >/dev/null 2>&1 || need_apt+=(bubblewrap)
command -v debootstrap >/dev/null 2>&1 || need_apt+=(debootstrap)
[ -f /usr/share/wordnet/data.noun ] || need_apt+=(wordnet-base)
if [ "${#need_apt[@]}" -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
  echo "setup: installing ${need_apt[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

PY=${PYTHON:-python3}
# CPU torch first, so sentence-transformers does not pull a multi-GB CUDA build.
if ! $PY -c "import torch" >/dev/null 2>&1; then
  $PY -m pip install -q "torch==2.13.0" 2>/dev/null \
    || $PY -m pip install -q torch --index-url https://download.pytorch.org/whl/cpu
fi
$PY -m pip install -q -e ".[all,dev]"

# The bwrap sandbox's read-only Python environment (wheels fetched on the host).
if [ ! -x /var/lib/rftgrade/sandbox-venv/bin/python ] || ! cmp -s sandbox/requirements.txt /var/lib/rftgrade/sandbox-venv/requirements.txt; then
  rftgrade sandbox build --backend bwrap
  cp sandbox/requirements.txt /var/lib/rftgrade/sandbox-venv/requirements.txt
fi
