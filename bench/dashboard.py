"""Every dashboard page of a big course, fetched by a signed-in staff member from gunicorn (issue 18, item 5).

    python bench/dashboard.py --database h_reads_5m --course scale [--requests 20] [--code DIR]

Uses an existing PostgreSQL database holding the course (bench/scale.py builds the 5M-answer one; its
fit makes the Items, Fits and learner pages show a fit). Starts gunicorn as README runs it (4 sync
workers, ``DJANGO_DEBUG=false``) from ``--code`` (default: this checkout; a baseline is ``git archive
<commit> | tar -x -C DIR``, run against the same database), makes a staff account and a session for it,
then fetches each page ``--requests`` times one after another (after one unmeasured fetch: each worker
process loads the course's model once), and prints JSON: per page the status, bytes, and p50 / p95 / max
seconds, with the load average before and after (the machine is shared: say it with the figures).
A page slower than ``--timeout`` seconds is counted as such and not fetched again, and one slower than
half of it is fetched only once (``first_s``, the unmeasured fetch, says how long it took).

The pages: the course list, the course overview (activity, heatmap, learning curves), the learners
(first and second page), one learner, items, the prerequisite graph, fits (page, table, one fit's
progress), the data tab and an erasure's confirmation page. Downloads (exports) are streams of the
whole course, not pages, and are left out.
"""

from __future__ import annotations

import argparse
import http.client
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import REPO, emit, postgres  # noqa: E402
from bench.load import _free_port, _percentile  # noqa: E402

USER = "bench-dashboard-staff"


def _session(env: dict[str, str], code: Path) -> str:
    """A staff account and a signed-in session for it, made by the code under test; the session key."""
    script = (
        "import django; django.setup()\n"
        "from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model\n"
        "from django.contrib.sessions.backends.db import SessionStore\n"
        f"user, _ = get_user_model().objects.get_or_create(username={USER!r}, defaults={{'is_staff': True}})\n"
        "user.is_staff = True; user.save()\n"
        "session = SessionStore()\n"
        "session[SESSION_KEY] = str(user.pk)\n"
        "session[BACKEND_SESSION_KEY] = 'django.contrib.auth.backends.ModelBackend'\n"
        "session[HASH_SESSION_KEY] = user.get_session_auth_hash()\n"
        "session.create()\n"
        "print(session.session_key)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=code, env=env, capture_output=True, text=True, timeout=120, check=True
    )
    return done.stdout.strip().splitlines()[-1]


def _get(port: int, path: str, cookie: str, timeout: float) -> tuple[int, bytes, float]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    started = time.perf_counter()
    try:
        connection.request("GET", path, headers={"Cookie": f"sessionid={cookie}"})
        response = connection.getresponse()
        body = response.read()
    finally:
        connection.close()
    return response.status, body, time.perf_counter() - started


