#!/usr/bin/env bash
# Build pyBKT 1.4.3 from source (its C++ E-step, not the pure-Python fallback) into
# .bench/pybkt-venv, a virtualenv of its own: pyBKT fails to import with
# scikit-learn >= 1.8 and its C++ uses the numpy 1 C API, so it gets older pins
# than the product. Only bench/bkt.py uses it, through a subprocess.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
VENV="$ROOT/.bench/pybkt-venv"
PYTHON="${PYTHON:-python3}"
WORK="$ROOT/.bench/pybkt-src"

if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/pip" install --quiet --upgrade "pip<25" "setuptools<70" wheel
"$VENV/bin/pip" install --quiet "numpy==1.26.4" "pandas==2.2.3" "scikit-learn==1.5.2" "requests"

rm -rf "$WORK" && mkdir -p "$WORK"
"$VENV/bin/pip" download --quiet --no-deps --no-binary :all: "pybkt==1.4.3" -d "$WORK"
tar -xzf "$WORK"/pybkt-1.4.3.tar.gz -C "$WORK"
# setup.py silently falls back to pure Python when the C++ build fails; build the
# extension first so a failure stops here with the compiler's message.
(cd "$WORK/pybkt-1.4.3" && "$VENV/bin/python" setup.py build_ext 2>&1 | tail -n 5)
"$VENV/bin/pip" install --quiet --no-build-isolation --no-deps "$WORK/pybkt-1.4.3"

"$VENV/bin/python" - <<'PY'
import pyBKT.fit.E_step as e_step
import pyBKT.fit.predict_onestep_states as onestep
for module in (e_step, onestep):
    if not module.__file__.endswith(".so"):
        raise SystemExit(f"pyBKT built without its C++ extension: {module.__file__}")
from pyBKT.models import Model
print("pyBKT C++ build ready:", e_step.__file__)
PY
