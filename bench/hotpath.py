"""CPU time and SQL queries per request on the two hot endpoints, in one process, no network.

    python bench/hotpath.py [--requests 400] [--learners 1000] [--history 20000] [--profile 25]

Where bench/load.py measures latency under a real server, this measures what one request costs
the application process: Python CPU milliseconds (process time, so steadier than wall time on a
busy machine) and the number of SQL queries, for POST one interaction (with the online mastery
update) and GET the next item, on the demo course with ``--learners`` learners who already hold
``--history`` answers. It runs the WSGI handler directly (every middleware, authentication and
serialisation included), and the CPU of its PostgreSQL backend (``database_cpu_ms_mean``, from /proc:
the database runs on this machine), so that the two together say how many requests a second the
machine's cores can serve at most. ``--skills`` swaps the demo course for one shaped as bench/scale.py's
(50 skills and 500 items: the serving bench's 5M course), whose ``next`` weighs more items.

Creates a fresh PostgreSQL database (BENCH_DATABASE, default kt_bench_hotpath, on BENCH_POSTGRES,
default postgres://postgres@127.0.0.1:5432), uses Redis as the cache (BENCH_CACHE_URL, default
rediscache://127.0.0.1:6379/4), drops the database afterwards and prints JSON. ``--profile N``
adds the N functions with the most cumulative time under cProfile.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import json
import os
import pstats
import random
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import database_fresh, emit, postgres  # noqa: E402

COURSE = "arithmetic"


def _configure(args: argparse.Namespace) -> str:
    base = args.postgres.rstrip("/")
    url = database_fresh(base, args.database)
    os.environ.update(
        {
            "DATABASE_URL": url,
            "DJANGO_DEBUG": "false",
            "DJANGO_SECRET_KEY": "bench-" + "k" * 60,
            "DJANGO_SECURE_SSL_REDIRECT": "false",
            "DJANGO_LOG_LEVEL": "WARNING",
            "TUTOR_API_RATE": "10000000/min",
            "CELERY_TASK_ALWAYS_EAGER": "true",
            "TRACING_TORCH_THREADS": "1",
            "DJANGO_ALLOWED_HOSTS": "testserver",
            # The throttle's counters live in the cache: Redis, as in production.
            "CACHE_URL": os.environ.get("BENCH_CACHE_URL", "rediscache://127.0.0.1:6379/4"),
        }
    )
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tutor.settings")
    import django

    django.setup()
    return base


class Caller:
    """Calls the WSGI application as gunicorn would: one environ in, the body out."""

    def __init__(self, key: str) -> None:
        from tutor.wsgi import application  # what gunicorn loads

        self.application = application
        self.key = key

    def __call__(self, method: str, path: str, body: Any = None) -> tuple[int, bytes]:
        payload = json.dumps(body).encode() if body is not None else b""
        environ = {
            "REQUEST_METHOD": method,
            "PATH_INFO": path,
            "QUERY_STRING": "",
            "SERVER_NAME": "testserver",
            "SERVER_PORT": "80",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(payload),
            "wsgi.errors": sys.stderr,
            "wsgi.version": (1, 0),
            "wsgi.multithread": False,
            "wsgi.multiprocess": True,
            "wsgi.run_once": False,
            "CONTENT_LENGTH": str(len(payload)),
            "CONTENT_TYPE": "application/json",
            "HTTP_AUTHORIZATION": f"Token {self.key}",
            "REMOTE_ADDR": "127.0.0.1",
        }
        status: list[str] = []
        chunks = self.application(environ, lambda line, headers, exc_info=None: status.append(line))
        body_out = b"".join(chunks)
        if hasattr(chunks, "close"):
            chunks.close()
        return int(status[0].split()[0]), body_out


def _seed(call: Caller, args: argparse.Namespace, items: list[str]) -> None:
    generator = random.Random(1)
    start = datetime(2026, 10, 1, tzinfo=UTC)
    for first in range(0, args.history, 10_000):
        rows = [
            {
                "id": f"seed-{n}",
                "learner": f"learner-{n % args.learners:04d}",
                "item": generator.choice(items),
                "correct": int(generator.random() < 0.6),
                "timestamp": (start + timedelta(seconds=n)).isoformat(),
            }
            for n in range(first, min(args.history, first + 10_000))
        ]
        status, body = call("POST", f"/api/v1/courses/{COURSE}/interactions", rows)
        if status != 201:
            sys.exit(f"seeding answered {status}: {body[:300]!r}")


def _wide_course(args: argparse.Namespace) -> None:
    """The --skills course: bench/scale.py's generated file imported as a file is, then a BKT fit, inline."""
    import tempfile

    from bench.scale import course_generate
    from curriculum.models import Course
    from tutor.actions import answers_import, fit_start

    answers = max(1, args.history // args.learners)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "answers.csv"
        course_generate(path, learners=args.learners, answers=answers, items=args.items, skills=args.skills)
        answers_import(course_slug="scale", path=path, format="csv")
    fit = fit_start(course=Course.objects.get(slug="scale"), kind="bkt", inline=True)
    if fit.status != "succeeded":
        sys.exit(f"the fit {fit.status}: {fit.error}")


def _jobs(args: argparse.Namespace, items: list[str], label: str) -> list[tuple[str, str, Any]]:
    generator = random.Random(label)
    moment = datetime(2026, 11, 1, tzinfo=UTC)
    jobs: list[tuple[str, str, Any]] = []
    for number in range(args.requests):
        number_of = generator.randrange(args.learners)
        learner = f"u{number_of}" if args.skills else f"learner-{number_of:04d}"
        row = {
            "id": f"{label}-{number}",
            "learner": learner,
            "item": generator.choice(items),
            "correct": int(generator.random() < 0.6),
            "timestamp": (moment + timedelta(seconds=number)).isoformat(),
        }
        jobs.append(("interactions", f"/api/v1/courses/{args.course}/interactions", row))
        jobs.append(("next", f"/api/v1/courses/{args.course}/learners/{learner}/next", None))
    return jobs


class Collections:
    """Python's cyclic garbage collections while it is entered: how many per generation, and their time."""

    def __init__(self) -> None:
        self.count = [0, 0, 0]
        self.seconds = [0.0, 0.0, 0.0]
        self._started = 0.0

    def _track(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.count[info["generation"]] += 1
            self.seconds[info["generation"]] += time.perf_counter() - self._started

    def __enter__(self) -> Collections:
        gc.callbacks.append(self._track)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self._track)

    def summary(self) -> dict[str, Any]:
        return {
            "tracked_objects": len(gc.get_objects()),
            "frozen_objects": gc.get_freeze_count(),
            "collections": self.count,
            "ms": [round(1000 * s, 1) for s in self.seconds],
        }


def _backend_cpu() -> tuple[int, float]:
    """(pid, CPU seconds, user + system, so far) of this process's PostgreSQL backend, read from /proc: the
    database is on this machine, so what a request costs the machine is this plus the process's own."""
    from django.db import connection

    connection.ensure_connection()
    pid = connection.connection.info.backend_pid
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return pid, (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _measure(call: Caller, jobs: list[tuple[str, str, Any]]) -> dict[str, dict[str, float]]:
    cpu: dict[str, list[float]] = {"interactions": [], "next": []}
    wall: dict[str, list[float]] = {"interactions": [], "next": []}
    database: dict[str, float] = {"interactions": 0.0, "next": 0.0}
    counted: dict[str, int] = {"interactions": 0, "next": 0}
    for endpoint, path, body in jobs:
        backend, backend_start = _backend_cpu()
        cpu_start, wall_start = time.process_time(), time.perf_counter()
        status, raw = call("POST" if body is not None else "GET", path, body)
        cpu[endpoint].append(time.process_time() - cpu_start)
        wall[endpoint].append(time.perf_counter() - wall_start)
        after, backend_stop = _backend_cpu()
        if after == backend:  # the same connection (CONN_MAX_AGE keeps it): its backend's CPU is the request's
            database[endpoint] += backend_stop - backend_start
            counted[endpoint] += 1
        if status not in (200, 201):
            sys.exit(f"{endpoint} answered {status}: {raw[:300]!r}")
    return {
        endpoint: {
            "cpu_ms_mean": round(1000 * statistics.fmean(cpu[endpoint]), 2),
            "cpu_ms_median": round(1000 * statistics.median(cpu[endpoint]), 2),
            "wall_ms_median": round(1000 * statistics.median(wall[endpoint]), 2),
            # Clock ticks (10 ms) summed over every request, so the mean is fine-grained enough.
            "database_cpu_ms_mean": round(1000 * database[endpoint] / max(counted[endpoint], 1), 2),
        }
        for endpoint in cpu
    }


def _queries(call: Caller, jobs: list[tuple[str, str, Any]]) -> dict[str, dict[str, Any]]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    counts: dict[str, list[int]] = {"interactions": [], "next": []}
    example: dict[str, list[str]] = {}
    for endpoint, path, body in jobs:
        with CaptureQueriesContext(connection) as captured:
            call("POST" if body is not None else "GET", path, body)
        counts[endpoint].append(len(captured.captured_queries))
        example.setdefault(endpoint, [query["sql"][:160] for query in captured.captured_queries])
    return {
        endpoint: {"mean": round(statistics.fmean(values), 2), "max": max(values), "example": example[endpoint]}
        for endpoint, values in counts.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=400, help="requests per endpoint (measured)")
    parser.add_argument("--warmup", type=int, default=50, help="requests per endpoint before measuring")
    parser.add_argument("--learners", type=int, default=1000)
    parser.add_argument("--history", type=int, default=20_000, help="answers stored before measuring")
    parser.add_argument("--profile", type=int, default=0, help="print the top N functions by cumulative time")
    parser.add_argument("--sort", default="cumulative", help="profile order: cumulative or tottime")
    parser.add_argument(
        "--skills",
        type=int,
        default=0,
        help="instead of the demo course, a course as bench/scale.py generates it (this many skills, --items "
        "items, no prerequisites), --history answers of --learners learners imported and a BKT fit active",
    )
    parser.add_argument("--items", type=int, default=500, help="items of the --skills course")
    parser.add_argument("--postgres", default=os.environ.get("BENCH_POSTGRES", "postgres://postgres@127.0.0.1:5432"))
    parser.add_argument("--database", default=os.environ.get("BENCH_DATABASE", "kt_bench_hotpath"))
    args = parser.parse_args()
    args.course = "scale" if args.skills else COURSE
    base = _configure(args)
    try:
        from django.core.management import call_command

        from curriculum.models import Course, Item
        from tutor.keys import api_key_create

        call_command("migrate", "--no-input", verbosity=0)
        started = time.perf_counter()
        if args.skills:
            _wide_course(args)
        else:
            call_command("demo_setup", stdout=io.StringIO())
        key = api_key_create(name="hotpath", course=Course.objects.get(slug=args.course))[1]
        items = list(Item.objects.filter(course__slug=args.course).order_by("id").values_list("external_id", flat=True))
        call = Caller(key)
        if not args.skills:
            _seed(call, args, items)
        seed_s = time.perf_counter() - started
        warm = argparse.Namespace(**{**vars(args), "requests": args.warmup})
        _measure(call, _jobs(warm, items, "warm"))
        with Collections() as collections:
            per_request = _measure(call, _jobs(args, items, "measured"))
        result: dict[str, Any] = {
            "bench": "hotpath",
            "course": args.course,
            "skills": Course.objects.get(slug=args.course).skills.count(),
            "items": len(items),
            "learners": args.learners,
            "history": args.history,
            "requests_per_endpoint": args.requests,
            "seed_s": round(seed_s, 2),
            "per_request": per_request,
            "gc": collections.summary(),
            "queries": _queries(call, _jobs(warm, items, "counted")),
        }
        if args.profile:
            profiler = cProfile.Profile(time.process_time)  # CPU, not waits on PostgreSQL
            profiler.runcall(_measure, call, _jobs(args, items, "profiled"))
            text = io.StringIO()
            pstats.Stats(profiler, stream=text).sort_stats(args.sort).print_stats(args.profile)
            result["profile"] = text.getvalue().splitlines()
        emit(result)
    finally:
        from django.db import connections

        connections.close_all()
        postgres(f"{base}/postgres", f"DROP DATABASE IF EXISTS {args.database}")


if __name__ == "__main__":
    main()
