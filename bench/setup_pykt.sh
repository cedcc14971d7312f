#!/usr/bin/env bash
# Builds the reference-baseline virtualenv: pyKT (pykt-toolkit 0.0.38) beside torch 2.13 (CPU), for
# bench/deep.py (pyKT's DKT) and bench/pykt_models.py (pyKT's AKT on bench/models.py's folds).
# pyKT is only ever run from this separate environment, never imported by the product.
# Usage: bench/setup_pykt.sh   (creates <repo>/.bench/pykt, git-ignored; PYKT_VENV to put it elsewhere)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
VENV="${PYKT_VENV:-$ROOT/.bench/pykt}"
python3.11 -m venv "$VENV"
"$VENV/bin/pip" install --quiet torch==2.13.0
# --no-deps: pykt-toolkit pins wandb and CUDA-era packages it does not need for DKT or AKT.
"$VENV/bin/pip" install --quiet --no-deps pykt-toolkit==0.0.38
"$VENV/bin/pip" install --quiet numpy==2.4.6 pandas==2.3.3 scikit-learn==1.9.1
"$VENV/bin/python" -c "import pykt.models.dkt, pykt.models.akt, pykt.models.init_model, pykt.datasets.data_loader; print('pykt ok')"
