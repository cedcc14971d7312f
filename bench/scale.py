"""How import and fit grow with a course's size, on PostgreSQL (issue 18).

Generates a synthetic course (learners x answers each, items, skills; answers drawn from a BKT-like
learner: guess, slip, learning on each answer) as a plain CSV in the importer's ``csv`` format, under
the git-ignored ``.bench/`` (kept for the next run), then, in a fresh database, measures in child
processes (one per stage, so each peak is its own):

- import: ``tutor.actions.answers_import`` of the file (wall, answers/s, peak RSS; the mastery refresh
  that follows the import timed apart), then a re-import of the same file (adds nothing);
- file: the import alone (``tutor.importing.file_import`` in its transaction, no mastery refresh): wall,
  answers/s, this process's CPU seconds (parse and check), the database's CPU seconds and peak RSS;
- fit: ``tutor.actions.fit_start(kind="bkt", inline=True)`` with default parameters: load, EM (the
  held-out fit and the full fit), activation with the mastery recompute; time and peak RSS per stage,
  and the load's bytes per answer.

RSS is sampled every 20 ms by a thread (a stage's peak is the largest sample while it ran; the process
peak is the kernel's). ``--code DIR`` runs the stages on another checkout (the baseline: ``git archive
<commit> | tar -x -C DIR``) with this same bench. JSON on stdout (and ``--out``).

Usage:
  BENCH_POSTGRES=postgres://postgres@127.0.0.1:5432 nice -n 10 .venv/bin/python bench/scale.py \\
      --learners 40000 --answers 25 --items 500 --skills 50 --database h_scale_bench --out .bench/scale-1m.json
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent


def course_generate(path: Path, *, learners: int, answers: int, items: int, skills: int, seed: int = 0) -> None:
    """Write ``learners * answers`` rows of ``learner,item,skill,correct,timestamp`` (learner by learner,
    in time order) with numpy, in blocks of learners: the generator's memory does not grow with the file."""
    import numpy as np

    rng = np.random.default_rng(seed)
    item_skill = np.arange(items) % skills
    guess, slip = rng.uniform(0.1, 0.3, skills), rng.uniform(0.05, 0.2, skills)
    learn, prior = rng.uniform(0.05, 0.3, skills), rng.uniform(0.1, 0.5, skills)
    start = 1_600_000_000
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", encoding="utf-8") as handle:
        handle.write("learner,item,skill,correct,timestamp\n")
        block = 10_000
        for first in range(0, learners, block):
            count = min(block, learners - first)
            known = rng.random((count, skills)) < prior
            rows = np.arange(count)
            item = rng.integers(0, items, size=(count, answers))
            correct = np.empty((count, answers), dtype=np.int8)
            for step in range(answers):
                skill = item_skill[item[:, step]]
                mastered = known[rows, skill]
                p = np.where(mastered, 1 - slip[skill], guess[skill])
                correct[:, step] = rng.random(count) < p
                known[rows, skill] |= rng.random(count) < learn[skill]
            began = start + rng.integers(0, 86400 * 180, size=count)
            moment = began[:, None] + np.cumsum(rng.integers(20, 600, size=(count, answers)), axis=1)
            lines: list[str] = []
            for row in range(count):
                name = f"u{first + row}"
                lines.extend(
                    f"{name},i{i},s{s},{c},{t}"
                    for i, s, c, t in zip(
                        item[row].tolist(), item_skill[item[row]].tolist(), correct[row].tolist(), moment[row].tolist()
                    )
                )
            handle.write("\n".join(lines))
            handle.write("\n")
    tmp.rename(path)


