"""Where the API's tail comes from while a fit runs: a trace beside bench/serving.py's load.

A thread samples ``pg_stat_activity`` every ``interval`` seconds on its own connection: the web's
backends (``application_name`` web, set through PGOPTIONS for gunicorn), the fit's (fit, the Celery
worker) and PostgreSQL's own writers (checkpointer, WAL writer, background writer), each with its wait
event (none: on CPU) and statement. Once a second it reads each process's CPU time and run-queue delay
(``/proc/PID/stat``, ``/proc/PID/schedstat``: time spent runnable but waiting for a core). ``mark()``
snapshots the counters (pg_stat_wal, pg_stat_bgwriter, /proc/diskstats, CPU and run delay per role);
``report(first, last)`` gives the differences and the samples between two marks. Slow statements
(PGOPTIONS ``log_min_duration_statement`` in the web's and the fit's sessions only: the shared
server's settings stay as they are) are read from the server's log where it is readable.

Cluster-wide counters (WAL, checkpoints, disk) include other databases' work on a shared server.
"""

from __future__ import annotations

import calendar
import os
import re
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

SAMPLE_SQL = (
    "SELECT pid, application_name, backend_type, state, wait_event_type, wait_event, "
    "EXTRACT(EPOCH FROM now() - query_start)::float8, left(regexp_replace(query, '\\s+', ' ', 'g'), 70) "
    "FROM pg_stat_activity WHERE (datname = current_database() AND pid <> pg_backend_pid()) "
    "OR backend_type IN ('checkpointer', 'walwriter', 'background writer')"
)
WAL_SQL = (
    "SELECT wal_records, wal_fpi, wal_bytes::int8, wal_buffers_full, wal_write, wal_sync, "
    "(pg_current_wal_lsn() - '0/0'::pg_lsn)::int8 FROM pg_stat_wal"
)
BGWRITER_SQL = (
    "SELECT checkpoints_timed, checkpoints_req, checkpoint_write_time, checkpoint_sync_time, buffers_checkpoint, "
    "buffers_clean, buffers_backend, buffers_backend_fsync, buffers_alloc FROM pg_stat_bgwriter"
)
WAL_FIELDS = ("wal_records", "wal_fpi", "wal_bytes", "wal_buffers_full", "wal_write", "wal_sync", "lsn_bytes")
BGWRITER_FIELDS = (
    "checkpoints_timed",
    "checkpoints_req",
    "checkpoint_write_ms",
    "checkpoint_sync_ms",
    "buffers_checkpoint",
    "buffers_clean",
    "buffers_backend",
    "buffers_backend_fsync",
    "buffers_alloc",
)
AUX = {"checkpointer": "checkpointer", "walwriter": "walwriter", "background writer": "bgwriter"}
SLOW_MS = 50.0
"""A web statement running longer than this when sampled counts as a stall sample."""


def _role(application: str, backend_type: str) -> str:
    if backend_type in AUX:
        return AUX[backend_type]
    return application if application in ("web", "fit") else "other"


