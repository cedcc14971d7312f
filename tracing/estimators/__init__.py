"""Estimator registry: kind -> dotted path, and each kind's hyper-parameters. Imports neither torch nor pyro."""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

from tracing.estimators.hyper import BY_KIND, HyperParameters

if TYPE_CHECKING:
    from tracing.estimators.base import Estimator

ESTIMATORS: dict[str, str] = {
    "rate": "tracing.estimators.baselines.SkillRate",
    "hbkt": "tracing.estimators.hbkt.HierarchicalBKT",
    "psikt": "tracing.estimators.psikt.PsiKT",
    "bkt": "tracing.estimators.bkt.BKT",
    "dkt": "tracing.estimators.dkt.DKT",
    "cakt": "tracing.estimators.cakt.CAKT",
    "sakt": "tracing.estimators.sakt.SAKT",
}


def import_string(dotted_path: str) -> type:
    module_path, _, name = dotted_path.rpartition(".")
    imported: type = getattr(import_module(module_path), name)
    return imported


def get_estimator(kind: str) -> type[Estimator]:
    """The estimator class registered as ``kind``; KeyError names the known kinds."""
    try:
        path = ESTIMATORS[kind]
    except KeyError:
        raise KeyError(f"unknown model {kind!r}; known: {', '.join(sorted(ESTIMATORS))}") from None
    return import_string(path)


def estimator_params(kind: str) -> HyperParameters:
    """The hyper-parameters of ``kind`` (its class's ``PARAMS``): for the built-in kinds without importing
    the estimator (and torch); a kind registered from elsewhere is imported. KeyError names the known kinds."""
    if kind not in ESTIMATORS:
        raise KeyError(f"unknown model {kind!r}; known: {', '.join(sorted(ESTIMATORS))}")
    if kind in BY_KIND and ESTIMATORS[kind].startswith("tracing.estimators."):
        return BY_KIND[kind]
    return get_estimator(kind).PARAMS