class Sampler:
    """Peak RSS per named stage, sampled from /proc every 20 ms on a thread."""

    def __init__(self) -> None:
        self.stage = "start"
        self.peaks: dict[str, float] = {}
        self.started: dict[str, float] = {}
        self.times: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    @staticmethod
    def rss_mb() -> float:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self._note()

    def _note(self) -> None:
        rss = self.rss_mb()
        self.peaks[self.stage] = max(self.peaks.get(self.stage, 0.0), rss)

    def enter(self, stage: str) -> None:
        self._note()
        now = time.perf_counter()
        if self.stage in self.started:
            self.times[self.stage] = self.times.get(self.stage, 0.0) + now - self.started.pop(self.stage)
        self.stage = stage
        self.started[stage] = now
        self.peaks.setdefault(stage, self.rss_mb())

    def stop(self) -> dict[str, Any]:
        self.enter("end")
        self._stop.set()
        return {
            stage: {"s": round(self.times.get(stage, 0.0), 2), "peak_rss_mb": round(peak, 1)}
            for stage, peak in self.peaks.items()
            if stage not in ("end",)
        }


PROFILED = (
    ("tutor.importing", "_vocabulary_ensure", "vocabulary"),
    ("tutor.importing", "_chunk_insert", "insert"),
    ("tutor.importing", "_conflicts_check", "conflicts_check"),
    ("tutor.importing", "_references_lock", "references_lock"),
    ("tutor.importing", "_references_resolve", "references_lock"),
    ("tutor.importing", "_lines_check", "lines_check"),
    ("tutor.importing", "activity_add_staged", "sums_add"),
    ("tutor.importing", "activity_fold", "sums_fold"),
    ("tutor.actions", "mastery_pending_mark", "mastery_mark"),
)
"""Functions of the code under test timed apart in an import (those it lacks are skipped): seconds in each."""


def _profile_install(stage: Callable[[], str]) -> dict[str, float]:
    """Wrap the import's parts (PROFILED), the wait for the next parsed chunk, each COPY and each commit (the
    deferred foreign-key checks; those of the mastery refresh's batches apart, by ``stage()``) with timers;
    returns the dict they add their seconds to."""
    import functools
    import importlib

    import psycopg
    from django.db import connection

    spent: dict[str, float] = {}

    def timed(label: str, function: Any) -> Any:
        @functools.wraps(function)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                spent[label] = spent.get(label, 0.0) + time.perf_counter() - started

        return wrapper

    for module_name, name, label in PROFILED:
        module = importlib.import_module(module_name)
        if hasattr(module, name):
            setattr(module, name, timed(label, getattr(module, name)))
    importing = importlib.import_module("tutor.importing")
    if hasattr(importing, "_ReadAhead"):
        pieces = importing._ReadAhead.__iter__

        def waited(self: Any) -> Any:
            iterator = pieces(self)
            while True:
                started = time.perf_counter()
                try:
                    piece = next(iterator)
                except StopIteration:
                    return
                finally:
                    spent["parse_wait"] = spent.get("parse_wait", 0.0) + time.perf_counter() - started
                yield piece

        importing._ReadAhead.__iter__ = waited
    copy = psycopg.Cursor.copy

    @functools.wraps(copy)
    def timed_copy(self: Any, *args: Any, **kwargs: Any) -> Any:
        import contextlib

        @contextlib.contextmanager
        def block() -> Any:
            started = time.perf_counter()
            with copy(self, *args, **kwargs) as inner:
                yield inner
            label = "copy" if "tutor_import_stage" in str(args[0] if args else "") else "copy_other"
            spent[label] = spent.get(label, 0.0) + time.perf_counter() - started

        return block()

    psycopg.Cursor.copy = timed_copy  # type: ignore[method-assign]
    connection.ensure_connection()
    commit = connection.commit

    def commit_timed() -> None:
        started = time.perf_counter()
        try:
            commit()
        finally:
            label = "refresh_commits" if stage() == "mastery_refresh" else "commit"
            spent[label] = spent.get(label, 0.0) + time.perf_counter() - started

    connection.commit = commit_timed
    return spent


