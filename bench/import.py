"""Import assist2009_updated train+test (4,151 learners, 325,637 answers) and time it.

Usage: DATABASE_URL=postgres://postgres@127.0.0.1:5432/test python bench/import.py
Runs in a fresh database named by BENCH_DATABASE (default kt_bench_import), created
and dropped on PostgreSQL; prints JSON with wall time, rows per second and peak memory.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import dataset_path, emit, peak_rss_mb  # noqa: E402


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tutor.settings")
    files = [dataset_path("assist2009_updated", f"assist2009_updated_{part}.csv") for part in ("train", "test")]
    import django

    django.setup()
    from django.db import connection
    from django.test.utils import setup_databases, teardown_databases

    # A throwaway test database, so the bench never touches real data.
    old = setup_databases(verbosity=0, interactive=False)
    try:
        from tutor.actions import answers_import
        from tutor.models import Interaction

        started = time.perf_counter()
        per_file = {}
        for path in files:
            step = time.perf_counter()
            summary = answers_import(course_slug="assist2009", path=path, format="dkvmn")
            per_file[path.name] = {**summary, "seconds": round(time.perf_counter() - step, 2)}
        wall = time.perf_counter() - started
        stored = Interaction.objects.count()
        step = time.perf_counter()
        again = answers_import(course_slug="assist2009", path=files[0], format="dkvmn")
        reimport = time.perf_counter() - step
        emit(
            {
                "bench": "import",
                "database": connection.vendor,
                "files": per_file,
                "interactions_stored": stored,
                "wall_s": round(wall, 2),
                "rows_per_s": round(stored / wall),
                "peak_rss_mb": peak_rss_mb(),
                "reimport_train": {
                    "created": again["created"],
                    "duplicates": again["duplicates"],
                    "seconds": round(reimport, 2),
                },
                "targets": {"wall_s": 20, "peak_rss_mb": 1024},
            }
        )
    finally:
        teardown_databases(old, verbosity=0)


if __name__ == "__main__":
    main()
