"""The WSGI entry point gunicorn loads."""

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_wsgi_import_freezes_the_long_lived_objects_out_of_the_collectors_reach():
    # A fresh interpreter, as a gunicorn worker: this test process has its own garbage.
    probe = (
        "import gc, json, sys, tutor.wsgi; "
        "print(json.dumps({'frozen': gc.get_freeze_count(), 'tracked': len(gc.get_objects()), "
        "'views_loaded': 'tutor.api.views' in sys.modules, 'bkt_loaded': 'tracing.estimators.bkt' in sys.modules}))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, timeout=120, check=True
    )
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found["views_loaded"] and found["bkt_loaded"]
    # What a full collection still walks is a small part of what the process holds.
    assert found["frozen"] > 50_000
    assert found["tracked"] < found["frozen"] / 10