def _process_cpu(pid: int) -> float:
    """CPU seconds (user and system) of a process of this machine (the database server's backend of this
    connection, where PostgreSQL runs here); NaN where it cannot be read."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def child(stage: str, course: str, path: str) -> dict[str, Any]:
    """One stage in this process (run with the code under test first on sys.path and as the cwd)."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tutor.settings")
    sampler = Sampler()
    import django

    django.setup()
    result: dict[str, Any] = {"stage": stage}
    from django.db import connection

    if stage in ("import", "reimport"):
        import tutor.actions as actions

        # The old code refreshes inside the import's transaction (mastery_refresh), the new one after its
        # commit (mastery_refresh_pending): "committed_s" is the time until the file's answers are committed.
        deferred = hasattr(actions, "mastery_refresh_pending")
        name = "mastery_refresh_pending" if deferred else "mastery_refresh"
        refresh = getattr(actions, name)
        marks: dict[str, float] = {}

        def timed_refresh(**kwargs: Any) -> Any:
            marks["refresh_start"] = time.perf_counter()
            sampler.enter("mastery_refresh")
            try:
                return refresh(**kwargs)
            finally:
                marks["refresh_end"] = time.perf_counter()
                sampler.enter("after_refresh" if deferred else "import_commit")

        setattr(actions, name, timed_refresh)
        profile = _profile_install(lambda: sampler.stage)
        sampler.enter("import_rows")
        started = time.perf_counter()
        summary = actions.answers_import(course_slug=course, path=Path(path), format="csv")
        wall = time.perf_counter() - started
        committed = marks["refresh_start"] - started if deferred else wall
        result.update(
            summary=summary,
            wall_s=round(wall, 2),
            answers_per_s=round(summary["rows"] / wall),
            mastery_deferred=deferred,
            committed_s=round(committed, 2),
            committed_answers_per_s=round(summary["rows"] / committed),
            refresh_s=round(marks["refresh_end"] - marks["refresh_start"], 2),
            profile={label: round(seconds, 2) for label, seconds in profile.items()},
        )
    elif stage == "file":
        # The file's import alone (tutor.importing.file_import in its transaction, as answers_import runs it),
        # without the mastery refresh that follows the commit: the import rate and memory bound.
        from django.db import transaction

        import tutor.importing as importing

        profile = _profile_install(lambda: sampler.stage)
        backend = connection.connection.info.backend_pid
        sampler.enter("import_rows")
        started, cpu, database_cpu = time.perf_counter(), time.process_time(), _process_cpu(backend)
        with transaction.atomic():
            summary, _ = importing.file_import(course_slug=course, path=Path(path), format="csv")
        wall = time.perf_counter() - started
        database_cpu = _process_cpu(backend) - database_cpu
        result.update(
            summary=summary,
            wall_s=round(wall, 2),
            answers_per_s=round(summary["rows"] / wall),
            committed_s=round(wall, 2),
            committed_answers_per_s=round(summary["rows"] / wall),
            python_cpu_s=round(time.process_time() - cpu, 2),
            database_cpu_s=round(database_cpu, 2) if database_cpu == database_cpu else None,
            profile={label: round(seconds, 2) for label, seconds in profile.items()},
        )
    elif stage == "fit":
        import tracing.services as services
        from curriculum.models import Course
        from tutor.actions import fit_start

        load, recompute = services.interactions_for_fit, services.mastery_recompute
        before_load: dict[str, float] = {}

        def timed_load(**kwargs: Any):
            sampler.enter("load")
            before_load["rss"] = sampler.rss_mb()
            data = load(**kwargs)
            before_load["after"] = sampler.rss_mb()
            before_load["rows"] = data.n_rows
            sampler.enter("em_and_evaluation")
            return data

        def timed_recompute(**kwargs: Any) -> int:
            sampler.enter("mastery_recompute")
            try:
                return recompute(**kwargs)
            finally:
                sampler.enter("activate_commit")

        services.interactions_for_fit, services.mastery_recompute = timed_load, timed_recompute
        sampler.enter("fit_start")
        started = time.perf_counter()
        fit = fit_start(course=Course.objects.get(slug=course), kind="bkt", params={}, inline=True)
        wall = time.perf_counter() - started
        rows = before_load.get("rows", 0)
        result.update(
            status=fit.status,
            error=fit.error,
            timings=fit.timings,
            wall_s=round(wall, 2),
            answers=rows,
            load_bytes_per_answer=round(
                (sampler.peaks.get("load", 0) - before_load.get("rss", 0)) * 2**20 / max(rows, 1), 1
            ),
            kept_bytes_per_answer=round(
                (before_load.get("after", 0) - before_load.get("rss", 0)) * 2**20 / max(rows, 1), 1
            ),
        )
    connection.close()
    result["stages"] = sampler.stop()
    result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return result


