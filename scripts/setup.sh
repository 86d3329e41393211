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
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
# The bwrap sandbox's venv is made with the system Python.
/usr/bin/python3 -c "import ensurepip, venv" >/dev/null 2>&1 || need_apt+=(python3 python3-venv)
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
# pip compiles no bytecode for an editable install, and where PYTHONDONTWRITEBYTECODE is
# set (this machine, many container images) every rftgrade process compiled its modules
# from source again: ~40 ms a start, paid by each of the hundreds the tests spawn.
$PY -m compileall -q rftgrade >/dev/null

# The Docker engine (no iptables, no bridge: sandbox containers run with no network).
if ! docker info >/dev/null 2>&1 && [ "$(id -u)" -eq 0 ]; then
  setsid dockerd --iptables=false --bridge=none >/tmp/rftgrade-dockerd.log 2>&1 < /dev/null &
  for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
fi
# The Docker sandbox image, rebuilt when its inputs change (base from Debian packages
# when no registry answers).
if docker info >/dev/null 2>&1; then
  inputs=$(cat sandbox/Dockerfile sandbox/worker.py sandbox/_rftgrade_*.py sandbox/requirements*.txt | sha256sum | cut -c1-16)
  label=$(docker image inspect rftgrade/sandbox:latest --format '{{ index .Config.Labels "org.rftgrade.inputs" }}' 2>/dev/null || true)
  if [ "$label" != "$inputs" ]; then
    RFTGRADE_IMAGE_INPUTS=$inputs $PY -m rftgrade sandbox build --backend docker
  fi
fi

# The bwrap sandbox's read-only Python environment (wheels fetched on the host).
if [ ! -x /var/lib/rftgrade/sandbox-venv/bin/python ] || ! cmp -s sandbox/requirements.txt /var/lib/rftgrade/sandbox-venv/requirements.txt; then
  $PY -m rftgrade sandbox build --backend bwrap
  cp sandbox/requirements.txt /var/lib/rftgrade/sandbox-venv/requirements.txt
fi

# The real trainers, in a cached venv of their own (tests/integrations/test_real_trainers.py).
bash scripts/setup-trainers.sh
