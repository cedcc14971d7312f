#!/usr/bin/env bash
# Builds the reference-baseline virtualenv for bench/deep.py: pyKT's DKT beside torch 2.13 (CPU).
# pyKT is only ever run from this separate environment, never imported by the product.
# Usage: bench/setup_pykt.sh   (creates /work/main/.bench/pykt, git-ignored)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
VENV="${PYKT_VENV:-$ROOT/.bench/pykt}"
python3.11 -m venv "$VENV"
"$VENV/bin/pip" install --quiet torch==2.13.0
# --no-deps: pykt-toolkit pins wandb and CUDA-era packages it does not need for DKT.
"$VENV/bin/pip" install --quiet --no-deps pykt-toolkit==0.0.38
"$VENV/bin/pip" install --quiet numpy==2.4.6 pandas==2.3.3 scikit-learn==1.9.1
"$VENV/bin/python" -c "import pykt.models.dkt, pykt.datasets.data_loader; print('pykt ok')"