def stage_run(stage: str, *, code: Path, url: str, course: str, path: Path) -> dict[str, Any]:
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "DJANGO_DEBUG": os.environ.get("DJANGO_DEBUG", "false"),
        "DJANGO_SECRET_KEY": "bench-only-" + "x" * 50,
        "ARTIFACT_ROOT": str(REPO / ".bench" / "artifacts"),
        "TUTOR_ARTIFACT_ROOT": str(REPO / ".bench" / "artifacts"),
    }
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--child",
        stage,
        "--course",
        course,
        "--file",
        str(path),
        "--code",
        str(code),
    ]
    done = subprocess.run(command, cwd=code, env=env, capture_output=True, text=True)
    if done.returncode:
        sys.stderr.write(done.stderr[-4000:])
        raise SystemExit(f"stage {stage} failed ({done.returncode})")
    return json.loads(done.stdout.strip().splitlines()[-1])


BEGIN, END = "<!-- scale-import -->", "<!-- /scale-import -->"
"""README's block that ``--render`` rewrites from the import runs' JSON files."""


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f} s"


def import_table(runs: list[dict[str, Any]]) -> str:
    """A Markdown table of import runs (each the JSON ``main`` writes): one column per run, in the order given."""

    def label(run: dict[str, Any]) -> str:
        code = "old (6b52670)" if Path(run["code"]).name == "base" else "new"
        note = f" ({run['note']})" if run.get("note") else ""
        return f"{code}, {run['answers'] / 1e6:g}M{note}"

    def row(name: str, cell: Any) -> str:
        return f"| {name} | " + " | ".join(cell(run) for run in runs) + " |"

    def part(*names: str) -> Any:
        def cell(run: dict[str, Any]) -> str:
            profile = run["stages"]["import"].get("profile", {})
            found = [profile[name] for name in names if name in profile]
            return _seconds(sum(found)) if found else "-"

        return cell

    def imported(run: dict[str, Any]) -> dict[str, Any]:
        return dict(run["stages"]["import"])

    def peak(stage: str) -> Any:
        def cell(run: dict[str, Any]) -> str:
            outcome = run["stages"].get(stage)
            if outcome is None:
                return "-"
            return f"{outcome['peak_rss_mb']:,.0f} MiB ({outcome['peak_bytes_per_answer']:,.0f} B/answer)"

        return cell

    def load(run: dict[str, Any]) -> str:
        return f"{run['load_before'][0]:.1f} / {run['load_after'][0]:.1f}"

    def committed(run: dict[str, Any]) -> str:
        outcome = imported(run)
        seconds = outcome.get("committed_s", outcome["wall_s"])
        return f"**{seconds:,.1f} s ({run['answers'] / seconds:,.0f}/s)**"

    def refresh(run: dict[str, Any]) -> str:
        outcome = imported(run)
        where = "after the commit" if outcome.get("mastery_deferred") else "in the transaction"
        seconds = outcome.get("refresh_s", outcome["stages"].get("mastery_refresh", {}).get("s"))
        return f"{_seconds(seconds)} ({where})"

    def whole(run: dict[str, Any]) -> str:
        outcome = imported(run)
        return f"{outcome['wall_s']:,.1f} s ({outcome['answers_per_s']:,}/s)"

    def reimport(run: dict[str, Any]) -> str:
        outcome = run["stages"].get("reimport")
        if outcome is None:
            return "-"
        return f"{outcome['wall_s']:,.1f} s, {outcome['summary']['created']} added"

    return "\n".join(
        [
            "| | " + " | ".join(label(run) for run in runs) + " |",
            "|---|" + "---|" * len(runs),
            row("load average at start / end", load),
            row("answers committed (answers/s)", committed),
            row("- waiting for the parsed file (parse and check)", part("parse_wait")),
            row("- COPY into the staging table", part("copy")),
            row("- insert (learners, answers, the chunk's sums)", part("insert")),
            row("- references locked set-wise", part("references_lock")),
            row("- the file's sums added", part("sums_add")),
            row("- commit (deferred foreign-key checks)", part("commit")),
            row("- the item and day sums folded (after the commit)", part("sums_fold")),
            row("mastery refresh", refresh),
            row("- its batches' commits", part("refresh_commits")),
            row("import with the refresh (answers/s)", whole),
            row("import: peak RSS", peak("import")),
            row("re-import of the same file", reimport),
            row("re-import: peak RSS", peak("reimport")),
        ]
    )