def _pages(url: str, course: str) -> list[tuple[str, str]]:
    rows = postgres(
        url,
        "SELECT l.id, l.external_id, (SELECT f.id FROM tracing_fit f WHERE f.course_id = c.id ORDER BY f.id DESC "
        "LIMIT 1) FROM tutor_learner l JOIN tutor_course c ON c.id = l.course_id "
        f"WHERE c.slug = '{course}' ORDER BY l.id LIMIT 1",
    )
    if not rows:
        sys.exit(f"course {course!r} has no learners in this database")
    learner, external, fit = rows[0]
    base = f"/dashboard/{course}"
    pages = [
        ("courses", "/dashboard/"),
        ("overview", f"{base}/"),
        ("learners", f"{base}/learners/"),
        ("learners_page_2", ""),  # its address is the first page's "next" link
        ("learner", f"{base}/learners/{learner}/"),
        ("items", f"{base}/items/"),
        ("graph", f"{base}/graph/"),
        ("fits", f"{base}/fits/"),
        ("fits_table", f"{base}/fits/table/"),
        ("data", f"{base}/data/"),
        ("erase_confirm", f"{base}/erase/?learner={external}"),
    ]
    if fit is not None:
        pages.append(("fit_status", f"{base}/fits/{fit}.json"))
    return pages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", default="h_reads_5m")
    parser.add_argument("--postgres", default=os.environ.get("BENCH_POSTGRES", "postgres://postgres@127.0.0.1:5432"))
    parser.add_argument("--course", default="scale")
    parser.add_argument("--requests", type=int, default=20, help="measured fetches per page")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn sync workers")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds; a slower page is not fetched again")
    parser.add_argument("--code", type=Path, default=REPO, help="the checkout whose code serves the pages")
    parser.add_argument("--only", default="", help="comma-separated page names (default: all)")
    args = parser.parse_args()
    if not args.database.replace("_", "").isalnum() or not args.course.replace("-", "").replace("_", "").isalnum():
        sys.exit("--database and --course must be plain identifiers")
    code = args.code.resolve()
    url = f"{args.postgres.rstrip('/')}/{args.database}"
    root = Path(tempfile.mkdtemp(prefix="kt-bench-dashboard-"))
    env = {key: value for key, value in os.environ.items() if not key.startswith(("DJANGO_", "CELERY_", "DATABASE"))}
    env.update(
        {
            "DATABASE_URL": url,
            "DJANGO_SETTINGS_MODULE": "tutor.settings",
            "DJANGO_DEBUG": "false",
            "DJANGO_SECRET_KEY": "bench-" + "k" * 60,
            "DJANGO_SECURE_SSL_REDIRECT": "false",
            "DJANGO_LOG_LEVEL": "WARNING",
            "TUTOR_ARTIFACT_ROOT": str(REPO / ".bench" / "artifacts"),
            "OMP_NUM_THREADS": "1",
            "NUMBA_NUM_THREADS": "1",
            "TRACING_TORCH_THREADS": "1",
            "PYTHONPATH": str(code),
        }
    )
    cookie = _session(env, code)
    port = _free_port()
    log = open(root / "gunicorn.log", "a")  # noqa: SIM115 - closed with the process
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "tutor.wsgi:application", "--bind", f"127.0.0.1:{port}"]
        + ["--workers", str(args.workers), "--timeout", str(int(args.timeout) + 60)],
        cwd=code,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    result: dict[str, Any] = {
        "bench": "dashboard",
        "code": str(code),
        "database": args.database,
        "course": args.course,
        "requests_per_page": args.requests,
        "gunicorn_workers": args.workers,
        "machine": {"cores": os.cpu_count(), "load_average_before": [round(x, 2) for x in os.getloadavg()]},
        "pages": {},
    }
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if _get(port, "/health/", cookie, 5)[0] == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                sys.exit(f"gunicorn did not answer: see {root / 'gunicorn.log'}")
            time.sleep(0.3)
        wanted = {name for name in args.only.split(",") if name}
        next_page = ""
        for name, path in _pages(url, args.course):
            if name == "learners_page_2":
                path = next_page
            if (wanted and name not in wanted) or not path:
                continue
            times: list[float] = []
            status, size, slow, first = 0, 0, False, None
            for attempt in range(args.requests + 1):
                try:
                    status, body, seconds = _get(port, path, cookie, args.timeout)
                except TimeoutError:
                    slow = True
                    break
                size = len(body)
                if name == "learners" and not next_page:
                    found = re.search(rb'href="\?([^"]+)" rel="next"', body)
                    next_page = f"{path}?{found.group(1).decode().replace('&amp;', '&')}" if found else ""
                if attempt:  # the first fetch warms a worker (the course's model loads once per process)
                    times.append(seconds)
                else:
                    first = seconds
                if seconds > args.timeout / 2:
                    break  # a page this slow is measured once, not twenty times
            result["pages"][name] = {
                "path": path,
                "status": status,
                "bytes": size,
                "fetches": len(times),
                "p50_s": _seconds(_percentile(times, 0.5)),
                "p95_s": _seconds(_percentile(times, 0.95)),
                "max_s": _seconds(_percentile(times, 1.0)),
                "first_s": None if first is None else round(first, 3),
                "over_timeout": slow,
            }
            print(f"{name}: {result['pages'][name]}", file=sys.stderr)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    result["machine"]["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    pages = [page for page in result["pages"].values() if page["p95_s"] is not None]
    result["slowest_p95_s"] = max((page["p95_s"] for page in pages), default=None)
    # A page fetched only once (its first fetch took over half the time-out) has no p95 and is not under 1 s.
    once = [name for name, page in result["pages"].items() if page["p95_s"] is None]
    result["fetched_once"] = once
    result["all_under_1s_p95"] = (
        all(page["p95_s"] < 1.0 and page["status"] == 200 for page in pages)
        and not once
        and not any(page["over_timeout"] for page in result["pages"].values())
    )
    emit(result)


def _seconds(milliseconds: float | None) -> float | None:
    return None if milliseconds is None else round(milliseconds / 1000, 3)


if __name__ == "__main__":
    main()
