"""Faults under a running server: a worker killed mid-fit, Redis down, PostgreSQL restarted, an import killed.

Everything runs against private instances started here (a PostgreSQL cluster
and a Redis in a temporary folder, on free ports) and a real gunicorn, so the
shared services CI uses are never stopped. Each test restores what it breaks.
Skipped when the PostgreSQL or Redis binaries are missing (failed with
REQUIRE_SERVICES=1).
"""

from __future__ import annotations

import csv
import glob
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.services, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
COURSE = "arithmetic"


def _postgres_bin() -> Path | None:
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    return Path(candidates[-1]).parent if candidates else None


def _missing() -> str | None:
    if _postgres_bin() is None:
        return "PostgreSQL server binaries (initdb, pg_ctl) not found"
    if shutil.which("redis-server") is None:
        return "redis-server not found"
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        return "running as root without runuser (initdb refuses root)"
    return None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait(predicate, timeout: float, what: str, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


class PrivatePostgres:
    """A throw-away cluster: trust auth on 127.0.0.1, no fsync (tests, not durability)."""

    def __init__(self, root: Path) -> None:
        found = _postgres_bin()
        assert found is not None, "the fixture skips when PostgreSQL's binaries are absent"
        self.bin, self.data, self.port = found, root / "pgdata", _free_port()
        self.socket_dir = root / "pgsocket"
        self.socket_dir.mkdir()
        self.prefix: list[str] = []
        if os.geteuid() == 0:  # initdb and postgres refuse to run as root
            self.prefix = ["runuser", "-u", "postgres", "--"]
            shutil.chown(root, "postgres")
            shutil.chown(self.socket_dir, "postgres")
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync")

    def _run(self, tool: str, *args: str) -> None:
        subprocess.run([*self.prefix, str(self.bin / tool), *args], check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.socket_dir} -c listen_addresses=127.0.0.1 -c fsync=off "
            f"-c synchronous_commit=off -c full_page_writes=off"
        )
        self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-o",
            options,
            "-l",
            str(self.data / "server.log"),
            "-w",
            "-t",
            "60",
            "start",
        )

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "-t", "60", "stop")

    def url(self, database: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def query(self, database: str, sql: str, *params: Any) -> list[tuple]:
        import psycopg

        with psycopg.connect(self.url(database), autocommit=True, connect_timeout=5) as connection:
            cursor = connection.execute(sql, params or None)
            return cursor.fetchall() if cursor.description else []


class PrivateRedis:
    def __init__(self, root: Path) -> None:
        self.root, self.port = root, _free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.root),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        _wait(self.ping, 20, "the private Redis")

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None

    def ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as connection:
                connection.sendall(b"PING\r\n")
                return connection.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def command(self, *words: str) -> bytes:
        with socket.create_connection(("127.0.0.1", self.port), timeout=2) as connection:
            parts = [f"*{len(words)}\r\n".encode()] + [f"${len(w.encode())}\r\n{w}\r\n".encode() for w in words]
            connection.sendall(b"".join(parts))
            return connection.recv(4096)

    def url(self, database: int) -> str:
        return f"redis://127.0.0.1:{self.port}/{database}"


@dataclass
class Reply:
    status: int
    body: Any
    seconds: float


