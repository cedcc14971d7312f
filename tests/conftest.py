"""Shared fixtures: fixed seeds, small real data slices."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(autouse=True)
def _seed() -> None:
    random.seed(0)
    np.random.seed(0)
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

    return tuple(load_dataset(FIXTURES / "assist2009_train_slice.csv", FIXTURES / "assist2009_test_slice.csv",
                              format="dkvmn"))


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
