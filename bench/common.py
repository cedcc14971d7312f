"""Shared bench helpers: where the datasets are, peak memory, JSON output."""

from __future__ import annotations

import json
import os
import resource
import sys
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


def emit(result: dict[str, Any]) -> None:
    json.dump(result, sys.stdout, indent=2)
    sys.stdout.write("\n")