@dataclass
class Stack:
    root: Path
    postgres: PrivatePostgres
    redis: PrivateRedis
    env: dict[str, str]
    key: str = ""
    port: int = 0
    server: subprocess.Popen | None = None
    processes: list[subprocess.Popen] = field(default_factory=list)

    def manage(self, *args: str, timeout: float = 300) -> str:
        done = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=REPO,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        assert done.returncode == 0, f"manage.py {' '.join(args)} failed:\n{done.stderr[-3000:]}"
        return done.stdout

    def request(self, method: str, path: str, body: Any = None, timeout: float = 30) -> Reply:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        headers = {"Authorization": f"Token {self.key}", "Accept": "application/json"}
        payload = None
        if body is not None:
            payload, headers["Content-Type"] = json.dumps(body).encode(), "application/json"
        started = time.monotonic()
        try:
            connection.request(method, path, body=payload, headers=headers)
            response = connection.getresponse()
            raw = response.read()
        finally:
            connection.close()
        seconds = time.monotonic() - started
        try:
            parsed: Any = json.loads(raw)
        except ValueError:
            parsed = raw.decode("utf-8", "replace")
        return Reply(response.status, parsed, seconds)

    def count(self, sql: str, *params: Any) -> int:
        return self.postgres.query("faults", sql, *params)[0][0]

    def spawn(self, *command: str, **extra_env: str) -> subprocess.Popen:
        process = subprocess.Popen(
            list(command),
            cwd=REPO,
            env={**self.env, **extra_env},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.processes.append(process)
        return process


def _end(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


@pytest.fixture(scope="module")
def stack():
    missing = _missing()
    if missing:
        if os.environ.get("REQUIRE_SERVICES") == "1":
            pytest.fail(missing)
        pytest.skip(missing)
    root = Path(tempfile.mkdtemp(prefix="kt-faults-"))
    postgres, redis = PrivatePostgres(root), PrivateRedis(root)
    postgres.start()
    redis.start()
    env = {key: value for key, value in os.environ.items() if not key.startswith(("DJANGO_", "CELERY_", "DATABASE"))}
    env.update(
        {
            "DATABASE_URL": postgres.url("faults"),
            "CELERY_BROKER_URL": redis.url(0),
            "CELERY_RESULT_BACKEND": redis.url(1),
            "TUTOR_ARTIFACT_ROOT": str(root / "artifacts"),
            "DJANGO_DEBUG": "false",
            "DJANGO_SECRET_KEY": "faults-" + "x" * 60,
            "DJANGO_SECURE_SSL_REDIRECT": "false",
            "TUTOR_API_RATE": "100000/min",
            "PYTHONUNBUFFERED": "1",
            "DJANGO_LOG_LEVEL": "WARNING",
            "TRACING_TORCH_THREADS": "1",
        }
    )
    built = Stack(root, postgres, redis, env)
    try:
        postgres.query("postgres", "CREATE DATABASE faults")
        built.manage("migrate", "--no-input", "-v0")
        # The first fit runs in-process: no worker exists yet.
        built.env["CELERY_TASK_ALWAYS_EAGER"] = "true"
        built.manage("demo_setup")
        del built.env["CELERY_TASK_ALWAYS_EAGER"]
        built.key = built.manage("apikey_create", "--course", COURSE, "--name", "faults").strip().splitlines()[-1]
        built.port = _free_port()
        built.server = built.spawn(
            sys.executable,
            "-m",
            "gunicorn",
            "tutor.wsgi:application",
            "--bind",
            f"127.0.0.1:{built.port}",
            "--workers",
            "2",
            "--timeout",
            "60",
            "--graceful-timeout",
            "5",
        )

        def healthy() -> bool:
            try:
                return built.request("GET", "/health/", timeout=5).status == 200
            except OSError:
                return False

        _wait(healthy, 90, "gunicorn to answer /health/", interval=0.3)
        yield built
    finally:
        for process in reversed(built.processes):
            _end(process)
        redis.stop()
        try:
            postgres.stop()
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(root, ignore_errors=True)


def _answer(stack: Stack, client_id: str, learner: str = "fault-learner", item: str | None = None) -> Reply:
    item = item or stack.postgres.query("faults", "SELECT external_id FROM curriculum_item ORDER BY id LIMIT 1")[0][0]
    return stack.request(
        "POST",
        f"/api/v1/courses/{COURSE}/interactions",
        {"id": client_id, "learner": learner, "item": item, "correct": 1},
    )


def _fit_rows(stack: Stack) -> dict[int, tuple[str, bool, int]]:
    return {
        pk: (status, active, attempts)
        for pk, status, active, attempts in stack.postgres.query(
            "faults", "SELECT id, status, active, attempts FROM tracing_fit"
        )
    }


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        text = (task / "children").read_text().split() if (task / "children").exists() else []
        found.extend(int(child) for child in text)
    return found


def test_a_worker_killed_mid_fit_keeps_the_previous_fit_and_the_task_is_redelivered(stack):
    stack.redis.command("FLUSHALL")  # nothing queued by other tests reaches this worker
    before = _fit_rows(stack)
    previous = [pk for pk, (_, active, _) in before.items() if active]
    assert len(previous) == 1, "demo_setup leaves one active fit"
    worker = stack.spawn(
        sys.executable,
        "-m",
        "celery",
        "-A",
        "tutor",
        "worker",
        "--concurrency=1",
        "--pool=prefork",
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
        "--loglevel=WARNING",
        DATABASE_CONN_MAX_AGE="0",
    )
    try:
        # A fit that takes seconds however idle the machine is (400 SVI steps, about 10 s per pass on
        # the demo course; BKT's EM finishes in well under a second there): there is a "mid" to kill it in.
        slow = stack.request(
            "POST", f"/api/v1/courses/{COURSE}/fits", {"model": "hbkt", "params": {"steps": 400, "threads": 1}}
        )
        assert slow.status == 202, slow.body
        fit = slow.body["id"]
        _wait(
            lambda: _fit_rows(stack)[fit][0] == "running" and _children(worker.pid),
            90,
            "the worker to start the fit",
            interval=0.05,
        )
        time.sleep(0.5)
        assert _fit_rows(stack)[fit][0] == "running", "the fit finished before it could be killed: make it slower"
        for child in _children(worker.pid):
            os.kill(child, signal.SIGKILL)  # the pool process running the fit dies, as under the OOM killer
        status, active, attempts = _fit_rows(stack)[fit]
        assert not active and status != "succeeded"
        assert [pk for pk, (_, active, _) in _fit_rows(stack).items() if active] == previous

        # acks_late + reject_on_worker_lost: the message goes back to the queue and the fit runs again.
        _wait(lambda: _fit_rows(stack)[fit][2] >= 2, 90, "the redelivered task to start a second attempt")
        _wait(
            lambda: _fit_rows(stack)[fit][0] in ("succeeded", "failed"), 240, "the retried fit to finish", interval=0.3
        )
        status, active, attempts = _fit_rows(stack)[fit]
        assert (status, active, attempts) == ("succeeded", True, 2)

        fresh = stack.request("POST", f"/api/v1/courses/{COURSE}/fits", {"model": "bkt"})
        assert fresh.status == 202, fresh.body
        _wait(lambda: _fit_rows(stack)[fresh.body["id"]][0] in ("succeeded", "failed"), 120, "a new fit", interval=0.3)
        assert _fit_rows(stack)[fresh.body["id"]][:2] == ("succeeded", True)
        assert sum(active for _, active, _ in _fit_rows(stack).values()) == 1
    finally:
        _end(worker)


def test_with_redis_down_answers_are_recorded_and_a_fit_is_refused_at_once(stack):
    stack.redis.stop()
    try:
        recorded = _answer(stack, "redis-down-1")
        assert recorded.status == 201, recorded.body
        assert stack.count("SELECT count(*) FROM tutor_interaction WHERE client_id = %s", "redis-down-1") == 1
        chosen = stack.request("GET", f"/api/v1/courses/{COURSE}/learners/fault-learner/next")
        assert chosen.status == 200 and chosen.body["item"], chosen.body

        refused = stack.request("POST", f"/api/v1/courses/{COURSE}/fits", {"model": "bkt"})
        assert refused.status == 503, refused.body
        assert refused.body["code"] == "broker_unavailable" and "unavailable" in refused.body["message"]
        assert refused.seconds < 5, f"the refusal took {refused.seconds:.1f} s: broker timeouts are not short"
        assert _fit_rows(stack)[max(_fit_rows(stack))][0] == "failed", "the refused fit must not stay queued"

        health = stack.request("GET", "/health/")
        assert (health.status, health.body["status"], health.body["broker"]["ok"]) == (200, "degraded", False)
    finally:
        stack.redis.start()

    # Back without restarting the app: the next fit request reaches the queue.
    queued = _wait(
        lambda: (
            (reply := stack.request("POST", f"/api/v1/courses/{COURSE}/fits", {"model": "bkt"})).status == 202 and reply
        ),
        30,
        "a fit request to be accepted again",
        interval=0.5,
    )
    assert queued.body["status"] == "queued"
    assert int(stack.redis.command("LLEN", "fits").strip().lstrip(b":")) >= 1  # the CPU fits queue
    assert stack.request("GET", "/health/").body["status"] == "ok"


def test_postgresql_restarted_under_the_server_fails_cleanly_then_recovers(stack):
    assert _answer(stack, "pg-before").status == 201
    stack.postgres.stop()
    try:
        for attempt, (method, path) in enumerate(
            [
                ("POST", None),
                ("GET", f"/api/v1/courses/{COURSE}/learners/fault-learner/next"),
                ("GET", "/health/"),
            ]
            * 2
        ):
            reply = (
                stack.request(
                    "POST",
                    f"/api/v1/courses/{COURSE}/interactions",
                    {"id": f"pg-down-{attempt}", "learner": "fault-learner", "item": "x", "correct": 1},
                )
                if path is None
                else stack.request(method, path)
            )
            assert reply.status == 503, (method, path, reply.status, reply.body)
            assert isinstance(reply.body, dict), reply.body
            if path == "/health/":
                assert reply.body["status"] == "down" and reply.body["database"]["ok"] is False
            else:
                assert reply.body["code"] == "database_unavailable", reply.body
            assert reply.seconds < 10, f"{method} {path} took {reply.seconds:.1f} s during the outage"
    finally:
        stack.postgres.start()

    # The same gunicorn workers serve again once the database is back (CONN_HEALTH_CHECKS reconnects).
    assert stack.server is not None and stack.server.poll() is None
    _wait(lambda: stack.request("GET", "/health/").status == 200, 30, "health to recover", interval=0.3)
    for number in range(4):  # each of the two workers, whichever answers
        assert _answer(stack, f"pg-after-{number}").status == 201
        assert stack.request("GET", f"/api/v1/courses/{COURSE}/learners/fault-learner/next").status == 200
    assert stack.count("SELECT count(*) FROM tutor_interaction WHERE client_id LIKE 'pg-%%'") == 5
    assert stack.count("SELECT count(*) FROM tutor_interaction WHERE client_id LIKE 'pg-down-%%'") == 0


def test_an_import_killed_mid_way_leaves_nothing_of_the_file(stack):
    rows = 230_000  # two batches of interactions_import: the kill lands after the first is written
    path = stack.root / "big.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["learner", "item", "skill", "correct", "timestamp"])
        for number in range(rows):
            writer.writerow(
                [f"u{number % 2000}", f"i{number % 97}", f"s{number % 13}", number % 2, 1_700_000_000 + number]
            )
    importer = stack.spawn(
        sys.executable,
        "manage.py",
        "import_interactions",
        "--course",
        "imported",
        "--format",
        "csv",
        "--no-progress",
        str(path),
    )
    activity = (
        "SELECT pid, query_start, query FROM pg_stat_activity WHERE datname = 'faults' "
        "AND pid <> pg_backend_pid() AND xact_start IS NOT NULL"
    )

    def copy_started():
        return [row for row in stack.postgres.query("faults", activity) if row[2].lstrip().upper().startswith("COPY")]

    first = _wait(copy_started, 240, "the import to start writing rows", interval=0.02)[0]

    def later_statement():
        assert importer.poll() is None, "the import finished before it could be killed: make the file bigger"
        return [row for row in stack.postgres.query("faults", activity) if row[0] == first[0] and row[1] > first[1]]

    _wait(later_statement, 240, "the import to go past its first batch", interval=0.01)
    os.killpg(importer.pid, signal.SIGKILL)
    importer.wait(timeout=10)
    _wait(
        lambda: not stack.postgres.query("faults", activity + " AND pid = %s", first[0]),
        30,
        "PostgreSQL to end the killed import's transaction",
    )

    assert stack.count("SELECT count(*) FROM tutor_course WHERE slug = 'imported'") == 0
    assert stack.count("SELECT count(*) FROM tutor_interaction WHERE client_id LIKE %s", f"{path.name}:%") == 0
    assert stack.count("SELECT count(*) FROM curriculum_item WHERE external_id = 'i0'") == 0
