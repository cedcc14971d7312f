"""The embedded default (SQLite, the server `make run` starts) serves a class answering at once.

Against the running server, not the test client: a fresh SQLite file, the demo course with its first
fit, `manage.py runserver --noreload` (threaded, as `make run` starts it) on a free port, 30 learners
each asking for their next item and answering it, all at the same moment, round after round.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
LEARNERS = 30
ROUNDS = 4


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def embedded_server(tmp_path):
    """(port, API key, SQLite file) of `manage.py runserver` on the embedded default settings."""
    database = tmp_path / "db.sqlite3"
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "CELERY_", "DATABASE_", "CACHE_", "TUTOR_", "TRACING_"))
    }
    env.update(
        {
            "DATABASE_URL": f"sqlite:///{database}",
            "TUTOR_ARTIFACT_ROOT": str(tmp_path / "artifacts"),
            "DJANGO_LOG_LEVEL": "WARNING",
            "PYTHONUNBUFFERED": "1",
        }
    )

    def manage(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "manage.py", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, done.stderr[-3000:]
        return done.stdout

    manage("migrate", "--no-input", "-v0")
    manage("demo_setup")
    key = manage("apikey_create", "--course", "arithmetic", "--name", "classroom").strip().splitlines()[-1]
    port = free_port()
    log = open(tmp_path / "server.log", "w")  # noqa: SIM115 - closed below
    server = subprocess.Popen(
        [sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if request(port, key, "GET", "/health/")[0] == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline and server.poll() is None, (tmp_path / "server.log").read_text()
            time.sleep(0.2)
        yield port, key, database
    finally:
        server.terminate()
        server.wait(timeout=20)
        log.close()


def request(port: int, key: str, method: str, path: str, body=None) -> tuple[int, dict]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    headers = {"Authorization": f"Token {key}"}
    payload = None
    if body is not None:
        payload, headers["Content-Type"] = json.dumps(body).encode(), "application/json"
    try:
        connection.request(method, path, body=payload, headers=headers)
        response = connection.getresponse()
        raw = response.read()
    finally:
        connection.close()
    return response.status, (json.loads(raw) if raw.startswith(b"{") else {"raw": raw[:300].decode()})


def test_a_class_of_30_answering_at_once_gets_no_error_and_loses_nothing(embedded_server):
    port, key, database = embedded_server
    barrier = threading.Barrier(LEARNERS)
    failures: list[tuple[str, int, dict]] = []
    acknowledged: list[str] = []
    base = "/api/v1/courses/arithmetic"

    def learner(number: int) -> None:
        name = f"sim-{number:02d}"  # the demo's classmates: they have a history, so GET next knows them
        for round_ in range(ROUNDS):
            try:
                barrier.wait(timeout=120)
            except threading.BrokenBarrierError:
                return
            status, body = request(port, key, "GET", f"{base}/learners/{name}/next")
            if status != 200:
                failures.append(("next", status, body))
                continue
            answer_id = f"class-{number:02d}-{round_}"
            status, body = request(
                port,
                key,
                "POST",
                f"{base}/interactions",
                {"id": answer_id, "learner": name, "item": body["item"], "correct": (number + round_) % 2},
            )
            if status == 201:
                acknowledged.append(answer_id)
            else:
                failures.append(("answer", status, body))

    threads = [threading.Thread(target=learner, args=(number,)) for number in range(LEARNERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not failures, failures[:5]
    assert len(acknowledged) == LEARNERS * ROUNDS
    with sqlite3.connect(database) as stored:
        ids = {
            row[0] for row in stored.execute("SELECT client_id FROM tutor_interaction WHERE client_id LIKE 'class-%'")
        }
        assert ids == set(acknowledged)
        assert stored.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_the_embedded_server_listens_with_a_backlog_a_class_can_fill():
    """runserver's own backlog of 10 overflowed under a class of 30 on a busy machine (a connection reset)."""
    from django.core.management import get_commands, load_command_class

    assert get_commands()["runserver"] == "tutor"
    command = load_command_class("tutor", "runserver")
    assert command.server_cls.request_queue_size >= 4 * LEARNERS
    # Still staticfiles' runserver (it serves the static files in development).
    assert "--nostatic" in command.create_parser("manage.py", "runserver").format_help()
