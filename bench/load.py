"""Load on a real server: gunicorn + PostgreSQL + Redis, the demo course, one API key, many learners.

    python bench/load.py [--rate 200] [--duration 60] [--learners 1000] [--find-max] [--contended] [--compare-lock]

1. Creates a fresh PostgreSQL database (BENCH_DATABASE, default kt_bench_load on
   BENCH_POSTGRES, default postgres://postgres@127.0.0.1:5432), starts a private
   redis-server on a free port (broker and cache), migrates, loads the demo course
   with its first fit, makes an API key and starts gunicorn on 127.0.0.1.
2. Batch ingest: --batch-total interactions (default 100,000) over --learners
   learners through POST .../interactions in batches of --batch-size (10,000).
3. Mixed load, open loop at --rate requests/s for --duration s: half POST one
   interaction (a unique id each; the online mastery update runs inside), half
   GET .../learners/{learner}/next, sent from one asyncio event loop over at most
   --clients connections at once. Latency is measured from each request's
   scheduled start, so a server that falls behind shows it (no coordinated omission).
   Between 2 and 3, VACUUM (ANALYZE) and CHECKPOINT, as after any bulk load (--settle picks
   part of it, or none).
   With --contended, every fifth POST is sent at the same moment as the POST before it and for the
   same learner: a fifth of the POSTs are for a learner another request is updating right then.
4. Counts the interactions in the database against those acknowledged: none lost, none doubled; with
   --contended, checks the contended learners' stored mastery and trace against a replay of their
   stored answers (bench/mastery_check.py): lost updates show there.
5. With --compare-lock, step 3 (and 4) runs twice in the same run, with gunicorn restarted between:
   with the per-learner lock (TUTOR_LEARNER_LOCK, the default) and without it; "lock_cost" gives
   the differences. The setting exists for this comparison only.

Prints JSON; drops the database and stops every process it started. Loopback only.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import REPO, database_fresh, emit, postgres  # noqa: E402

COURSE = "arithmetic"
SETTLE = {
    "full": ["VACUUM (ANALYZE)", "CHECKPOINT"],
    "analyze": ["ANALYZE"],
    "vacuum": ["VACUUM"],
    "checkpoint": ["CHECKPOINT"],
    "none": [],
}
MAX_LAG_S = 10.0
"""A request not sent within this many seconds of its schedule is dropped (and counted): the run stays bounded."""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _percentile(values: list[float], fraction: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] * 1000, 2)


@dataclass
class Server:
    env: dict[str, str]
    port: int
    key: str = ""
    processes: list[subprocess.Popen] = field(default_factory=list)

    def manage(self, *args: str) -> str:
        done = subprocess.run(
            [sys.executable, "manage.py", *args], cwd=REPO, env=self.env, capture_output=True, text=True, timeout=900
        )
        if done.returncode:
            sys.exit(f"manage.py {' '.join(args)} failed:\n{done.stderr[-3000:]}")
        return done.stdout

    def request(self, method: str, path: str, body: Any = None, timeout: float = 120) -> tuple[int, Any]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        headers = {"Authorization": f"Token {self.key}"}
        payload = None
        if body is not None:
            payload, headers["Content-Type"] = json.dumps(body).encode(), "application/json"
        try:
            connection.request(method, path, body=payload, headers=headers)
            response = connection.getresponse()
            raw = response.read()
        finally:
            connection.close()
        try:
            return response.status, json.loads(raw)
        except ValueError:
            return response.status, raw[:200]


def _bench_server(database_url: str, *, artifacts: Path, root: Path) -> Server:
    """A Server whose processes will run against ``database_url`` with a private redis-server (started
    here, its files under ``root``) as broker and cache, production settings, and one thread for
    numpy/numba/torch: the set-up bench/load.py and bench/serving.py share."""
    redis_port = _free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith(("DJANGO_", "CELERY_", "DATABASE"))}
    env.update(
        {
            "DATABASE_URL": database_url,
            "CELERY_BROKER_URL": f"redis://127.0.0.1:{redis_port}/0",
            "CACHE_URL": f"rediscache://127.0.0.1:{redis_port}/2",
            "TUTOR_ARTIFACT_ROOT": str(artifacts),
            "DJANGO_DEBUG": "false",
            "DJANGO_SECRET_KEY": "bench-" + "k" * 60,
            "DJANGO_SECURE_SSL_REDIRECT": "false",
            "DJANGO_LOG_LEVEL": "WARNING",
            "TUTOR_API_RATE": "10000000/min",
            "PYTHONUNBUFFERED": "1",
            "TRACING_TORCH_THREADS": "1",
            "OMP_NUM_THREADS": "1",
            "NUMBA_NUM_THREADS": "1",
        }
    )
    server = Server(env=env, port=_free_port())
    redis = ["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    server.processes.append(
        subprocess.Popen(
            redis + ["--dir", str(root)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
    )
    return server


def _setup(args: argparse.Namespace, root: Path) -> Server:
    if shutil.which("redis-server") is None:
        sys.exit("redis-server not found: install Redis to run this bench")
    base = args.postgres.rstrip("/")
    database_fresh(base, args.database)
    server = _bench_server(f"{base}/{args.database}", artifacts=root / "artifacts", root=root)
    server.manage("migrate", "--no-input", "-v0")
    server.env["CELERY_TASK_ALWAYS_EAGER"] = "true"  # the demo's first fit runs here: no worker in this bench
    server.manage("demo_setup")
    del server.env["CELERY_TASK_ALWAYS_EAGER"]
    server.key = server.manage("apikey_create", "--course", COURSE, "--name", "bench").strip().splitlines()[-1]
    _gunicorn_start(server, args, root)
    return server


def _gunicorn_start(server: Server, args: argparse.Namespace, root: Path, *, lock: bool = True) -> None:
    """gunicorn as the last of ``server.processes``, with or without the per-learner lock; waits until it answers."""
    server.env["TUTOR_LEARNER_LOCK"] = "true" if lock else "false"
    log = open(root / "gunicorn.log", "a")  # noqa: SIM115 - closed with the process
    server.processes.append(
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "tutor.wsgi:application",
                "--bind",
                f"127.0.0.1:{server.port}",
                "--workers",
                str(args.workers),
                "--threads",
                str(args.threads),
                "--worker-class",
                "gthread" if args.threads > 1 else "sync",
                "--timeout",
                "120",
                "--keep-alive",
                "5",
                "--backlog",
                "2048",
                *args.gunicorn_arg,
            ],
            cwd=REPO,
            env=server.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if server.request("GET", "/health/", timeout=5)[0] == 200:
                break
        except OSError:
            pass
        time.sleep(0.3)
    else:
        sys.exit(f"gunicorn did not answer: see {root / 'gunicorn.log'}")


def _process_group_stop(process: subprocess.Popen, timeout: float) -> None:
    """SIGTERM to the process's group, SIGKILL if it has not ended after ``timeout`` s."""
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def _gunicorn_stop(server: Server) -> None:
    _process_group_stop(server.processes.pop(), 30)


