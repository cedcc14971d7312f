"""Serving while fitting (issue 18, item 6): the API's mixed load while a big course's fit runs in a worker
on the same machine, against the same load without the fit, in one run.

The run README reports (the database kept for it: h_serving_5m, 200,000 learners x 25 answers, with a first fit):

    .venv/bin/python bench/serving.py --database h_serving_5m --fit-course scale --rate 200 \\
        --duration 60 > bench/results/serving-200rps-NAME.json
    .venv/bin/python bench/serving.py --render bench/results/serving-200rps-NAME.json   # README's table

(on a machine others share: ``nice -n 19`` and ``--fit-idle``, so the worker stays below the web)

and to compare the recompute's pacing in one run (each variant: the worker restarted with its settings,
the database settled, a baseline, then the fit under load):

    ... --variant unpaced:TRACING_RECOMPUTE_PAUSE=0,TRACING_RECOMPUTE_BATCH=2000 --variant defaults

Needs an existing PostgreSQL database holding the big course (bench/scale.py builds the 5M-answer one:
``--learners 200000 --answers 25 --database NAME --stages import,fit``). Then, on loopback:

1. a private redis-server (broker and cache), ``migrate``, the demo course with its first fit (kept between
   runs), an API key for each course, ``--learners`` learners with a short history in the demo course;
2. gunicorn as README runs it (``--workers`` sync workers) and a Celery worker for the ``fits`` queue as
   a deployment runs one beside the web processes: one process (``--concurrency=1``), one thread for
   numpy/numba/torch, at lower CPU priority (``nice -n --fit-nice``; deploy/entrypoint.sh does the same);
3. the database settled (``--settle``: VACUUM (ANALYZE), CHECKPOINT: the last run's fit left 10M replaced
   mastery rows behind), then the baseline: bench/load.py's mixed load (half POST one interaction with its
   online update, half GET next, open loop at ``--rate`` for ``--duration`` s, latency from each request's
   scheduled start) with no fit running;
4. a BKT fit of ``--fit-course`` started through the API (``POST .../fits``: queued, the worker takes it),
   and the same mixed load, ``--duration`` s at a time, until the fit has finished (or ``--fit-timeout``):
   each slice with the fit's stage when it began and ended;
5. for every slice: p50/p95/p99 per endpoint (and p99 per second), errors, requests dropped late, the
   answers acknowledged against those stored (lost, doubled), and the trace of the same seconds
   (bench/serving_trace.py; ``--no-trace`` leaves it out): CPU and run-queue delay of gunicorn, the web's
   and the fit's PostgreSQL backends, the worker and PostgreSQL's writers; their wait events; WAL,
   checkpoints and disk; the web's statements slower than ``--slow-ms`` from the server's log.

The load goes to the demo course, or with ``--load-on fitted`` to the course being fitted (its recompute
holds one batch of learners at a time, README Architecture; before, the activation held all of them to
its end, and that course's answers waited for it). JSON on stdout with ``uptime``'s load averages; stops
everything it started and keeps the database (the demo course and the answers the load stored stay in it).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import REPO, block_replace, emit, postgres  # noqa: E402
from bench.load import (  # noqa: E402
    COURSE,
    SETTLE,
    Server,
    _batch_ingest,
    _bench_server,
    _gunicorn_start,
    _items,
    _mixed_load,
    _process_group_stop,
    _stop,
)
from bench.serving_trace import Trace, _descendants  # noqa: E402

README = REPO / "README.md"
BEGIN, END = "<!-- bench:serving:begin -->", "<!-- bench:serving:end -->"
SUMMARY_KEYS = ("achieved_rps", "errors", "dropped_late", "cpu_ms_per_request", "p99_ms_per_10s", "integrity")


def _summary(run: dict[str, Any]) -> dict[str, Any]:
    endpoints = {
        endpoint: {key: run[endpoint][key] for key in ("requests", "errors", "p50_ms", "p95_ms", "p99_ms", "max_ms")}
        for endpoint in ("interactions", "next")
    }
    return {**{key: run[key] for key in SUMMARY_KEYS}, **endpoints}


def _fit_state(url: str, fit: int) -> dict[str, Any]:
    status, stage, progress, timings = postgres(
        url, f"SELECT status, stage, progress, timings FROM tracing_fit WHERE id = {int(fit)}"
    )[0]
    return {"status": status, "stage": stage, "progress": round(progress or 0.0, 3), "timings": timings}


def _setup(args: argparse.Namespace, root: Path) -> Server:
    if shutil.which("redis-server") is None:
        sys.exit("redis-server not found: install Redis to run this bench")
    url = f"{args.postgres.rstrip('/')}/{args.database}"
    if not postgres(url, f"SELECT 1 FROM tutor_course WHERE slug = '{args.fit_course}'"):
        sys.exit(f"course {args.fit_course!r} is not in {args.database}: build it with bench/scale.py first")
    server = _bench_server(url, artifacts=REPO / ".bench" / "artifacts", root=root)
    server.manage("migrate", "--no-input", "-v0")
    if not postgres(url, f"SELECT 1 FROM tutor_course WHERE slug = '{COURSE}'"):
        server.env["CELERY_TASK_ALWAYS_EAGER"] = "true"  # the demo's first fit runs here, before the worker
        server.manage("demo_setup")
        del server.env["CELERY_TASK_ALWAYS_EAGER"]
    server.key = server.manage("apikey_create", "--course", COURSE, "--name", "bench").strip().splitlines()[-1]
    args.fit_key = (
        server.manage("apikey_create", "--course", args.fit_course, "--name", "bench").strip().splitlines()[-1]
    )
    return server


def _session_options(role: str, args: argparse.Namespace) -> str:
    """PGOPTIONS for a process's PostgreSQL sessions: its name in pg_stat_activity (the trace tells the web's
    backends from the fit's by it) and, with the trace, its slow statements and lock waits in the server's
    log (per session: the shared server's own settings stay as they are)."""
    options = f"-c application_name={role}"
    if not args.no_trace:
        slow = args.slow_ms if role == "web" else args.fit_slow_ms
        options += f" -c log_min_duration_statement={slow} -c log_lock_waits=on"
    return options


def _worker_start(server: Server, args: argparse.Namespace, root: Path, env: dict[str, str] | None = None) -> None:
    log = open(root / "worker.log", "a")  # noqa: SIM115 - closed with the process
    server.processes.insert(
        1,  # before gunicorn, which load.py's helpers expect last
        subprocess.Popen(
            (["chrt", "--idle", "0"] if args.fit_idle else [])
            + ["nice", "-n", str(args.fit_nice), sys.executable, "-m", "celery", "-A", "tutor", "worker"]
            + ["-Q", "fits", "--concurrency", "1", "--loglevel", "INFO"],
            cwd=REPO,
            env={**server.env, **(env or {}), "PGOPTIONS": _session_options("fit", args)},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        ),
    )


def _slice(
    server: Server, args: argparse.Namespace, items: list[str], label: str, trace: Trace | None
) -> dict[str, Any]:
    """One run of the mixed load at ``--rate`` for ``--duration`` s: its summary, with the trace's report
    of the same seconds (and the per-second p99, to line stalls up with it)."""
    first = trace.mark() if trace else None
    run = _mixed_load(server, args, items, args.rate, args.duration, label, per_second=trace is not None)
    summary = _summary(run)
    if trace is not None and first is not None:
        last = trace.mark()
        summary["p99_ms_per_s"] = run["p99_ms_per_s"]
        summary["trace"] = trace.report(first, last, run)
        summary["trace"]["slow_statements"] = trace.slow_statements(args.database, first["t"], last["t"])
    return summary


def _cell(value: Any, digits: int = 0) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _row(label: str, run: dict[str, Any]) -> str:
    """One table row: a baseline or a slice, its latency and what the trace saw in the same seconds."""
    trace = run.get("trace", {})
    cores, delay = trace.get("cpu_cores", {}), trace.get("run_delay_ms_per_s", {})
    waits = trace.get("waits", {}).get("web", {})
    wait = max(waits, key=waits.get) if waits else "-"
    checkpoints = trace.get("checkpointer", {})
    post, nxt = run["interactions"], run["next"]
    return (
        f"| {label} | {_cell(trace.get('load_average', [None])[0], 1)} "
        f"| {_cell(post['p50_ms'])} / {_cell(nxt['p50_ms'])} | {_cell(post['p95_ms'])} / {_cell(nxt['p95_ms'])} "
        f"| **{_cell(post['p99_ms'])} / {_cell(nxt['p99_ms'])}** | {run['errors']} / {run['integrity']['lost']} "
        f"| {_cell(cores.get('fit'), 2)} | {_cell(cores.get('worker'), 2)} | {_cell(cores.get('gunicorn'), 2)} "
        f"| {_cell(delay.get('gunicorn'))} | {_cell(trace.get('wal_mb_per_s'), 1)} "
        f"| {_cell((checkpoints.get('checkpoints_req') or 0) + (checkpoints.get('checkpoints_timed') or 0))} "
        f"| {wait} {_cell(100 * waits.get(wait, 0) if waits else None)}% |"
    )


def render(result: dict[str, Any]) -> str:
    """README's table of one run: per variant its baseline and every slice during the fit."""
    lines = [
        f"{result['started']}, `{result['command']}` (2 cores; load average: 1-minute, at each row's end):",
        "",
        "| variant, part | load | p50 ms (POST / next) | p95 ms | p99 ms | errors / lost | fit backend, cores "
        "| worker, cores | gunicorn, cores | gunicorn run-queue wait, ms/s | WAL MB/s | checkpoints "
        "| web backends' main wait (% of samples) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for number, variant in enumerate(result["variants"]):
        base = variant.get("baseline") or (result.get("baseline") if number == 0 else None)
        settings = ", ".join(f"{k}={v}" for k, v in variant["env"].items()) or "the defaults"
        if base:
            lines.append(_row(f"{variant['name']} ({settings}): baseline, no fit", base))
        for index, part in enumerate(variant["during_fit"]):
            stage = f"{part['fit_before']['stage'] or 'queued'} -> {part['fit_after']['stage']}"
            lines.append(_row(f"- fit, slice {index + 1} ({stage})", part))
        timings = variant["fit"]["timings"] or {}
        lines.append(
            f"| - fit {variant['fit']['status']}: total {_cell(timings.get('total_s'))} s, load "
            f"{_cell(timings.get('load_s'), 1)} s, activation {_cell(timings.get('activate_s'))} s "
            "| | | | | | | | | | | | |"
        )
    return "\n".join(lines)


def readme_render(path: Path) -> None:
    """Rewrite README's serving block from a results file."""
    block = f"{BEGIN}\n{render(json.loads(path.read_text()))}\n{END}"
    README.write_text(block_replace(README.read_text(), BEGIN, END, block, source=README))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", default="h_serving_5m")
    parser.add_argument("--postgres", default=os.environ.get("BENCH_POSTGRES", "postgres://postgres@127.0.0.1:5432"))
    parser.add_argument("--fit-course", default="scale", help="the big course whose BKT fit runs in the worker")
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of the baseline, and of each slice")
    parser.add_argument("--fit-timeout", type=float, default=1800.0, help="seconds of load while fitting, at most")
    parser.add_argument("--fit-nice", type=int, default=10, help="the worker's nice value")
    parser.add_argument(
        "--fit-idle",
        action="store_true",
        help="the worker under SCHED_IDLE as well: still below the web when the whole bench runs at nice 19 "
        "(as on a shared machine), where nice 10 more cannot go lower",
    )
    parser.add_argument("--learners", type=int, default=1000)
    parser.add_argument(
        "--load-on",
        choices=("demo", "fitted"),
        default="demo",
        help="the course the load answers in: the demo course, or the course being fitted (--learners of its "
        "learners, spread over it)",
    )
    parser.add_argument("--workers", type=int, default=4, help="gunicorn sync workers")
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument(
        "--settle",
        choices=sorted(SETTLE),
        default="full",
        help="before the baseline: full = VACUUM (ANALYZE) then CHECKPOINT of the database (the last run's fit "
        "left its 10M replaced mastery rows behind, and this server may run without autovacuum)",
    )
    parser.add_argument("--no-trace", action="store_true", help="no trace (bench/serving_trace.py) beside the load")
    parser.add_argument("--slow-ms", type=int, default=20, help="the web's statements logged when slower (trace)")
    parser.add_argument("--fit-slow-ms", type=int, default=250, help="the fit's statements logged when slower (trace)")
    parser.add_argument(
        "--pg-log",
        type=Path,
        default=Path("/var/log/postgresql/postgresql-15-main.log"),
        help="the server's log, for the slow statements (skipped where unreadable)",
    )
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        help="NAME:SETTING=VALUE,... : one fit under load with the worker started with these settings "
        "(repeatable: the fits run one after the other in this run, each after the database is settled and "
        "a baseline of its own); none: one fit with the product's defaults",
    )
    parser.add_argument("--render", type=Path, help="rewrite README's serving table from this results file, and stop")
    args = parser.parse_args()
    if args.render:
        readme_render(args.render)
        return
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # `kill PID` stops what it started too
    variants = [
        (name, dict(pair.split("=", 1) for pair in settings.split(",") if pair))
        for name, _, settings in (text.partition(":") for text in args.variant)
    ] or [("defaults", {})]
    if not args.database.replace("_", "").isalnum() or not args.fit_course.replace("-", "").isalnum():
        sys.exit("--database and --fit-course must be plain identifiers")
    # What bench/load.py's helpers read from its own arguments.
    args.threads, args.gunicorn_arg, args.keep_alive, args.contended = 1, [], False, False
    args.batch_total = args.batch_size = args.learners

    def uptime() -> list[float]:
        return [round(x, 2) for x in os.getloadavg()]

    root = Path(tempfile.mkdtemp(prefix="kt-bench-serving-"))
    tag = time.strftime("s%Y%m%d%H%M%S")  # client ids unique to this run: the database is kept
    server, trace = None, None
    result: dict[str, Any] = {
        "bench": "serving",
        "command": " ".join(sys.argv[1:]),
        "database": args.database,
        "fit_course": args.fit_course,
        "load_on": args.load_on,
        "rate": args.rate,
        "duration_s": args.duration,
        "gunicorn_workers": args.workers,
        "worker": {"concurrency": 1, "nice": args.fit_nice, "sched_idle": args.fit_idle, "threads": 1},
        "bench_nice": os.nice(0),
        "variants": [],
        "started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "machine": {"cores": os.cpu_count(), "load_average_start": uptime()},
    }
    try:
        server = _setup(args, root)
        items = _items(server)
        if args.load_on == "fitted":
            # The fitted course's own learners answer while its fit runs (its recompute holds one batch of
            # them at a time): learners spread over the course, so some answer before their batch, some after.
            args.load_learners = [
                row[0]
                for row in postgres(
                    f"{args.postgres.rstrip('/')}/{args.database}",
                    "SELECT l.external_id FROM tutor_learner l JOIN tutor_course c ON c.id = l.course_id "
                    f"WHERE c.slug = '{args.fit_course}' ORDER BY md5(l.external_id) LIMIT {int(args.learners)}",
                )
            ]
            fitted_items = _items(server, args.fit_course)
        server.env["PGOPTIONS"] = _session_options("web", args)
        _gunicorn_start(server, args, root)
        del server.env["PGOPTIONS"]
        url = server.env["DATABASE_URL"]
        known = postgres(
            url,
            "SELECT count(*) FROM tutor_learner l JOIN tutor_course c ON c.id = l.course_id "
            f"WHERE c.slug = '{COURSE}' AND l.external_id LIKE 'learner-%'",
        )[0][0]
        if known < args.learners:  # every learner has a history (kept with the database for the next run)
            _batch_ingest(server, args, items)
        if args.load_on == "fitted":
            items, args.load_course, server.key = fitted_items, args.fit_course, args.fit_key
        _worker_start(server, args, root, variants[0][1])
        _settle(url, args, result)
        if not args.no_trace:
            gunicorn, processes = server.processes[-1].pid, server.processes
            trace = Trace(
                url,
                {
                    "gunicorn": lambda: _descendants(gunicorn)[1:],
                    "worker": lambda: _descendants(processes[1].pid),  # restarted for each variant
                    "load_generator": lambda: [os.getpid()],
                },
                log=args.pg_log if os.access(args.pg_log, os.R_OK) else None,
            )
            trace.start()
        _mixed_load(server, args, items, min(args.rate, 50), 5, f"{tag}-warmup")
        if not args.no_baseline:
            result["machine"]["load_average_before_baseline"] = uptime()
            result["baseline"] = _slice(server, args, items, f"{tag}-base", trace)
            print(f"baseline: {_brief(result['baseline'])}", file=sys.stderr)
        for number, (name, env) in enumerate(variants):
            variant: dict[str, Any] = {"name": name, "env": env}
            if number:  # the worker again with this variant's settings, the database settled again, a baseline
                _worker_restart(server, args, root, env)
                _settle(url, args, variant)
                if not args.no_baseline:
                    variant["load_average_before_baseline"] = uptime()
                    variant["baseline"] = _slice(server, args, items, f"{tag}-base{number}", trace)
                    print(f"{name} baseline: {_brief(variant['baseline'])}", file=sys.stderr)
            variant.update(_fit_under_load(server, args, items, f"{tag}-{number}", trace, root))
            result["variants"].append(variant)
    finally:
        if trace is not None:
            trace.stop()
        _stop(server)
        if server is not None:
            for process in server.processes:
                if process.poll() is None:
                    os.killpg(process.pid, signal.SIGKILL)
    result["machine"]["load_average_end"] = uptime()
    emit(result)


def _fit_under_load(
    server: Server, args: argparse.Namespace, items: list[str], tag: str, trace: Trace | None, root: Path
) -> dict[str, Any]:
    """A BKT fit of ``--fit-course`` requested through the API, and the mixed load in slices until it ends."""
    key, server.key = server.key, args.fit_key
    status, body = server.request("POST", f"/api/v1/courses/{args.fit_course}/fits", {"model": "bkt"})
    server.key = key
    if status != 202:
        sys.exit(f"POST fits answered {status}: {body}")
    fit, url = body["id"], server.env["DATABASE_URL"]
    started, slices = time.monotonic(), list[dict[str, Any]]()
    load_at_start = [round(x, 2) for x in os.getloadavg()]
    while time.monotonic() - started < args.fit_timeout:
        before = _fit_state(url, fit)
        if before["status"] in ("succeeded", "failed"):
            break
        run = _slice(server, args, items, f"{tag}-fit{len(slices)}", trace)
        after = _fit_state(url, fit)
        slices.append(
            {
                "fit_before": {k: before[k] for k in ("status", "stage", "progress")},
                "fit_after": {k: after[k] for k in ("status", "stage", "progress")},
                "load_average": [round(x, 2) for x in os.getloadavg()],
                **run,
            }
        )
        print(f"slice {len(slices)}: {_brief(slices[-1])}", file=sys.stderr)
    final = _fit_state(url, fit)
    fine = [s for s in slices if s["interactions"]["p99_ms"] is not None]
    return {
        "load_average_fit_start": load_at_start,
        "fit": {
            "id": fit,
            "status": final["status"],
            "timings": final["timings"],
            "recompute_log": _recompute_log(root / "worker.log", fit),
        },
        "during_fit": slices,
        "during_fit_worst": {
            "p99_ms": max((max(s["interactions"]["p99_ms"], s["next"]["p99_ms"]) for s in fine), default=None),
            "errors": sum(s["errors"] for s in slices),
            "dropped_late": sum(s["dropped_late"] for s in slices),
            "lost": sum(s["integrity"]["lost"] for s in slices),
            "doubled": sum(s["integrity"]["doubled"] for s in slices),
        },
    }


def _settle(url: str, args: argparse.Namespace, into: dict[str, Any]) -> None:
    """As after any bulk write (a fit replaces 10M mastery rows): the next measurement is the settled
    database's, not autovacuum's or a checkpoint's, which may come at any moment otherwise."""
    started = time.perf_counter()
    for statement in SETTLE[args.settle]:
        postgres(url, statement)
    into["settle"] = {"statements": SETTLE[args.settle], "s": round(time.perf_counter() - started, 1)}


def _worker_restart(server: Server, args: argparse.Namespace, root: Path, env: dict[str, str]) -> None:
    _process_group_stop(server.processes.pop(1), 60)
    _worker_start(server, args, root, env)


def _brief(run: dict[str, Any]) -> str:
    """One line for stderr while the bench runs."""
    trace = run.get("trace", {})
    return (
        f"p99 {run['interactions']['p99_ms']} / {run['next']['p99_ms']} ms, errors {run['errors']}, "
        f"lost {run['integrity']['lost']}, load {trace.get('load_average')}, cpu {trace.get('cpu_cores')}, "
        f"wal {trace.get('wal_mb_per_s')} MB/s, checkpoints {trace.get('checkpointer', {}).get('checkpoints_req')}"
    )


def _recompute_log(path: Path, fit: int) -> list[str]:
    """The worker's progress lines of the fit's mastery recompute (first, every tenth, last), with their times."""
    try:
        lines = [
            line.strip() for line in path.read_text(errors="replace").splitlines() if f"fit {fit}: mastery of" in line
        ]
    except OSError:
        return []
    return [line for index, line in enumerate(lines) if index % 10 == 0 or index == len(lines) - 1]


if __name__ == "__main__":
    main()