FILE_BEGIN, FILE_END = "<!-- scale-import-file -->", "<!-- /scale-import-file -->"
"""README's block of the runs of the ``file`` stage (the import alone), which ``--render`` rewrites too."""


def file_table(runs: list[dict[str, Any]]) -> str:
    """A Markdown table of ``file`` stage runs (the import alone): one column per run, in the order given."""

    def label(run: dict[str, Any]) -> str:
        code = "old" if Path(run["code"]).name == "base" else "new"
        commit = f" ({run['commit']})" if run.get("commit") else ""
        note = f", {run['note']}" if run.get("note") else ""
        return f"{code}{commit}, {run['answers'] / 1e6:g}M{note}"

    def stage(run: dict[str, Any]) -> dict[str, Any]:
        return dict(run["stages"]["file"])

    def row(name: str, cell: Any) -> str:
        return f"| {name} | " + " | ".join(cell(run) for run in runs) + " |"

    def part(name: str) -> Any:
        return lambda run: _seconds(stage(run)["profile"].get(name))

    def cpu(name: str) -> Any:
        return lambda run: _seconds(stage(run).get(name))

    def rate(run: dict[str, Any]) -> str:
        outcome = stage(run)
        return f"**{outcome['wall_s']:,.1f} s ({outcome['answers_per_s']:,}/s)**"

    def total(run: dict[str, Any]) -> str:
        outcome = stage(run)
        seconds = outcome["python_cpu_s"] + (outcome.get("database_cpu_s") or 0.0)
        return f"{seconds:,.1f} s ({1e6 * seconds / run['answers']:,.1f} µs/answer)"

    return "\n".join(
        [
            "| | " + " | ".join(label(run) for run in runs) + " |",
            "|---|" + "---|" * len(runs),
            row("load average at start / end", lambda run: f"{run['load_before'][0]:.1f} / {run['load_after'][0]:.1f}"),
            row("file imported and committed (answers/s)", rate),
            row("- waiting for the parsed file", part("parse_wait")),
            row("- COPY into the staging table", part("copy")),
            row("- the lines checked and converted in SQL", part("lines_check")),
            row("- insert (learners, answers, the chunk's sums)", part("insert")),
            row("- of which the references found and locked", part("references_lock")),
            row("- the file's sums added", part("sums_add")),
            row("- commit", part("commit")),
            row("CPU: the importing process (parse and check)", cpu("python_cpu_s")),
            row("CPU: its database backend (COPY, insert, indexes)", cpu("database_cpu_s")),
            row("CPU: both", total),
            row("peak RSS", lambda run: f"{stage(run)['peak_rss_mb']:,.0f} MiB"),
        ]
    )


def _sources(files: list[Path]) -> str:
    return ", ".join(f"`{path.relative_to(REPO) if path.is_relative_to(REPO) else path}`" for path in files)


