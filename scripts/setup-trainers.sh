#!/usr/bin/env bash
# The real trainers (trl, verl, openrlhf, verifiers; CPU torch) in a venv of their own,
# for tests/integrations/test_real_trainers.py: never the main environment. Rebuilt only
# when this script or scripts/trainers-requirements.txt changes (~3 min, ~2 GB).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
TV=${RFTGRADE_TRAINERS_VENV:-/var/lib/rftgrade/trainers-venv}
stamp=$(cat scripts/setup-trainers.sh scripts/trainers-requirements.txt | sha256sum | cut -c1-16)
if [ -x "$TV/bin/python" ] && [ "$(cat "$TV/.rftgrade-stamp" 2>/dev/null)" = "$stamp" ]; then
  exit 0
fi
echo "setup: building the trainers' venv in $TV"
rm -rf "$TV"
mkdir -p "$(dirname "$TV")"
$PY -m venv "$TV"
P="$TV/bin/python -m pip install -q --disable-pip-version-check"
# CPU torch first, so nothing pulls a CUDA build.
$P "torch==2.13.0" 2>/dev/null || $P torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu
# openrlhf pins flash-attn (a CUDA source build), deepspeed and transformers==5.15.0, which
# verl 0.9.1 refuses (<5.11): both go in without their pins, their reward paths' needs below.
$P --no-deps verl==0.9.1 openrlhf==0.11.2
# pip reports openrlhf's unmet pins here and exits 0.
$P -r scripts/trainers-requirements.txt 2>&1 | grep -v "requires\|incompatible\|dependency resolver" || true
# xgrammar without triton (GPU kernels; its regex compiler and matcher run on the CPU).
$P --no-deps xgrammar==0.2.9
# TRL before 1.9 (it reads reward_funcs[i].__name__), beside the current one: tests put it first on PYTHONPATH.
$P --no-deps --target "$TV/trl-1.8" trl==1.8.0
"$TV/bin/python" -c "import trl, verl, openrlhf, verifiers, torch, transformers, xgrammar, outlines_core"
echo "$stamp" > "$TV/.rftgrade-stamp"
