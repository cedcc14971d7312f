"""Shared bench helpers: where the datasets are, peak memory, JSON output."""

from __future__ import annotations

import json
import multiprocessing
import os
import re
import resource
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
DATASETS = Path(os.environ.get("KT_DATASETS", REPO.parent / "shared" / "datasets"))


def dataset_path(*parts: str) -> Path:
    """A file under the datasets folder; exits with a clear message when the data is absent."""
    path = DATASETS.joinpath(*parts)
    if not path.exists():
        sys.exit(f"dataset file {path} not found: set KT_DATASETS to the folder holding the shared datasets")
    return path


def peak_rss_mb(children: bool = False) -> float:
    who = resource.RUSAGE_CHILDREN if children else resource.RUSAGE_SELF
    return round(resource.getrusage(who).ru_maxrss / 1024, 1)


def emit(result: dict[str, Any], out: Path | None = None) -> None:
    """``result`` as JSON on stdout, and into ``out`` too where one is given."""
    text = json.dumps(result, indent=2)
    sys.stdout.write(text + "\n")
    if out is not None:
        out.write_text(text + "\n")


def postgres(url: str, sql: str) -> list[tuple]:
    """Run one statement on PostgreSQL outside any transaction; the rows it returns, if any."""
    import psycopg

    with psycopg.connect(url, autocommit=True, connect_timeout=5) as connection:
        cursor = connection.execute(sql)
        return cursor.fetchall() if cursor.description else []


def database_fresh(base: str, name: str) -> str:
    """Drop and create database ``name`` on the server at ``base``; its URL. Exits if PostgreSQL is unreachable."""
    if not name.replace("_", "").isalnum():
        sys.exit(f"database name {name!r} must be a plain identifier")
    try:
        postgres(f"{base}/postgres", f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        postgres(f"{base}/postgres", f"CREATE DATABASE {name}")
    except Exception as error:  # noqa: BLE001 - any failure to reach PostgreSQL ends the bench with its reason
        sys.exit(f"PostgreSQL at {base} is not reachable ({error}); set BENCH_POSTGRES")
    return f"{base}/{name}"


def in_child(function: Callable[..., Any], *args: Any) -> Any:
    """``function(*args)`` in a forked process: pyro's global state, torch's threads and the peak memory
    of a fit stay there; its (picklable) result comes back."""
    with multiprocessing.get_context("fork").Pool(1) as pool:
        return pool.apply(function, args)


def block_replace(text: str, begin: str, end: str, block: str, *, source: Path) -> str:
    """``text`` with its span from ``begin`` through ``end`` (the first) replaced by ``block``, which
    carries the markers itself; exits when ``source`` (the file ``text`` came from) has no such span."""
    pattern = re.compile(re.escape(begin) + ".*?" + re.escape(end), re.DOTALL)
    if not pattern.search(text):
        sys.exit(f"{source} has no {begin} ... {end} block to rewrite")
    return pattern.sub(lambda _: block, text, count=1)
