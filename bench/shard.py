"""BKT's EM sharded by skill over Celery worker processes: 1 process against 2, same code, same run (issue 18).

Generates (bench/scale.py's generator, kept under ``.bench/``) and imports a synthetic course into a fresh
PostgreSQL database, then, for each configuration in turn, starts a Celery worker on the fits queue
(``--concurrency`` processes, each numba-limited to ``--threads`` threads), starts a BKT fit through
``tutor.actions.fit_start`` (a chord of ``shards`` tasks and a merge where shards > 1) and waits for it:

- ``whole``: shards=1, one worker process: the one-worker fit, for the chord's overhead;
- ``1proc``: shards=2, one worker process: the two shards run one after the other;
- ``2proc``: shards=2, two worker processes: the two shards run at once.

Each configuration runs ``--repeats`` times, interleaved (whole, 1proc, 2proc, whole, ...), so a
change in the machine's load falls on all of them alike. Per fit: wall time from the request to the
active fit, the EM phase (first shard start to last shard end, from the shards' own timings), and the
load average before and after. The fitted parameters of every sharded fit are checked equal to the
whole fit's. JSON on stdout (and ``--out``).

Usage (own database and Redis databases; the machine is shared: run at the lowest load you can):
  BENCH_POSTGRES=postgres://postgres@127.0.0.1:5432 .venv/bin/python bench/shard.py \\
      --learners 40000 --answers 25 --items 500 --skills 50 --database h_shard \\
      --broker redis://127.0.0.1:6379/2 --backend redis://127.0.0.1:6379/3 --out .bench/shard-1m.json
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.common import database_fresh, emit  # noqa: E402
from bench.scale import course_generate, stage_run  # noqa: E402

CONFIGS = {"whole": (1, 1), "1proc": (2, 1), "2proc": (2, 2)}
"""name -> (shards, worker processes)."""


def worker_start(env: dict[str, str], processes: int, log: Path) -> subprocess.Popen:
    command = [
        str(REPO / ".venv" / "bin" / "celery"),
        "-A",
        "tutor",
        "worker",
        "-Q",
        "fits",
        f"--concurrency={processes}",
        "--without-gossip",
        "--without-mingle",
        "--loglevel=info",
        "-n",
        f"bench-shard-{processes}@%h",
    ]
    worker = subprocess.Popen(command, cwd=REPO, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if " ready." in log.read_text():
            return worker
        if worker.poll() is not None:
            raise SystemExit(f"the worker ended: {log.read_text()[-2000:]}")
        time.sleep(0.5)
    raise SystemExit("the worker did not start in 2 minutes")


def worker_stop(worker: subprocess.Popen) -> None:
    worker.send_signal(signal.SIGTERM)
    try:
        worker.wait(60)
    except subprocess.TimeoutExpired:
        worker.kill()
        worker.wait()


def fit_once(course: Any, shards: int, params: dict[str, Any]) -> dict[str, Any]:
    from tracing.models import Fit
    from tutor.actions import fit_start

    load_before = os.getloadavg()
    started = time.perf_counter()
    fit = fit_start(course=course, kind="bkt", params={**params, "shards": shards})
    while True:
        fit.refresh_from_db()
        if fit.status in (Fit.SUCCEEDED, Fit.FAILED):
            break
        time.sleep(0.2)
    wall = time.perf_counter() - started
    if fit.status != Fit.SUCCEEDED:
        raise SystemExit(f"fit {fit.pk} failed: {fit.error}")
    while not fit.timings:  # written just after the activation commits
        time.sleep(0.1)
        fit.refresh_from_db()
    result: dict[str, Any] = {
        "fit": fit.pk,
        "wall_s": round(wall, 2),
        "timings": fit.timings,
        "load_before": load_before,
        "load_after": os.getloadavg(),
    }
    return result


def warmup_course() -> Any:
    """The demo course with a small simulated history, for each new worker's first (unmeasured) fits."""
    from curriculum.services import course_from_document, curriculum_import
    from tutor.demo import demo_document, demo_history_simulate

    document = demo_document()
    course, created = course_from_document(document=document)
    if created or not course.interactions.exists():
        curriculum_import(course=course, document=document)
        demo_history_simulate(course=course, document=document, learners=30, answers=30)
    return course


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--learners", type=int, default=40_000)
    parser.add_argument("--answers", type=int, default=25, help="answers per learner")
    parser.add_argument("--items", type=int, default=500)
    parser.add_argument("--skills", type=int, default=50)
    parser.add_argument("--database", default="h_shard")
    parser.add_argument("--broker", default="redis://127.0.0.1:6379/2")
    parser.add_argument("--backend", default="redis://127.0.0.1:6379/3")
    parser.add_argument("--threads", type=int, default=1, help="numba threads per worker process")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--configs", default="whole,1proc,2proc")
    parser.add_argument("--params", default="{}", help="BKT parameters as JSON (default: the defaults)")
    parser.add_argument("--skip-import", action="store_true", help="reuse the database a previous run filled")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    folder = REPO / ".bench"
    folder.mkdir(exist_ok=True)
    path = folder / f"scale-{args.learners}x{args.answers}-{args.items}i-{args.skills}s.csv"
    if not path.exists():
        course_generate(path, learners=args.learners, answers=args.answers, items=args.items, skills=args.skills)
    base = os.environ.get("BENCH_POSTGRES", "postgres://postgres@127.0.0.1:5432")
    if args.skip_import:
        url = f"{base}/{args.database}"
    else:
        url = database_fresh(base, args.database)
    artifacts = Path(tempfile.mkdtemp(prefix="bench-shard-"))
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "DATABASE_CONN_MAX_AGE": "0",
        "DJANGO_DEBUG": "false",
        "DJANGO_SECRET_KEY": "bench-only-" + "x" * 50,
        "CELERY_BROKER_URL": args.broker,
        "CELERY_RESULT_BACKEND": args.backend,
        "ARTIFACT_ROOT": str(artifacts),
        "TUTOR_ARTIFACT_ROOT": str(artifacts),
        "NUMBA_NUM_THREADS": str(args.threads),
        "PYTHONUNBUFFERED": "1",
    }
    if not args.skip_import:
        subprocess.run([sys.executable, "manage.py", "migrate", "--no-input", "-v0"], cwd=REPO, env=env, check=True)
        imported = stage_run("import", code=REPO, url=url, course="scale", path=path)
        print(f"import: {imported['wall_s']} s", file=sys.stderr)
    os.environ.update(env)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tutor.settings")
    import django

    django.setup()
    from curriculum.models import Course
    from tracing.models import Fit

    course = Course.objects.get(slug="scale")
    warmup = warmup_course()
    params = json.loads(args.params)
    configs = args.configs.split(",")
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in configs}
    result: dict[str, Any] = {
        "bench": "shard",
        "answers": course.interactions.count(),
        "learners": args.learners,
        "items": args.items,
        "skills": args.skills,
        "params": params,
        "numba_threads_per_process": args.threads,
        "cpus": os.cpu_count(),
        "load_before": os.getloadavg(),
    }
    workers: dict[int, subprocess.Popen] = {}
    try:
        for repeat in range(args.repeats):
            for name in configs:
                shards, processes = CONFIGS[name]
                for other, worker in list(workers.items()):
                    if other != processes:
                        worker_stop(worker)
                        del workers[other]
                if processes not in workers:
                    workers[processes] = worker_start(env, processes, artifacts / f"worker-{processes}.log")
                    # Each worker process loads numba's compiled kernels on its first fit: not measured.
                    fit_once(warmup, processes, {"restarts": 1, "max_iter": 5})
                run = fit_once(course, shards, params)
                runs[name].append(run)
                print(f"{name} #{repeat}: {run['wall_s']} s, load {run['load_before'][0]:.2f}", file=sys.stderr)
    finally:
        for worker in workers.values():
            worker_stop(worker)

    def em_phase(run: dict[str, Any]) -> float:
        """First shard start to last shard end, from the shards' own timings (the whole fit: its EM)."""
        timings = run["timings"]
        if "shards" in timings:
            starts = [part["started"] for part in timings["shards"]]
            ends = [part["started"] + part["load_s"] + part["fit_s"] for part in timings["shards"]]
            return round(max(ends) - min(starts), 2)
        return round(timings.get("load_s", 0) + timings.get("fit_holdout_s", 0) + timings["fit_s"], 2)

    summary: dict[str, Any] = {}
    for name, done in runs.items():
        walls = [run["wall_s"] for run in done]
        phases = [em_phase(run) for run in done]
        summary[name] = {"wall_s": walls, "load_and_em_s": phases, "best_wall_s": min(walls)}
    if "1proc" in summary and "2proc" in summary:
        summary["speedup_2proc_over_1proc_wall"] = round(
            summary["1proc"]["best_wall_s"] / summary["2proc"]["best_wall_s"], 2
        )
        summary["speedup_2proc_over_1proc_load_and_em"] = round(
            min(summary["1proc"]["load_and_em_s"]) / min(summary["2proc"]["load_and_em_s"]), 2
        )
    # Every sharded fit must be the whole fit.
    fitted = {
        run["fit"]: Fit.objects.get(pk=run["fit"]).fitted_params["skills"] for done in runs.values() for run in done
    }
    reference = next(iter(fitted.values()))
    result["all_fits_equal"] = all(params == reference for params in fitted.values())
    result.update(summary=summary, runs=runs, load_after=os.getloadavg())
    emit(result, args.out)


if __name__ == "__main__":
    main()