def _items(server: Server, course: str = COURSE) -> list[str]:
    return [
        row[0]
        for row in postgres(
            server.env["DATABASE_URL"],
            "SELECT i.external_id FROM curriculum_item i JOIN tutor_course c "
            f"ON c.id = i.course_id WHERE c.slug = '{course}' ORDER BY i.id",
        )
    ]


def _batch_ingest(server: Server, args: argparse.Namespace, items: list[str]) -> dict[str, Any]:
    generator = random.Random(1)
    start = datetime(2026, 10, 1, tzinfo=UTC)
    timings, created = [], 0
    total_started = time.perf_counter()
    for batch_number in range((args.batch_total + args.batch_size - 1) // args.batch_size):
        size = min(args.batch_size, args.batch_total - batch_number * args.batch_size)
        rows = []
        for offset in range(size):
            number = batch_number * args.batch_size + offset
            rows.append(
                {
                    "id": f"batch-{number}",
                    "learner": f"learner-{number % args.learners:04d}",
                    "item": generator.choice(items),
                    "correct": int(generator.random() < 0.6),
                    "timestamp": (start + timedelta(seconds=number)).isoformat(),
                }
            )
        started = time.perf_counter()
        status, body = server.request("POST", f"/api/v1/courses/{COURSE}/interactions", rows, timeout=600)
        timings.append(time.perf_counter() - started)
        if status != 201:
            sys.exit(f"batch {batch_number} answered {status}: {str(body)[:500]}")
        created += body["created"]
    wall = time.perf_counter() - total_started
    return {
        "interactions": args.batch_total,
        "batch_size": args.batch_size,
        "created": created,
        "wall_s": round(wall, 2),
        "rows_per_s": round(args.batch_total / wall),
        "batch_s": {
            "min": round(min(timings), 2),
            "max": round(max(timings), 2),
            "mean": round(sum(timings) / len(timings), 2),
        },
    }


@dataclass
class Outcome:
    endpoint: str
    status: int
    latency: float  # from the scheduled start
    service: float  # from the actual send
    client_id: str | None = None
    created: bool = False
    scheduled: float = 0.0  # seconds into the run


class _Connections:
    """HTTP/1.1 over asyncio streams: at most ``limit`` connections, idle ones reused when ``keep_alive``.

    A bare client on purpose: it shares two cores with the server it measures, and per request it
    costs a fraction of what a general HTTP library (or a pool of client threads) costs.
    """

    def __init__(self, port: int, limit: int, keep_alive: bool) -> None:
        self.port, self.keep_alive = port, keep_alive
        self.slots = asyncio.Semaphore(limit)
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    async def exchange(self, request: bytes) -> tuple[int, bytes]:
        async with self.slots:
            reused = bool(self.idle)
            reader, writer = self.idle.pop() if reused else await asyncio.open_connection("127.0.0.1", self.port)
            try:
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
            except (OSError, asyncio.IncompleteReadError):
                writer.close()
                if not reused:
                    raise
                # The server closed an idle kept-alive connection: send again on a new one (a POST
                # is idempotent on its client id).
                reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            status = int(lines[0].split()[1])
            headers = dict(line.lower().split(": ", 1) for line in lines[1:] if ": " in line)
            if "content-length" in headers:
                body = await reader.readexactly(int(headers["content-length"]))
            elif headers.get("transfer-encoding") == "chunked":
                parts = []
                while size := int((await reader.readuntil(b"\r\n")).strip(), 16):
                    parts.append(await reader.readexactly(size + 2))
                await reader.readuntil(b"\r\n")
                body = b"".join(part[:-2] for part in parts)
            else:
                body = await reader.read()
            if self.keep_alive and headers.get("connection") != "close":
                self.idle.append((reader, writer))
            else:
                writer.close()
            return status, body

    def close(self) -> None:
        for _, writer in self.idle:
            writer.close()


async def _drive(
    server: Server, args: argparse.Namespace, schedule: list[tuple[float, tuple]]
) -> tuple[list[Outcome], list[str], float]:
    """Send each job at its offset (s) from now, open loop, from one event loop in one thread.

    A pool of client threads would add its own waits for the GIL to the latencies it measures.
    """
    loop = asyncio.get_running_loop()
    origin = loop.time() + 0.2
    args.started_unix = time.time() + 0.2  # the schedule's origin on the wall clock (a trace's samples use it)
    outcomes: list[Outcome] = []
    dropped: list[str] = []
    connections = _Connections(server.port, args.clients, args.keep_alive)
    persist = "keep-alive" if args.keep_alive else "close"

    def request(path: str, body: Any) -> bytes:
        head = (
            f"{'GET' if body is None else 'POST'} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: Token {server.key}\r\nConnection: {persist}\r\n"
        )
        if body is None:
            return (head + "\r\n").encode()
        payload = json.dumps(body).encode()
        return (head + f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n").encode() + payload

    async def one(offset: float, job: tuple) -> None:
        endpoint, path, body, client_id = job
        scheduled = origin + offset
        await asyncio.sleep(scheduled - loop.time())
        if loop.time() - scheduled > MAX_LAG_S:
            dropped.append(endpoint)  # the server is this far behind: a real client would have given up
            return
        sent = loop.time()
        status, created = 0, False
        try:
            status, raw = await asyncio.wait_for(connections.exchange(request(path, body)), 30)
            if endpoint == "interactions" and status == 201:
                created = json.loads(raw)["results"][0]["status"] == "created"
        except (
            TimeoutError,
            OSError,
            asyncio.IncompleteReadError,
            asyncio.LimitOverrunError,
            ValueError,
            KeyError,
            IndexError,
        ):
            status = 0
        done = loop.time()
        outcomes.append(Outcome(endpoint, status, done - scheduled, done - sent, client_id, created, offset))

    try:
        await asyncio.gather(*(one(offset, job) for offset, job in schedule))
    finally:
        connections.close()
    return outcomes, dropped, loop.time() - origin


def _mixed_load(
    server: Server,
    args: argparse.Namespace,
    items: list[str],
    rate: float,
    duration: float,
    label: str,
    *,
    per_second: bool = False,
) -> dict[str, Any]:
    generator = random.Random(2)
    total = int(rate * duration)
    # bench/serving.py may aim the load at another course (the one being fitted) and its learners.
    course, names = getattr(args, "load_course", COURSE), getattr(args, "load_learners", None)
    schedule: list[tuple[float, tuple]] = []
    contended: set[str] = set()
    posts, previous_post = 0, None
    for number in range(total):
        offset = number / rate
        pick = generator.randrange(len(names) if names else args.learners)
        learner = names[pick] if names else f"learner-{pick:04d}"
        if number % 2 == 0:
            if args.contended and posts % 5 == 4 and previous_post is not None:
                # Sent with the POST before it, for its learner: two updates of one learner at once.
                offset, learner = previous_post
                contended.add(learner)
            previous_post = (offset, learner)
            posts += 1
            client_id = f"{label}-{number}"
            job = (
                "interactions",
                f"/api/v1/courses/{course}/interactions",
                {
                    "id": client_id,
                    "learner": learner,
                    "item": generator.choice(items),
                    "correct": int(generator.random() < 0.6),
                },
                client_id,
            )
        else:
            job = ("next", f"/api/v1/courses/{course}/learners/{learner}/next", None, None)  # type: ignore[assignment]
        schedule.append((offset, job))
    cpu_before, background_before = _cpu_seconds(server), _background(server)
    generator_before = time.process_time()
    outcomes, dropped, wall = asyncio.run(_drive(server, args, schedule))
    cpu_after, background_after = _cpu_seconds(server), _background(server)
    cpu = {
        name: round(
            sum(seconds - cpu_before[name].get(pid, 0.0) for pid, seconds in cpu_after[name].items())
            * 1000
            / max(1, len(outcomes)),
            2,
        )
        for name in cpu_after
    }
    # The load generator shares the machine: its own CPU is part of what the server competes with.
    cpu["load_generator"] = round((time.process_time() - generator_before) * 1000 / max(1, len(outcomes)), 2)
    done = list(outcomes)
    result: dict[str, Any] = {
        "target_rps": rate,
        "duration_s": duration,
        "requests": total,
        "completed": len(done),
        "achieved_rps": round(len(done) / wall, 1),
        "errors": sum(1 for o in done if not 200 <= o.status < 300),
        "dropped_late": len(dropped),
        "cpu_ms_per_request": cpu,
        "postgres_background": {name: background_after[name] - background_before[name] for name in background_after},
    }
    for endpoint in ("interactions", "next"):
        mine = [o for o in done if o.endpoint == endpoint]
        fine = [o.latency for o in mine if 200 <= o.status < 300]
        result[endpoint] = {
            "requests": len(mine),
            "errors": sum(1 for o in mine if not 200 <= o.status < 300),
            "p50_ms": _percentile(fine, 0.50),
            "p95_ms": _percentile(fine, 0.95),
            "p99_ms": _percentile(fine, 0.99),
            "max_ms": _percentile(fine, 1.0),
            "service_p50_ms": _percentile([o.service for o in mine if 200 <= o.status < 300], 0.50),
            "service_p99_ms": _percentile([o.service for o in mine if 200 <= o.status < 300], 0.99),
            "statuses": dict(
                sorted({str(o.status): sum(1 for x in mine if x.status == o.status) for o in mine}.items())
            ),
        }
    # Does the tail grow during the run, or come in bursts? p99 (both endpoints) per 10 s slice.
    slices: dict[int, list[float]] = {}
    for o in done:
        if 200 <= o.status < 300:
            slices.setdefault(int(o.scheduled // 10), []).append(o.latency)
    result["p99_ms_per_10s"] = [_percentile(slices[index], 0.99) for index in sorted(slices)]
    result["started_unix"] = round(args.started_unix, 3)
    if per_second:  # finer, to line stalls up with a trace (bench/serving.py)
        seconds: dict[int, list[float]] = {}
        for o in done:
            if 200 <= o.status < 300:
                seconds.setdefault(int(o.scheduled), []).append(o.latency)
        result["p99_ms_per_s"] = [_percentile(seconds.get(index, []), 0.99) for index in range(int(duration))]
    result["tcp_sockets_after"] = _tcp_sockets()
    acknowledged = {o.client_id for o in done if o.endpoint == "interactions" and o.created}
    stored = postgres(
        server.env["DATABASE_URL"], f"SELECT client_id FROM tutor_interaction WHERE client_id LIKE '{label}-%'"
    )
    stored_ids = [row[0] for row in stored]
    result["integrity"] = {
        "acknowledged": len(acknowledged),
        "stored": len(stored_ids),
        "lost": len(acknowledged - set(stored_ids)),
        "doubled": len(stored_ids) - len(set(stored_ids)),
        "stored_without_ack": len(set(stored_ids) - acknowledged),
    }
    if contended:
        result["contended"] = {
            "posts": posts // 5,
            "learners": len(contended),
            "replay_check": _mastery_check(server, sorted(contended)),
        }
    return result


def _mastery_check(server: Server, learners: list[str]) -> dict[str, Any]:
    """bench/mastery_check.py on these learners: stored mastery and trace against a replay of their answers."""
    done = subprocess.run(
        [sys.executable, str(REPO / "bench" / "mastery_check.py"), COURSE, *learners],
        cwd=REPO,
        env=server.env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    if done.returncode:
        return {"error": done.stderr[-2000:]}
    return json.loads(done.stdout)


def _lock_cost(on: dict[str, Any], off: dict[str, Any]) -> dict[str, Any]:
    """With the lock minus without it: latency (ms) per endpoint and percentile, CPU (ms per request)."""
    cost: dict[str, Any] = {}
    for endpoint in ("interactions", "next"):
        cost[endpoint] = {
            name: (
                round(on[endpoint][name] - off[endpoint][name], 2)
                if on[endpoint][name] is not None and off[endpoint][name] is not None
                else None
            )
            for name in ("p50_ms", "p95_ms", "p99_ms", "service_p50_ms", "service_p99_ms")
        }
    cost["cpu_ms_per_request"] = {
        name: round(on["cpu_ms_per_request"][name] - off["cpu_ms_per_request"][name], 2)
        for name in on["cpu_ms_per_request"]
    }
    cost["errors"] = {"lock_on": on["errors"], "lock_off": off["errors"]}
    if "contended" in on:
        cost["learners_differing_from_replay"] = {
            tag: run["contended"]["replay_check"].get("differing") for tag, run in (("lock_on", on), ("lock_off", off))
        }
    return cost


def _background(server: Server) -> dict[str, int]:
    """Counters of what PostgreSQL did on its own (autovacuum, autoanalyze, checkpoints): tail latency suspects."""
    tables = postgres(
        server.env["DATABASE_URL"],
        "SELECT coalesce(sum(autovacuum_count), 0), coalesce(sum(autoanalyze_count), 0) FROM pg_stat_user_tables",
    )[0]
    checkpoints = postgres(
        server.env["DATABASE_URL"], "SELECT checkpoints_timed + checkpoints_req FROM pg_stat_bgwriter"
    )[0]
    return {"autovacuums": int(tables[0]), "autoanalyzes": int(tables[1]), "checkpoints": int(checkpoints[0])}


def _tcp_sockets() -> dict[str, int]:
    """The kernel's TCP socket counts (in use, TIME_WAIT): a new connection per request leaves many behind."""
    try:
        fields = next(
            line for line in Path("/proc/net/sockstat").read_text().splitlines() if line.startswith("TCP:")
        ).split()[1:]
    except (OSError, StopIteration):
        return {}
    counts = dict(zip(fields[::2], (int(value) for value in fields[1::2]), strict=False))
    return {"in_use": counts.get("inuse", 0), "time_wait": counts.get("tw", 0)}


def _process_cpu(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _cpu_seconds(server: Server) -> dict[str, dict[int, float]]:
    """CPU seconds used so far by each gunicorn worker and each PostgreSQL backend of the bench database."""
    master = server.processes[-1].pid
    workers: list[int] = []
    for task in Path(f"/proc/{master}/task").glob("*"):
        children = task / "children"
        workers.extend(int(pid) for pid in children.read_text().split()) if children.exists() else None
    backends = [
        row[0]
        for row in postgres(
            server.env["DATABASE_URL"],
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()",
        )
    ]
    return {
        "gunicorn": {pid: _process_cpu(pid) for pid in workers},
        "postgres": {pid: _process_cpu(pid) for pid in backends},
    }


def _stop(server: Server | None) -> None:
    if server is None:
        return
    for process in reversed(server.processes):
        if process.poll() is None:
            _process_group_stop(process, 20)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=200.0, help="requests per second of the mixed load")
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--learners", type=int, default=1000)
    parser.add_argument("--batch-total", type=int, default=100_000)
    parser.add_argument("--batch-size", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=4, help="gunicorn worker processes")
    parser.add_argument("--threads", type=int, default=1, help="threads per gunicorn worker (gthread when > 1)")
    parser.add_argument("--clients", type=int, default=64, help="connections open at once, at most")
    parser.add_argument(
        "--keep-alive",
        action="store_true",
        help="reuse connections between requests (as a pooled HTTP client does; gunicorn's sync "
        "workers close them anyway, gthread workers keep them)",
    )
    parser.add_argument(
        "--settle",
        choices=sorted(SETTLE),
        default="full",
        help="what runs between the batch ingest and the mixed load: full = VACUUM (ANALYZE) then "
        "CHECKPOINT, as after any bulk load; the others one part of it; none starts the "
        "load straight away (autovacuum then reacts to the ingest during the run)",
    )
    parser.add_argument(
        "--gunicorn-arg",
        action="append",
        default=[],
        help="an extra gunicorn argument (repeatable), e.g. --gunicorn-arg=--max-requests=0",
    )
    parser.add_argument(
        "--find-max",
        action="store_true",
        help="before the main run, step the rate up in 10 s runs until errors, p99 over --slo-ms "
        "or the server falls behind (under 95%% of the target rate)",
    )
    parser.add_argument("--slo-ms", type=float, default=50.0, help="p99 bound for --find-max")
    parser.add_argument(
        "--contended",
        action="store_true",
        help="every fifth POST goes out with the one before it, for the same learner; then the "
        "contended learners' mastery is checked against a replay of their answers",
    )
    parser.add_argument(
        "--compare-lock",
        action="store_true",
        help="run the mixed load with the per-learner lock and again without it (gunicorn "
        "restarted with TUTOR_LEARNER_LOCK=false), and report the lock's cost",
    )
    parser.add_argument("--database", default=os.environ.get("BENCH_DATABASE", "kt_bench_load"))
    parser.add_argument("--postgres", default=os.environ.get("BENCH_POSTGRES", "postgres://postgres@127.0.0.1:5432"))
    args = parser.parse_args()
    if not args.database.replace("_", "").isalnum():
        sys.exit("--database must be a plain identifier")

    root = Path(tempfile.mkdtemp(prefix="kt-bench-load-"))
    server = None
    try:
        setup_started = time.perf_counter()
        server = _setup(args, root)
        items = _items(server)
        result: dict[str, Any] = {
            "machine": {"cores": os.cpu_count(), "load_average_before": [round(x, 2) for x in os.getloadavg()]},
            "server": {
                "gunicorn_workers": args.workers,
                "threads": args.threads,
                "clients": args.clients,
                "keep_alive": args.keep_alive,
                "gunicorn_args": args.gunicorn_arg,
            },
            "setup_s": round(time.perf_counter() - setup_started, 1),
            "learners": args.learners,
        }
        if not args.batch_total:  # every learner needs a history before GET next can find them
            args.batch_total, args.batch_size = args.learners, args.learners
            _batch_ingest(server, args, items)
            args.batch_total = 0
        result["batch_ingest"] = _batch_ingest(server, args, items) if args.batch_total else None
        if SETTLE[args.settle]:
            # As after any bulk load: statistics and visibility maps brought up to date, dirty pages
            # written, so autovacuum's reaction to 100,000 new rows does not land inside the timed run.
            started = time.perf_counter()
            for statement in SETTLE[args.settle]:
                postgres(server.env["DATABASE_URL"], statement)
            result["settle"] = {"statements": SETTLE[args.settle], "s": round(time.perf_counter() - started, 2)}
        _mixed_load(server, args, items, min(args.rate, 50), 5, "warmup")
        if args.find_max:
            steps, sustained = [], None
            for rate in (10, 20, 40, 60, 80, 100, 150, 200, 250, 300, 400):
                step = _mixed_load(server, args, items, rate, 10, f"step{rate}")
                p99 = {e: step[e]["p99_ms"] for e in ("interactions", "next")}
                steps.append(
                    {
                        "rate": rate,
                        "errors": step["errors"],
                        "achieved_rps": step["achieved_rps"],
                        "p99_ms": p99,
                        "lost": step["integrity"]["lost"],
                    }
                )
                if (
                    step["errors"]
                    or step["achieved_rps"] < 0.95 * rate
                    or max(value or 1e9 for value in p99.values()) > args.slo_ms
                ):
                    break
                sustained = rate
            result["rate_steps"] = {"slo_p99_ms": args.slo_ms, "highest_sustained_rps": sustained, "steps": steps}
        if args.compare_lock:
            runs = {}
            for lock in (True, False):
                tag = "lock_on" if lock else "lock_off"
                _gunicorn_stop(server)
                _gunicorn_start(server, args, root, lock=lock)
                _mixed_load(server, args, items, min(args.rate, 50), 5, f"warmup-{tag}")
                runs[tag] = _mixed_load(server, args, items, args.rate, args.duration, f"load-{tag}")
            result["mixed"] = runs
            result["lock_cost"] = _lock_cost(runs["lock_on"], runs["lock_off"])
        else:
            result["mixed"] = _mixed_load(server, args, items, args.rate, args.duration, "load")
        result["machine"]["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
        emit(result)
    finally:
        _stop(server)
        try:
            postgres(f"{args.postgres.rstrip('/')}/postgres", f"DROP DATABASE IF EXISTS {args.database} WITH (FORCE)")
        except Exception:  # noqa: BLE001 - best effort: the database may never have been created
            pass
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
