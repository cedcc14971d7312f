"""bench/serving.py's README table and bench/serving_trace.py's reading of the server's log."""

import calendar
import time

from bench.serving import render
from bench.serving_trace import Trace


def _run(p99: float) -> dict:
    endpoint = {"p50_ms": 5.0, "p95_ms": 9.0, "p99_ms": p99, "max_ms": p99 + 1}
    return {
        "interactions": endpoint,
        "next": endpoint,
        "errors": 0,
        "integrity": {"lost": 0},
        "trace": {
            "load_average": [1.5, 1.0, 1.0],
            "cpu_cores": {"fit": 0.5, "worker": 0.1, "gunicorn": 0.7},
            "run_delay_ms_per_s": {"gunicorn": 40.0},
            "wal_mb_per_s": 12.5,
            "checkpointer": {"checkpoints_req": 1, "checkpoints_timed": 0},
            "waits": {"web": {"IO:WALSync": 0.2, "CPU": 0.1}},
        },
    }


def test_the_table_has_a_row_for_each_baseline_and_slice_and_the_fit_timings():
    result = {
        "started": "2026-12-06 18:00:00 UTC",
        "command": "--rate 200",
        "baseline": _run(12.0),
        "variants": [
            {
                "name": "defaults",
                "env": {},
                "during_fit": [
                    {"fit_before": {"stage": ""}, "fit_after": {"stage": "activating"}, **_run(40.0)},
                ],
                "fit": {"status": "succeeded", "timings": {"total_s": 100.0, "load_s": 5.0, "activate_s": 90.0}},
            },
            {
                "name": "unpaced",
                "env": {"TRACING_RECOMPUTE_PAUSE": "0"},
                "baseline": _run(13.0),
                "during_fit": [],
                "fit": {"status": "failed", "timings": {}},
            },
        ],
    }
    table = render(result).splitlines()
    rows = [line for line in table if line.startswith("| ")]
    assert len(rows) == 1 + 5  # the header, then: baseline, a slice, timings; baseline, timings
    assert "defaults (the defaults): baseline, no fit" in rows[1] and "**12 / 12**" in rows[1]
    assert "queued -> activating" in rows[2] and "**40 / 40**" in rows[2] and "IO:WALSync 20%" in rows[2]
    assert "total 100 s, load 5.0 s, activation 90 s" in rows[3]
    assert "unpaced (TRACING_RECOMPUTE_PAUSE=0): baseline" in rows[4] and "fit failed" in rows[5]


def test_slow_statements_are_read_from_the_log_by_database_time_and_role(tmp_path):
    log = tmp_path / "postgresql.log"
    log.write_text("old line before the trace started\n")
    trace = Trace("postgres://unused", {}, log=log)
    trace.roles = {101: "web", 202: "fit"}
    lines = [
        "2026-12-06 18:00:01.250 UTC [101] postgres@h_serving_5m LOG:  duration: 31.5 ms  statement: COMMIT",
        "2026-12-06 18:00:02.000 UTC [202] postgres@h_serving_5m LOG:  duration: 900.0 ms  statement: INSERT INTO x",
        "2026-12-06 18:00:02.500 UTC [303] postgres@other_db LOG:  duration: 99.0 ms  statement: COMMIT",
        "2026-12-06 18:09:00.000 UTC [101] postgres@h_serving_5m LOG:  duration: 77.0 ms  statement: COMMIT",
    ]
    with log.open("a") as handle:
        handle.write("\n".join(lines) + "\n")
    since = calendar.timegm(time.strptime("2026-12-06 18:00:00", "%Y-%m-%d %H:%M:%S"))
    found = trace.slow_statements("h_serving_5m", since, since + 60)
    assert found["web"]["count"] == 1 and found["web"]["longest"] == [(1.25, 31.5, "COMMIT")]
    assert found["fit"]["total_ms"] == 900 and "other" not in found
