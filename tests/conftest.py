"""Shared fixtures: fixed seeds, small real data slices; how `make test` splits the suite over processes."""

from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import pytest

FIXTURES = Path(__file__).parent / "fixtures"
LIVE_WORKER = "live_worker"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--live-worker",
        action="store_true",
        help="run only the tests that use the Celery worker .ci/run starts (the second pass of `make test`)",
    )


def _xdist_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def _broker() -> bool:
    return bool(os.environ.get("CELERY_BROKER_URL"))


def pytest_configure(config: pytest.Config) -> None:
    if _xdist_worker(config):
        # A fit's artifact is named by the course and the fit's id, which each process's database hands
        # out alike: one folder per process, so that no process loads a model another one wrote.
        from django.conf import settings

        settings.ARTIFACT_ROOT = Path(settings.ARTIFACT_ROOT) / config.workerinput["workerid"]  # type: ignore[attr-defined]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under xdist, modules with slow tests first; the tests that use the shared Celery worker run in a pass
    of their own, in one process.

    `make test` gives each process a contiguous share of this order and lets one that runs out take tests
    from the end of another's (``--dist worksteal``): with the slow modules first, a module-scoped fixture
    (a fit, a chromium, a private PostgreSQL) is rarely built twice, and no process is left with a long
    module at the end while the others are done.

    The shared Celery worker reads the database ``test_<name>``; a pytest-xdist process works in
    ``test_<name>_gw<N>``, where that worker would not find what the test wrote. So where a broker is
    configured those tests are deselected under xdist, and ``--live-worker`` selects only them (`make test`
    runs both passes). Without a broker they stay in the first pass, which skips them with the reason.
    """
    if _xdist_worker(config):
        slow = {item.path for item in items if item.get_closest_marker("slow")}
        items.sort(key=lambda item: item.path not in slow)  # stable: each process collects the same order
    if config.getoption("live_worker"):
        keep = [item for item in items if LIVE_WORKER in getattr(item, "fixturenames", ())]
    elif _xdist_worker(config) and _broker():
        keep = [item for item in items if LIVE_WORKER not in getattr(item, "fixturenames", ())]
    else:
        return
    if len(keep) != len(items):
        kept = set(map(id, keep))
        config.hook.pytest_deselected(items=[item for item in items if id(item) not in kept])
        items[:] = keep


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    # PYTEST_ARGS may name tests none of which use the worker: then the second pass has nothing to do.
    if session.config.getoption("live_worker") and exitstatus == pytest.ExitCode.NO_TESTS_COLLECTED:
        session.exitstatus = pytest.ExitCode.OK


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    """Without a broker, the second pass of `make test` (``--live-worker``) has nothing to run.

    Under xdist, compile the BKT kernels into numba's cache before the processes start, once.
    Compiling takes about 40 s with an empty cache (a fresh clone); otherwise every process would
    compile them itself at its first fit, at the same time. With a warm cache this costs under a second.
    Runs before xdist starts its processes (its own hook is trylast).
    """
    config = session.config
    if config.getoption("live_worker") and not _broker():
        pytest.exit(
            "no CELERY_BROKER_URL: the tests that use a Celery worker were skipped in the first pass",
            returncode=pytest.ExitCode.OK,
        )
    if _xdist_worker(config) or not config.getoption("numprocesses", None) or config.option.collectonly:
        return
    bkt_kernels_warm()


def bkt_kernels_warm() -> None:
    """Fit and filter a tiny dataset, which compiles (or loads from numba's cache) every BKT kernel
    for the argument types a fit uses (``Dataset`` fixes them)."""
    from tracing.data import Dataset
    from tracing.estimators.bkt import BKT

    learners, items = 4, 2
    rng = np.random.default_rng(0)
    learner = np.repeat(np.arange(learners, dtype=np.int32), 6)
    data = Dataset(
        learner=learner,
        item=rng.integers(0, items, len(learner)).astype(np.int32),
        correct=(rng.random(len(learner)) < 0.6).astype(np.float32),
        timestamp=np.arange(len(learner), dtype=np.float64),
        q_matrix=np.eye(items, dtype=bool),
        item_ids=tuple(f"item{i}" for i in range(items)),
        skill_ids=tuple(f"skill{i}" for i in range(items)),
        learner_ids=tuple(f"learner{i}" for i in range(learners)),
        has_time=False,
    )
    BKT().fit(data).predict_proba(data)


@pytest.fixture(autouse=True)
def _seed() -> None:
    random.seed(0)
    np.random.seed(0)  # noqa: NPY002 - seeds the legacy global generator that libraries may still draw from
    try:
        import torch
    except ImportError:
        return
    torch.manual_seed(0)
    try:
        import pyro
    except ImportError:
        return
    pyro.set_rng_seed(0)
    pyro.clear_param_store()


@pytest.fixture(autouse=True)
def _exact_course_models():
    """Tests change a curriculum or fit and look at once: read the course signature on every call.
    (The product reuses it for TRACING_MODEL_RECHECK seconds; tests/tracing/test_model_cache.py covers that.)"""
    from django.conf import settings

    previous = settings.TRACING_MODEL_RECHECK
    settings.TRACING_MODEL_RECHECK = 0.0
    yield
    settings.TRACING_MODEL_RECHECK = previous


@pytest.fixture(scope="session")
def assist_slice():
    """(train, test) Datasets from the committed assist2009_updated slice (shared vocabulary)."""
    from tracing.formats import load_dataset

    return tuple(
        load_dataset(FIXTURES / "assist2009_train_slice.csv", FIXTURES / "assist2009_test_slice.csv", format="dkvmn")
    )


@pytest.fixture(scope="session")
def dbe_slice():
    """A Dataset of the committed DBE-KT22 slice (real timestamps, multi-skill questions)."""
    from tracing.formats import load_dataset

    return load_dataset(FIXTURES / "dbe_kt22" / "pyedmine_preprocessed" / "data.txt", format="dbe")[0]


@pytest.fixture(autouse=True)
def _celery_mode(request):
    """Tasks run in-process, except in tests marked ``services``, which go through the real broker."""
    from tutor.celery import app

    live = request.node.get_closest_marker("services") is not None
    previous = app.conf.task_always_eager
    app.conf.task_always_eager = not live
    yield
    app.conf.task_always_eager = previous


@pytest.fixture
def live_worker():
    """A Celery worker consuming from the real broker against the test database.

    Skipped (with the reason) unless DATABASE_URL names PostgreSQL and CELERY_BROKER_URL a broker;
    with REQUIRE_SERVICES=1 (CI) a missing worker fails instead.
    """
    import os

    from django.db import connection

    from tutor.celery import app

    problems = []
    if connection.vendor != "postgresql":
        problems.append("DATABASE_URL does not name PostgreSQL")
    if not os.environ.get("CELERY_BROKER_URL"):
        problems.append("CELERY_BROKER_URL is not set")
    if not problems and not app.control.ping(timeout=5.0):
        problems.append("no Celery worker answered a ping (start one: see .ci/run)")
    if problems:
        message = "needs PostgreSQL, Redis and a worker: " + "; ".join(problems)
        if os.environ.get("REQUIRE_SERVICES") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return app


@pytest.fixture(autouse=True)
def _fits_inline(settings):
    """Tests that start a fit read its result at once: without a broker, run it inside the call (the
    product runs it on a background thread; tests/tutor/test_fits.py covers that)."""
    settings.TRACING_FITS_INLINE = True


from tests.threads import postgresql  # noqa: E402,F401 - a fixture for every test module
