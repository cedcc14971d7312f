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