def readme_render(files: list[Path]) -> None:
    """Rewrite README's import blocks from these JSON files (one column each): the runs of the ``import``
    stage in one table, those of the ``file`` stage in another."""
    sys.path.insert(0, str(REPO))
    from bench.common import block_replace

    readme = REPO / "README.md"
    # A file named scale-import-<size>-<code>-<words>.json gets its words in its column's head.
    every = [{**json.loads(path.read_text()), "note": " ".join(path.stem.split("-")[4:])} for path in files]
    alone = [run for run in every if "file" in run["stages"]]
    if alone:
        body = "\n\n".join([file_table(alone), f"(From {_sources([p for p, r in zip(files, every) if r in alone])}.)"])
        text = readme.read_text()
        readme.write_text(block_replace(text, FILE_BEGIN, FILE_END, f"{FILE_BEGIN}\n{body}\n{FILE_END}", source=readme))
    runs = [run for run in every if "import" in run["stages"]]
    if not runs:
        return
    pairs = []
    for size in sorted({run["answers"] for run in runs}):
        old = [run for run in runs if run["answers"] == size and Path(run["code"]).name == "base"]
        new = [run for run in runs if run["answers"] == size and Path(run["code"]).name != "base"]
        if old and new:
            before, after = old[0]["stages"]["import"], new[0]["stages"]["import"]
            committed = before.get("committed_s", before["wall_s"]), after["committed_s"]
            pairs.append(
                f"At {size / 1e6:g}M answers the new code committed the file in {committed[1]:,.1f} s against "
                f"{committed[0]:,.1f} s (old / new {committed[0] / committed[1]:.2f}), and finished with its "
                f"mastery refresh in {after['wall_s']:,.1f} s against {before['wall_s']:,.1f} s "
                f"(old / new {before['wall_s'] / after['wall_s']:.2f})."
            )
    body = "\n\n".join(
        [import_table(runs), *pairs, f"(From {_sources([p for p, r in zip(files, every) if r in runs])}.)"]
    )
    readme.write_text(block_replace(readme.read_text(), BEGIN, END, f"{BEGIN}\n{body}\n{END}", source=readme))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--learners", type=int, default=40_000)
    parser.add_argument("--answers", type=int, default=25, help="answers per learner")
    parser.add_argument("--items", type=int, default=500)
    parser.add_argument("--skills", type=int, default=50)
    parser.add_argument("--database", default="h_scale_bench")
    parser.add_argument("--code", type=Path, default=REPO, help="the checkout whose code is measured")
    parser.add_argument("--stages", default="import,reimport,fit")
    parser.add_argument("--commit", help="the commit --code was taken from, recorded in the JSON")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--course", default="scale", help=argparse.SUPPRESS)
    parser.add_argument("--file", help=argparse.SUPPRESS)
    parser.add_argument("--render", type=Path, nargs="+", help="rewrite README's import table from these JSON files")
    args = parser.parse_args()
    if args.render:
        readme_render([path.resolve() for path in args.render])
        return
    if args.child:
        sys.path.insert(0, str(args.code.resolve()))
        print(json.dumps(child(args.child, args.course, args.file)))
        return
    sys.path.insert(0, str(REPO))
    from bench.common import database_fresh

    folder = REPO / ".bench"
    folder.mkdir(exist_ok=True)
    path = folder / f"scale-{args.learners}x{args.answers}-{args.items}i-{args.skills}s.csv"
    generated = None
    if not path.exists():
        started = time.perf_counter()
        course_generate(path, learners=args.learners, answers=args.answers, items=args.items, skills=args.skills)
        generated = round(time.perf_counter() - started, 1)
    base = os.environ.get("BENCH_POSTGRES", "postgres://postgres@127.0.0.1:5432")
    url = database_fresh(base, args.database)
    code = args.code.resolve()
    env = {**os.environ, "DATABASE_URL": url, "DJANGO_SECRET_KEY": "bench-only-" + "x" * 50}
    subprocess.run([sys.executable, "manage.py", "migrate", "--no-input", "-v0"], cwd=code, env=env, check=True)
    answers = args.learners * args.answers
    result: dict[str, Any] = {
        "bench": "scale",
        "code": str(code),
        "commit": args.commit,
        "learners": args.learners,
        "answers_per_learner": args.answers,
        "answers": answers,
        "items": args.items,
        "skills": args.skills,
        "file": str(path),
        "file_mb": round(path.stat().st_size / 2**20, 1),
        "generate_s": generated,
        "load_before": os.getloadavg(),
        "stages": {},
    }
    for stage in args.stages.split(","):
        outcome = stage_run(stage, code=code, url=url, course="scale", path=path)
        outcome["peak_bytes_per_answer"] = round(outcome["peak_rss_mb"] * 2**20 / answers, 1)
        result["stages"][stage] = outcome
        print(f"{stage}: {outcome.get('wall_s')} s, peak {outcome['peak_rss_mb']} MB", file=sys.stderr)
    result["load_after"] = os.getloadavg()
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