def _proc_times(pid: int) -> tuple[float, float] | None:
    """(CPU seconds, seconds runnable but waiting for a core) of a process, or None once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        waited = int(Path(f"/proc/{pid}/schedstat").read_text().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"), waited


def _descendants(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        for task in Path(f"/proc/{current}/task").glob("*"):
            try:
                todo.extend(int(child) for child in (task / "children").read_text().split())
            except OSError:
                pass
    return found


def _disk() -> dict[str, float]:
    """Sectors read and written and ms busy, summed over whole disks (not partitions)."""
    totals = {"read_mb": 0.0, "written_mb": 0.0, "busy_ms": 0.0, "weighted_ms": 0.0}
    try:
        lines = Path("/proc/diskstats").read_text().splitlines()
    except OSError:
        return totals
    for line in lines:
        fields = line.split()
        name = fields[2]
        if re.fullmatch(r"(vd|sd|xvd)[a-z]+|nvme\d+n\d+", name):
            totals["read_mb"] += int(fields[5]) * 512 / 2**20
            totals["written_mb"] += int(fields[9]) * 512 / 2**20
            totals["busy_ms"] += int(fields[12])
            totals["weighted_ms"] += int(fields[13])
    return totals


class Trace:
    """Samples on a thread from ``start()`` to ``stop()``; ``processes`` maps a role to a function giving
    its pids now (gunicorn's workers, the Celery worker's processes, the load generator)."""

    def __init__(self, url: str, processes: dict[str, Any], *, interval: float = 0.05, log: Path | None = None) -> None:
        self.url, self.processes, self.interval, self.log = url, processes, interval, log
        self.samples: list[tuple[float, list[tuple]]] = []
        self.times: dict[int, tuple[str, float, float]] = {}  # pid -> role, CPU s, run delay s (last read)
        self.roles: dict[int, str] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._log_offset = self._log_size()

    def _log_size(self) -> int:
        try:
            return self.log.stat().st_size if self.log else 0
        except OSError:
            return 0

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        import psycopg

        with psycopg.connect(self.url, autocommit=True, connect_timeout=5) as connection:
            connection.execute("SET application_name = 'trace'")
            last_cpu = 0.0
            while not self._stop.is_set():
                began = time.time()
                rows = connection.execute(SAMPLE_SQL).fetchall()
                kept = []
                for pid, application, backend_type, state, wait_type, wait, running, query in rows:
                    role = _role(application or "", backend_type or "")
                    self.roles[pid] = role
                    if role == "other" or (role in ("web", "fit") and state != "active"):
                        continue
                    kept.append((role, pid, f"{wait_type}:{wait}" if wait else "CPU", running or 0.0, query or ""))
                self.samples.append((began, kept))
                if began - last_cpu >= 1.0:
                    self._read_times()
                    last_cpu = began
                self._stop.wait(max(0.0, self.interval - (time.time() - began)))

    def _read_times(self) -> None:
        pids = {pid: role for pid, role in self.roles.items() if role != "other"}
        for role, source in self.processes.items():
            for pid in source():
                pids[pid] = role
        for pid, role in pids.items():
            times = _proc_times(pid)
            if times is not None:
                self.times[pid] = (role, *times)

    def mark(self) -> dict[str, Any]:
        """The counters now (cluster-wide ones included), and the time."""
        import psycopg

        self._read_times()
        with psycopg.connect(self.url, autocommit=True, connect_timeout=5) as connection:
            wal = dict(zip(WAL_FIELDS, connection.execute(WAL_SQL).fetchone() or ()))
            bgwriter = dict(zip(BGWRITER_FIELDS, connection.execute(BGWRITER_SQL).fetchone() or ()))
        return {
            "t": time.time(),
            "wal": wal,
            "bgwriter": bgwriter,
            "disk": _disk(),
            "times": dict(self.times),
            "loadavg": os.getloadavg(),
        }

    def report(self, first: dict[str, Any], last: dict[str, Any], load: dict[str, Any] | None = None) -> dict[str, Any]:
        """What happened between two marks: counters' differences, CPU and run delay per role, the web's
        and the fit's wait events, and the seconds in which the web stalled (with what the fit ran then)."""
        seconds = last["t"] - first["t"]
        cpu: Counter[str] = Counter()
        delay: Counter[str] = Counter()
        for pid, (role, used, waited) in last["times"].items():
            _, used_before, waited_before = first["times"].get(pid, (role, 0.0, 0.0))
            cpu[role] += used - used_before
            delay[role] += waited - waited_before
        samples = [(t, rows) for t, rows in self.samples if first["t"] <= t < last["t"]]
        waits: dict[str, Counter[str]] = {role: Counter() for role in ("web", "fit", *AUX.values())}
        statements: Counter[str] = Counter()
        stalled: dict[int, dict[str, Any]] = {}
        for t, rows in samples:
            fit_now = [query for role, _, _, _, query in rows if role == "fit"]
            for role, _, wait, running, query in rows:
                waits[role][wait] += 1
                if role == "fit":
                    statements[query[:50]] += 1
                if role == "web" and running * 1000 > SLOW_MS:
                    second = stalled.setdefault(
                        int(t - first["t"]), {"samples": 0, "waits": Counter(), "fit": Counter()}
                    )
                    second["samples"] += 1
                    second["waits"][f"{wait} {query[:40]}"] += 1
                    second["fit"].update(query[:40] for query in fit_now)
        wal = {key: last["wal"][key] - first["wal"][key] for key in WAL_FIELDS}
        report: dict[str, Any] = {
            "seconds": round(seconds, 1),
            "samples": len(samples),
            "load_average": [round(x, 2) for x in last["loadavg"]],
            "cpu_cores": {role: round(value / seconds, 3) for role, value in sorted(cpu.items())},
            "run_delay_ms_per_s": {role: round(1000 * value / seconds, 1) for role, value in sorted(delay.items())},
            "wal_mb_per_s": round(wal["lsn_bytes"] / 2**20 / seconds, 2),
            "wal": {**wal, "wal_bytes_mb": round(wal["wal_bytes"] / 2**20, 1)},
            "checkpointer": {key: last["bgwriter"][key] - first["bgwriter"][key] for key in BGWRITER_FIELDS},
            "disk": {key: round(last["disk"][key] - first["disk"][key], 1) for key in last["disk"]},
            "waits": {
                role: {wait: round(count / max(len(samples), 1), 3) for wait, count in counter.most_common(8)}
                for role, counter in waits.items()
                if counter
            },
            "fit_statements": {
                query: round(count / max(len(samples), 1), 3) for query, count in statements.most_common(6)
            },
            "web_stalled_seconds": {
                second: {
                    "samples": value["samples"],
                    "waits": dict(value["waits"].most_common(3)),
                    "fit": dict(value["fit"].most_common(2)),
                }
                for second, value in sorted(stalled.items())
            },
        }
        if load is not None and "p99_ms_per_s" in load:
            offset = load["started_unix"] - first["t"]
            report["load_offset_s"] = round(offset, 2)
        return report

    def slow_statements(self, database: str, since: float, until: float) -> dict[str, Any]:
        """The server log's slow-statement lines of ``database`` (PGOPTIONS in the web's and the fit's
        sessions) between two times, grouped by role (from the pids sampled) and statement."""
        if self.log is None:
            return {}
        try:
            with self.log.open("rb") as handle:
                handle.seek(self._log_offset)
                text = handle.read().decode("utf-8", "replace")
        except OSError as error:
            return {"unreadable": str(error)}
        pattern = re.compile(
            r"^(\S+ \S+) \S+ \[(\d+)\] \S+@"
            + re.escape(database)
            + r" LOG:  duration: ([\d.]+) ms  (?:statement|execute [^:]*): (.*)$"
        )
        found: dict[str, list[tuple[float, float, str]]] = {}
        for line in text.splitlines():
            match = pattern.match(line)
            if not match:
                continue
            whole, _, fraction = match[1].partition(".")  # the server logs UTC (log_timezone)
            moment = calendar.timegm(time.strptime(whole, "%Y-%m-%d %H:%M:%S")) + float("0." + (fraction or "0"))
            if not since <= moment <= until:
                continue
            role = self.roles.get(int(match[2]), "other")
            found.setdefault(role, []).append((round(moment - since, 2), float(match[3]), match[4][:60]))
        return {
            role: {
                "count": len(lines),
                "total_ms": round(sum(ms for _, ms, _ in lines)),
                "by_statement": dict(Counter(re.sub(r"\d+", "N", q)[:45] for _, _, q in lines).most_common(6)),
                "longest": sorted(lines, key=lambda line: -line[1])[:8],
            }
            for role, lines in found.items()
        }
