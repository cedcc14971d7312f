"""The README's two commands work from a clean clone: the files they need are committed and
the embedded set-up (migrate, demo course, first fit) runs there on its own SQLite file."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def clone(tmp_path_factory) -> Path:
    if not (REPO / ".git").exists():
        pytest.skip("not a git checkout")
    target = tmp_path_factory.mktemp("fresh") / "tutor"
    subprocess.run(["git", "clone", "--quiet", str(REPO), str(target)], check=True)
    return target


def test_readme_names_exactly_the_two_make_commands(clone):
    readme = (clone / "README.md").read_text()
    block = re.search(r"## Two commands.*?```sh\n(.*?)```", readme, re.S).group(1)
    commands = [line.split("#")[0].strip() for line in block.splitlines() if line.strip()]
    assert commands == ["make run", "make test"]
    ci = (clone / ".ci" / "run").read_text()
    assert "make test" in ci and "DATABASE_URL" in ci and "celery -A tutor worker" in ci


@pytest.mark.parametrize(
    "target,expected",
    [
        (
            "run",
            [
                "pip install --quiet -r requirements.txt",
                "manage.py migrate",
                "manage.py demo_setup",
                "manage.py runserver",
            ],
        ),
        ("test", ["pip install --quiet -r requirements-dev.txt", "-m pytest"]),
    ],
)
def test_make_targets_do_the_whole_set_up(clone, target, expected):
    plan = subprocess.run(["make", "-n", "-B", target], cwd=clone, capture_output=True, text=True, check=True).stdout
    for step in expected:
        assert step in plan, (target, step, plan)


def test_embedded_set_up_runs_in_the_clone(clone):
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tutor.settings", "TUTOR_ARTIFACT_ROOT": str(clone / "artifacts")}
    for name in ("DATABASE_URL", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND"):
        env.pop(name, None)  # the embedded default: SQLite in the clone, tasks in-process
    manage = [sys.executable, "manage.py"]
    subprocess.run(manage + ["migrate", "--no-input", "-v0"], cwd=clone, env=env, check=True, timeout=300)
    result = subprocess.run(manage + ["demo_setup"], cwd=clone, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    assert '"status": "succeeded"' in result.stdout, result.stdout[-2000:]
    assert (clone / "db.sqlite3").exists()
