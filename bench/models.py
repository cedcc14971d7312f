"""The model comparison, one protocol for every model: k folds by learner, intervals, calibration.

    .venv/bin/python bench/models.py --quick                      # a check in a few minutes
    nice -n 10 .venv/bin/python bench/models.py                   # the run README is rendered from
    .venv/bin/python bench/models.py --render                     # README's block from the JSON

Every dataset's learners (the DKVMN train and test files pooled) are cut into 5 folds by
learner (``tracing.evaluation.learner_folds``, seed 0); each fold is the test set once, the
other four the training set. Every model runs with its own registry defaults (one torch
thread): deep models stop early on a validation carve-out of the training learners (their
``validation_fraction``), BKT's EM stops on its tolerance, psikt runs its default SVI steps.
Item-level BKT (``bkt`` with ``multigs``, KT-IDEM) runs wherever a model has per-item
parameters (DBE-KT22). Each fold's predictions are kept under ``.bench/models/`` with a
manifest (``fold_manifest``: the model's kind and full effective parameters, seed, sample and
fold); a rerun reuses a fold only when its manifest is today's, so a changed default refits it
(``--refit`` refits regardless, after a change of a model's code). The JSON gives per protocol
and model: the mean and standard deviation of AUC and RMSE over folds, expected calibration
error and a reliability table of the pooled out-of-fold predictions, and for each declared
comparison a paired bootstrap 95% interval of the AUC and RMSE differences (learners
resampled, both models on the same draw).

A run merges into the JSON it writes (``report_merge``): the models it ran replace the same
models of that dataset and join the others, so ``--models cakt`` adds CAKT without re-running
the rest (whose per-fold predictions may be gone); a comparison needs both models in the same
run (their cached folds are read). ``--fresh`` replaces the file instead.

Protocols, never mixed in one comparison:

- ``next_step``: every row predicted from all of its learner's earlier rows (the service's
  path; deep models slide windows by half a window).
- ``chunked``: pyKT's evaluation: context restarts every 200 rows, pieces under 3 rows
  dropped, a piece's first row not scored.
- ``multistep``: each test learner's last 10 answers predicted from the rows before them,
  unseen (``tracing.evaluation.multistep_predict``); for psikt also after absorbing that
  history (``multistep_absorbed``).
- on assist2009_updated also ``next_step`` and ``chunked`` without the rows that the
  multi-skill expansion added (``expansion_rows``).

pyKT's own models (``pykt_akt``: pyKT's code from ``bench/setup_pykt.sh``'s venv, driven by
``bench/pykt_models.py`` at pyKT's defaults with its own early stopping) run only with ``--pykt``
or when named in ``--models``: on this bench's CPU one AKT fold takes hours
(``bench/pykt_models.py --cost`` measures it; README renders the figure). They predict under
pyKT's chunks only, so they join that protocol's tables and comparisons alone; where one ran,
README says whether our best model on the dataset reaches it, and by how much it falls short.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

from bench.common import REPO, block_replace, dataset_path
from tracing.data import Dataset, concat
from tracing.evaluation import (
    bootstrap_difference,
    calibration,
    chunked,
    learner_folds,
    mean_std,
    metrics,
    multistep_predict,
)
from tracing.formats import load_dataset

HORIZON = 10
FOLDS = 5
RESULTS = REPO / "bench" / "results" / "models.json"
QUICK_RESULTS = REPO / ".bench" / "models-quick.json"
README = REPO / "README.md"
BEGIN, END = "<!-- bench:models:begin -->", "<!-- bench:models:end -->"

# name -> (registry kind, parameters over its defaults). One torch thread each: the bench machine
# has two shared cores, and every model is timed under the same condition.
MODELS: dict[str, tuple[str, dict[str, Any]]] = {
    "bkt": ("bkt", {}),
    "bkt_item": ("bkt", {"multigs": True}),
    "dkt": ("dkt", {"threads": 1}),
    "psikt": ("psikt", {"threads": 1}),
    # The paper's dynamics (issue 17, item 1), beside the default; run by bench/psikt_dynamics.py.
    "psikt_ou": ("psikt", {"threads": 1, "dynamics": "ou"}),
    "hbkt": ("hbkt", {"threads": 1}),
    "sakt": ("sakt", {"threads": 1}),
    "cakt": ("cakt", {"threads": 1}),
    # CAKT's default until 2026-12-06, kept to show what its re-choice on validation changed.
    "cakt_decay05": ("cakt", {"threads": 1, "plateau_decay": 0.5}),
    # pyKT's own code (bench/pykt_models.py, its venv, its defaults): chunked protocol only.
    "pykt_akt": ("pykt", {}),
}
QUICK_PARAMS = {
    "dkt": {"max_epochs": 3},
    "sakt": {"max_epochs": 3},
    "cakt": {"max_epochs": 3},
    "cakt_decay05": {"max_epochs": 3},
    "psikt": {"steps": 20},
    "psikt_ou": {"steps": 20},
    "hbkt": {"steps": 20},
    "bkt": {"restarts": 2},
    "bkt_item": {"restarts": 2},
}
LABELS = {
    "bkt": "BKT (skill)",
    "bkt_item": "BKT, item-level (`multigs`, KT-IDEM)",
    "dkt": "DKT",
    "psikt": "psikt (PSI-KT-style)",
    "psikt_ou": "psikt, `dynamics` ou (the paper's OU dynamics)",
    "hbkt": "hierarchical BKT (`hbkt`)",
    "sakt": "SAKT",
    "cakt": "CAKT",
    "cakt_decay05": "CAKT, `plateau_decay` 0.5 (the old default)",
    "pykt_akt": "AKT (pyKT's code, 0.0.38)",
}

# name -> what it is, the models that run on it, the comparisons claimed, learners used in the full run
# (None: all). Sized so the full run ends in about an hour and a half on one shared core (DKT's
# 5 folds on all of DBE-KT22 take about 30 minutes there).
DATASETS: dict[str, dict[str, Any]] = {
    "dbe_kt22": {
        "what": "DBE-KT22, question level (212 questions, 93 concepts), real timestamps",
        "models": ["bkt", "bkt_item", "dkt", "psikt", "hbkt", "cakt", "sakt", "pykt_akt"],
        "learners": None,
        "comparisons": [
            ("psikt", "bkt_item"),
            ("psikt", "dkt"),
            ("bkt_item", "bkt"),
            ("dkt", "bkt_item"),
            ("psikt", "bkt"),
            ("hbkt", "bkt"),
            ("cakt", "dkt"),
            ("cakt", "bkt_item"),
            ("sakt", "dkt"),
            ("sakt", "bkt_item"),
            # The anchor our best models are meant to reach (pyKT's chunked protocol only).
            ("dkt", "pykt_akt"),
            ("bkt_item", "pykt_akt"),
            ("psikt", "pykt_akt"),
        ],
    },
    "assist2015": {
        "what": "ASSISTments 2015 (DKVMN files pooled), skill level (100 skills), no multi-skill rows",
        "models": ["bkt", "dkt", "sakt", "cakt", "cakt_decay05", "pykt_akt"],
        "learners": 1000,
        "comparisons": [
            ("dkt", "bkt"),
            ("cakt", "bkt"),
            ("cakt", "dkt"),
            ("sakt", "dkt"),
            ("cakt", "sakt"),
            ("cakt", "cakt_decay05"),
            ("cakt_decay05", "dkt"),
            ("bkt", "pykt_akt"),
            ("dkt", "pykt_akt"),
        ],
    },
    "assist2009_updated": {
        "what": "ASSISTments 2009 updated (DKVMN files pooled), skill level, carries the multi-skill expansion",
        "models": ["bkt", "dkt"],
        "learners": 1000,
        "comparisons": [("dkt", "bkt")],
    },
}


# ---------------------------------------------------------------- data


def dataset_load(name: str) -> Dataset:
    if name == "dbe_kt22":
        return load_dataset(dataset_path("dbe_kt22", "pyedmine_preprocessed", "data.txt"), format="dbe")[0]
    train, test = load_dataset(
        dataset_path(name, f"{name}_train.csv"), dataset_path(name, f"{name}_test.csv"), format="dkvmn"
    )
    # The two files number their learners alike: names made distinct before pooling.
    train = dataclasses.replace(train, learner_ids=tuple(f"train:{n}" for n in train.learner_ids))
    test = dataclasses.replace(test, learner_ids=tuple(f"test:{n}" for n in test.learner_ids))
    return concat(train, test)


def expansion_rows(data: Dataset, *, min_pairs: int = 20, agreement: float = 0.98) -> np.ndarray:
    """Rows that look added by a multi-skill expansion: a row whose skill differs from the row
    before it, where that ordered skill pair, adjacent anywhere in ``data``, carries the same
    correctness at least ``agreement`` of the time over at least ``min_pairs`` occurrences (one
    answer copied per skill agrees always; genuine neighbours on different skills agree about
    two times in three). Decided from the skills of adjacent rows, never from a row's own answer."""
    skill = data.primary_skill[data.item].astype(np.int64)
    same_learner = np.zeros(data.n_rows, dtype=bool)
    same_learner[1:] = data.learner[1:] == data.learner[:-1]
    candidate = np.zeros(data.n_rows, dtype=bool)
    candidate[1:] = same_learner[1:] & (skill[1:] != skill[:-1])
    rows = np.flatnonzero(candidate)
    pair = skill[rows - 1] * (int(skill.max()) + 1) + skill[rows]
    agree = (data.correct[rows] >= 0.5) == (data.correct[rows - 1] >= 0.5)
    _, inverse, counts = np.unique(pair, return_inverse=True, return_counts=True)
    rate = np.bincount(inverse, weights=agree) / counts
    expanded = (counts >= min_pairs) & (rate >= agreement)
    flags = np.zeros(data.n_rows, dtype=bool)
    flags[rows[expanded[inverse]]] = True
    return flags


def bench_sample(dataset: str, quick: bool) -> tuple[Dataset, np.ndarray | None, str, str | None]:
    """The learners a run uses: (their data, expansion flags per row on assist2009_updated, the
    key their cached folds are stored under, a description of the subsample or None for all)."""
    data = dataset_load(dataset)
    size = 200 if quick else DATASETS[dataset]["learners"]
    chosen = (
        np.arange(data.n_learners)
        if size is None or size >= data.n_learners
        else np.sort(np.random.default_rng(0).permutation(data.n_learners)[:size])
    )
    sample = data.subset(chosen)
    flags = None
    if dataset == "assist2009_updated":
        flags_all = expansion_rows(data)
        flags = np.concatenate([flags_all[data.rows(learner)] for learner in chosen])
    if len(chosen) == data.n_learners:
        return sample, flags, dataset, None
    # Cached folds are keyed by the sample too: another subsample size is another experiment.
    subsample = f"{len(chosen)} learners drawn at random (seed 0) of {data.n_learners}"
    return sample, flags, f"{dataset}-{len(chosen)}learners", subsample


# ---------------------------------------------------------------- one (dataset, model, fold)


def fold_run(
    data: Dataset,
    model: str,
    test_learners: np.ndarray,
    fold: int,
    quick: bool,
    override: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Fit on every learner outside the fold, predict the fold's learners under each protocol
    (``override``: parameters over the model's, for bench/choices.py's alternatives)."""
    from tracing.estimators import get_estimator

    kind, params = fold_params(model, quick, override)
    train_learners = np.setdiff1d(np.arange(data.n_learners), test_learners)
    train, test = data.subset(train_learners), data.subset(test_learners)
    if kind == "pykt":
        from bench import pykt_models

        folder = REPO / ".bench" / "pykt_folds" / f"{data.n_learners}learners-{data.n_rows}rows" / model / f"fold{fold}"
        outcome = pykt_models.fold_run(train, test, model, fold, folder, quick=quick)
        outcome["arrays"]["rows_learner"] = test_learners[test.learner]
        return outcome
    started = time.perf_counter()
    estimator: Any = get_estimator(kind)(**params).fit(train, seed=fold)  # psikt absorbs, deep ones log epochs
    fit_seconds = time.perf_counter() - started
    started = time.perf_counter()
    next_step = estimator.predict_proba(test)
    predict_seconds = time.perf_counter() - started
    pieces, piece_rows, scored = chunked(test)
    chunk_probability = estimator.predict_proba(pieces)
    answers, multistep = multistep_predict(estimator, test, horizon=HORIZON)
    long_enough = test_learners[test.lengths > HORIZON]
    arrays = {
        "rows_learner": test_learners[test.learner],
        "correct": test.correct.astype(np.float64),
        "next_step": next_step,
        "chunk_rows": piece_rows[scored],
        "chunked": chunk_probability[scored],
        "multistep_learner": np.repeat(long_enough, HORIZON),
        "multistep_correct": answers,
        "multistep": multistep,
    }
    if kind == "psikt":
        history = test.truncate(np.maximum(test.lengths - HORIZON, 0))
        estimator.absorb(history, seed=fold)
        arrays["multistep_absorbed"] = multistep_predict(estimator, test, horizon=HORIZON)[1]
    meta = {
        "fit_seconds": fit_seconds,
        "predict_seconds": predict_seconds,
        "params": params,
        "train_learners": int(train.n_learners),
        "test_learners": int(test.n_learners),
        "commit": _commit(),  # which code ran the fold: shown, not compared (see fold_manifest)
        "manifest": fold_manifest(data, model, test_learners, fold, quick, override),
    }
    history_log = getattr(estimator, "history", None)
    if history_log:
        meta.update(
            epochs=len(history_log),
            best_epoch=int(estimator.best_epoch),
            best_valid_auc=float(max(r.get("valid_auc", float("nan")) for r in history_log)),
        )
    return {"arrays": arrays, "meta": meta}


def fold_params(model: str, quick: bool, override: dict[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
    """The registry kind of ``model`` and the parameters the bench gives it (over its defaults)."""
    kind, params = MODELS[model]
    return kind, {**params, **(QUICK_PARAMS.get(model, {}) if quick else {}), **(override or {})}


def _digest(*parts: Any) -> str:
    import hashlib

    hasher = hashlib.sha256()
    for part in parts:
        hasher.update(np.ascontiguousarray(part).tobytes() if isinstance(part, np.ndarray) else repr(part).encode())
    return hasher.hexdigest()[:16]


def fold_manifest(
    data: Dataset,
    model: str,
    test_learners: np.ndarray,
    fold: int,
    quick: bool,
    override: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """What one fold's predictions depend on, checked when a cached fold is read: the model's kind
    and its full effective parameters (the registry's defaults of today filled in, so a changed
    default is a changed fold), the fit's seed, the sample (its learners, rows and answers) and the
    fold's test learners. The code itself is not in it (a refactor would void hours of folds):
    a change of a model's code that changes its predictions needs ``--refit``."""
    from tracing.estimators.hyper import BY_KIND

    kind, params = fold_params(model, quick, override)
    manifest = {
        "kind": kind,
        "params": BY_KIND[kind].check(params, owner=kind),
        "seed": fold,
        "quick": quick,
        "horizon": HORIZON,
        "sample": _digest(data.learner_ids, data.item_ids, data.learner, data.item, data.correct, data.timestamp),
        "rows": int(data.n_rows),
        "test_learners": _digest([data.learner_ids[int(i)] for i in test_learners]),
    }
    return json.loads(json.dumps(manifest))  # as it reads back from the fold's JSON


def fold_path(work: Path, dataset: str, model: str, fold: int) -> Path:
    return work / dataset / model / f"fold{fold}"


def fold_cached(work: Path, dataset: str, model: str, fold: int, manifest: dict[str, Any]) -> dict[str, Any] | None:
    """The fold stored under ``work`` if its manifest is ``manifest`` (``fold_manifest``); None when
    there is none or it was made otherwise (said on stderr: the caller fits it again)."""
    path = fold_path(work, dataset, model, fold)
    if not (path.with_suffix(".npz").exists() and path.with_suffix(".json").exists()):
        return None
    meta = json.loads(path.with_suffix(".json").read_text())
    stored = meta.get("manifest")
    if stored != manifest:
        if stored is None:
            why = "it has no manifest (made before folds carried one)"
        else:
            changed = sorted(key for key in {*stored, *manifest} if stored.get(key) != manifest.get(key))
            why = "; ".join(f"{key} was {stored.get(key)!r}, is now {manifest.get(key)!r}" for key in changed)
        print(f"cached {path} not reused: {why}", file=sys.stderr, flush=True)
        return None
    with np.load(path.with_suffix(".npz")) as arrays:
        return {"arrays": {key: arrays[key] for key in arrays.files}, "meta": meta}


def fold_store(work: Path, dataset: str, model: str, fold: int, outcome: dict[str, Any]) -> None:
    path = fold_path(work, dataset, model, fold)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path.with_suffix(".npz"), **outcome["arrays"])
    path.with_suffix(".json").write_text(json.dumps(outcome["meta"]))


def fold_outcome(
    work: Path,
    data: Dataset,
    cache_key: str,
    model: str,
    test_learners: np.ndarray,
    fold: int,
    quick: bool,
    refit: bool = False,
) -> tuple[dict[str, Any], bool]:
    """One fold's outcome: the cached one when its manifest matches (and not ``refit``), else
    fitted and stored. The flag says whether it was fitted now."""
    manifest = fold_manifest(data, model, test_learners, fold, quick)
    cached = None if refit else fold_cached(work, cache_key, model, fold, manifest)
    if cached is not None:
        return cached, False
    outcome = fold_run(data, model, test_learners, fold, quick)
    fold_store(work, cache_key, model, fold, outcome)
    return outcome, True


# ---------------------------------------------------------------- aggregation


def _protocol_arrays(
    outcomes: list[dict[str, Any]], protocol: str, flags: np.ndarray | None, learner_rows: np.ndarray
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per fold (answers, probabilities, learner of each row) under ``protocol``."""
    per_fold = []
    for outcome in outcomes:
        a = outcome["arrays"]
        if not _has_protocol(outcome, protocol):
            raise KeyError(f"no {protocol} predictions in this outcome")
        if protocol.startswith("multistep"):
            per_fold.append((a["multistep_correct"], a[protocol], a["multistep_learner"]))
            continue
        if protocol.startswith("next_step"):
            answers, probability, learners = a["correct"], a["next_step"], a["rows_learner"]
            global_rows = learner_rows[a["rows_learner"]] + _positions(a["rows_learner"])
        else:
            rows = a["chunk_rows"]
            answers, probability, learners = a["correct"][rows], a["chunked"], a["rows_learner"][rows]
            global_rows = (learner_rows[a["rows_learner"]] + _positions(a["rows_learner"]))[rows]
        if protocol.endswith("without_expansion"):
            assert flags is not None, "only assist2009_updated has expansion protocols, and it has flags"
            keep = ~flags[global_rows]
            answers, probability, learners = answers[keep], probability[keep], learners[keep]
        per_fold.append((answers, probability, learners))
    return per_fold


def _pool(per_fold: list[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Folds' (answers, probabilities, learners) pooled into one triple."""
    return tuple(np.concatenate([fold[index] for fold in per_fold]) for index in range(3))  # type: ignore[return-value]


def _has_protocol(outcome: dict[str, Any], protocol: str) -> bool:
    """Whether a fold outcome holds predictions for ``protocol`` (pyKT's models: chunked only)."""
    key = "multistep" if protocol == "multistep" else protocol.removesuffix("_without_expansion")
    return key in outcome["arrays"]


def _positions(learner_of_row: np.ndarray) -> np.ndarray:
    """Position of each row within its learner's run of rows (rows grouped by learner)."""
    starts = np.flatnonzero(np.r_[True, learner_of_row[1:] != learner_of_row[:-1]])
    lengths = np.diff(np.r_[starts, len(learner_of_row)])
    return np.arange(len(learner_of_row)) - np.repeat(starts, lengths)


def _r(value: float, digits: int = 4) -> float:
    return round(float(value), digits)


def summarise(
    dataset: str,
    data: Dataset,
    results: dict[str, list[dict[str, Any]]],
    flags: np.ndarray | None,
    draws: int,
    subsample: str | None,
    folds: int | None = None,
    comparisons: list[tuple[str, str]] | None = None,
) -> dict[str, Any]:
    """Per protocol and model the fold metrics and calibration over its folds, and the paired bootstrap
    intervals of ``comparisons`` (default: the dataset's declared ones). ``folds``: the split's fold count;
    a model with fewer (a ``--partial`` run: the first k folds, the rest not fitted yet) is summarised on
    those, and a comparison with it on the folds both models have."""
    spec = DATASETS[dataset]
    folds = folds or max(len(outcomes) for outcomes in results.values())
    absorbing = [model for model in results if MODELS[model][0] == "psikt"]
    protocols = ["next_step", "chunked", "multistep"]
    if flags is not None:
        protocols[1:1] = ["next_step_without_expansion", "chunked_without_expansion"]
    if absorbing:
        protocols.append("multistep_absorbed")
    learner_rows = data.offsets[:-1]
    output: dict[str, Any] = {
        "what": spec["what"],
        "learners": int(data.n_learners),
        "rows": int(data.n_rows),
        "subsample": subsample,
        "folds": folds,
        "protocols": {},
        "fits": {},
    }
    if flags is not None:
        output["expansion_rows_share"] = _r(flags.mean())
    pooled: dict[str, dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]] = {}
    for protocol in protocols:
        table: dict[str, Any] = {}
        for model, outcomes in results.items():
            if not all(_has_protocol(o, protocol) for o in outcomes) or (
                protocol == "multistep_absorbed" and model not in absorbing
            ):
                continue
            per_fold = _protocol_arrays(outcomes, protocol, flags, learner_rows)
            fold_metrics = [metrics(answers, probability) for answers, probability, _ in per_fold]
            answers, probability, learners = pooled.setdefault(protocol, {})[model] = _pool(per_fold)
            calibrated = calibration(answers, probability)
            table[model] = {
                "auc": {k: _r(v) for k, v in mean_std([m["auc"] for m in fold_metrics]).items()},
                "rmse": {k: _r(v) for k, v in mean_std([m["rmse"] for m in fold_metrics]).items()},
                "pooled_auc": _r(metrics(answers, probability)["auc"]),
                "ece": _r(calibrated["ece"]),
                "max_gap": _r(calibrated["max_gap"]),
                "reliability": [
                    {**b, "predicted": _r(b["predicted"], 3), "observed": _r(b["observed"], 3)}
                    for b in calibrated["bins"]
                ],
                "rows": len(answers),
            }
        output["protocols"][protocol] = table
    output["fits"] = {
        model: {
            "fit_seconds": mean_std([o["meta"]["fit_seconds"] for o in outcomes]),
            "epochs": [o["meta"].get("epochs") for o in outcomes],
            "best_epoch": [o["meta"].get("best_epoch") for o in outcomes],
            "params": outcomes[0]["meta"]["params"],
            # Every parameter with the defaults of the day the folds were fitted (fold_manifest):
            # what --render checks against today's defaults.
            **(
                {"effective_params": outcomes[0]["meta"]["manifest"]["params"]}
                if "manifest" in outcomes[0]["meta"]
                else {}
            ),
            **({"folds_used": len(outcomes)} if len(outcomes) < folds else {}),
        }
        for model, outcomes in results.items()
    }
    compared = []
    for first, second in spec["comparisons"] if comparisons is None else comparisons:
        if first not in results or second not in results:
            continue
        for protocol in protocols:
            if protocol == "multistep_absorbed" or not {first, second} <= set(pooled[protocol]):
                continue
            common = min(len(results[first]), len(results[second]))
            a, b = pooled[protocol][first], pooled[protocol][second]
            if common < max(len(results[first]), len(results[second])):
                # Only the folds both models have: the other model's rows cut to the same learners.
                a, b = (
                    _pool(_protocol_arrays(results[m][:common], protocol, flags, learner_rows)) for m in (first, second)
                )
            if not (np.array_equal(a[0], b[0]) and np.array_equal(a[2], b[2])):
                raise RuntimeError(f"{dataset} {protocol}: {first} and {second} were scored on different rows")
            interval = bootstrap_difference(a[0], a[1], b[1], a[2], draws=draws, seed=0)
            compared.append(
                {
                    "first": first,
                    "second": second,
                    "protocol": protocol,
                    **({"folds_used": common} if common < folds else {}),
                    **{
                        k: (_r(v) if isinstance(v, float) else [_r(x) for x in v] if isinstance(v, list) else v)
                        for k, v in interval.items()
                    },
                }
            )
    for model in absorbing if "bkt_item" in results else ():
        if len(results[model]) != len(results["bkt_item"]):
            continue
        a, b = pooled["multistep_absorbed"][model], pooled["multistep"]["bkt_item"]
        interval = bootstrap_difference(a[0], a[1], b[1], a[2], draws=draws, seed=0)
        compared.append(
            {
                "first": f"{model}, history absorbed",
                "second": "bkt_item",
                "protocol": "multistep",
                **{
                    k: (_r(v) if isinstance(v, float) else [_r(x) for x in v] if isinstance(v, list) else v)
                    for k, v in interval.items()
                },
            }
        )
    if {"psikt", "psikt_ou"} <= set(absorbing):
        a, b = pooled["multistep_absorbed"]["psikt_ou"], pooled["multistep_absorbed"]["psikt"]
        interval = bootstrap_difference(a[0], a[1], b[1], a[2], draws=draws, seed=0)
        compared.append(
            {
                "first": "psikt_ou, history absorbed",
                "second": "psikt, history absorbed",
                "protocol": "multistep",
                **{
                    k: (_r(v) if isinstance(v, float) else [_r(x) for x in v] if isinstance(v, list) else v)
                    for k, v in interval.items()
                },
            }
        )
    output["comparisons"] = compared
    return output


# ---------------------------------------------------------------- render


def _pm(entry: dict[str, float]) -> str:
    return f"{entry['mean']:.4f} ± {entry['std']:.4f}"


PROTOCOL_NAMES = {
    "next_step": "next step, all earlier rows",
    "chunked": "pyKT's chunks (200 rows)",
    "next_step_without_expansion": "next step, expansion rows left out",
    "chunked_without_expansion": "pyKT's chunks, expansion rows left out",
    "multistep": "10 steps ahead",
    "multistep_absorbed": "10 steps ahead, history absorbed (psikt)",
}


def _label(result: dict[str, Any], model: str) -> str:
    """The model's name, and how many of the split's folds it has when not all (a ``--partial`` run)."""
    used = result["fits"][model].get("folds_used")
    return LABELS[model] + (f" ({used} of {result['folds']} folds)" if used else "")


def _on_folds(comparison: dict[str, Any], result: dict[str, Any]) -> str:
    used = comparison.get("folds_used")
    return f" (on the {used} of {result['folds']} folds both have)" if used else ""


def verdict(comparison: dict[str, Any]) -> str:
    low, high = comparison["auc_interval"]
    if low > 0:
        return "above"
    if high < 0:
        return "below"
    return "level with"


def anchor_sentences(result: dict[str, Any]) -> list[str]:
    """For each pyKT model measured on a dataset: whether our best model there (the highest mean
    AUC under pyKT's chunks among ours compared with it) reaches it, and by how much it falls short
    when it does not, from the paired bootstrap interval."""
    lines = []
    table = result["protocols"].get("chunked", {})
    for theirs in [m for m in result["fits"] if MODELS.get(m, ("",))[0] == "pykt" and m in table]:
        against = [c for c in result["comparisons"] if c["second"] == theirs and c["protocol"] == "chunked"]
        if not against:
            continue
        best = max(against, key=lambda c: table[c["first"]]["auc"]["mean"])
        ours_auc, their_auc = table[best["first"]]["auc"]["mean"], table[theirs]["auc"]["mean"]
        low, high = best["auc_interval"]
        interval = f"{best['auc_difference']:+.4f} [{low:+.4f}, {high:+.4f}]"
        reading = verdict(best)
        outcome = {
            "above": f"is above it: {interval} AUC",
            "level with": f"reaches it (level with it: {interval} AUC, the interval holds zero)",
            "below": f"does not reach it: it is short by {-best['auc_difference']:.4f} AUC ({interval}; "
            f"RMSE {best['rmse_difference']:+.4f} [{best['rmse_interval'][0]:+.4f}, {best['rmse_interval'][1]:+.4f}])",
        }[reading]
        lines += [
            "",
            f"Against {LABELS[theirs]} (AUC {their_auc:.4f} under pyKT's chunks, "
            f"{result['fits'][theirs]['fit_seconds']['n']} folds): our best model here, {LABELS[best['first']]} "
            f"(AUC {ours_auc:.4f}), {outcome}.",
        ]
    return lines


PYKT_COST = REPO / "bench" / "results" / "pykt_cost.json"


def pykt_cost_sentence(dataset: str, result: dict[str, Any], cost: dict[str, Any] | None) -> list[str]:
    """Where pyKT's AKT is not in the JSON for a dataset: what one fold of it costs on the bench
    machine (``bench/pykt_models.py --cost``), so README says why it is missing, with the figure."""
    if (
        not cost
        or dataset not in cost.get("datasets", {})
        or any(MODELS.get(m, ("",))[0] == "pykt" for m in result["fits"])
    ):
        return []
    measured = cost["datasets"][dataset]
    load = cost.get("load_average_at_start") or [float("nan")]
    return [
        "",
        f"Not in this run: {LABELS['pykt_' + cost['model']]} at pyKT's defaults "
        f"(`bench/pykt_models.py`, rendered from `bench/results/pykt_cost.json`, {cost['started']}, load average "
        f"{load[0]:.1f}): one training step ({cost['config']['batch_size']} pieces of 200 rows, one thread) took "
        f"{measured['cpu_seconds_per_step']:.0f} CPU seconds, an epoch of fold 0 "
        f"({measured['train_batches_per_epoch']} steps) {measured['cpu_seconds_per_epoch'] / 60:.0f} CPU minutes, "
        "so a fold takes at least "
        f"{measured['least_cpu_hours_per_fold']:.1f} CPU hours (11 epochs, the fewest its early stopping runs) and "
        f"5 folds at least {measured['least_cpu_hours_5_folds']:.1f} CPU hours, with a peak of "
        f"{measured['peak_memory_mb'] / 1024:.1f} GiB of memory a run. It runs with `bench/models.py --pykt` "
        "(on a GPU where one is lent).",
    ]


def render(report: dict[str, Any], cost: dict[str, Any] | None = None) -> str:
    runs = report.get("runs") or [_run_of(report)]
    described = "; ".join(
        f"code {run['commit']}, finished {run['finished']}"
        + (
            f", load average {run['load_average_at_start'][0]:.1f} -> {run['load_average_at_end'][0]:.1f}"
            if run.get("load_average_at_start") and run.get("load_average_at_end")
            else ""
        )
        for run in runs
    )
    heading = (
        f"Rendered by `bench/models.py --render` from `{report['results_file']}` "
        f"({'runs' if len(runs) > 1 else 'run'}: {described}; {report['folds']} folds by learner, "
        f"{'QUICK CHECK, not for claims' if report['quick'] else 'full run'}). Do not edit by hand."
    )
    lines = [BEGIN, "", heading, ""]
    for dataset, result in report["datasets"].items():
        lines += [
            f"**{result['what']}**: {result['learners']} learners, {result['rows']} rows"
            + (f" ({result['subsample']})" if result.get("subsample") else "")
            + (
                f"; rows flagged as multi-skill expansion: {result['expansion_rows_share']:.1%}"
                if "expansion_rows_share" in result
                else ""
            )
            + ".",
            "",
        ]
        models = list(result["fits"])
        lines += ["| model | protocol | AUC (mean ± std over folds) | RMSE | ECE | rows |", "|---|---|---|---|---|---|"]
        for protocol, table in result["protocols"].items():
            for model in models:
                if model not in table:
                    continue
                entry = table[model]
                lines.append(
                    f"| {_label(result, model)} | {PROTOCOL_NAMES[protocol]} | {_pm(entry['auc'])} | "
                    f"{_pm(entry['rmse'])} | {entry['ece']:.4f} | {entry['rows']} |"
                )
        lines += ["", "| model | fit s per fold (mean) | epochs per fold (best) | run (code) |", "|---|---|---|---|"]
        for model, fit in result["fits"].items():
            epochs = (
                ", ".join(f"{e} ({b})" for e, b in zip(fit["epochs"], fit["best_epoch"])) if fit["epochs"][0] else "–"
            )
            run = fit.get("run", {}).get("commit") or runs[0]["commit"]
            lines.append(f"| {_label(result, model)} | {fit['fit_seconds']['mean']:.1f} | {epochs} | {run} |")
        if result["comparisons"]:
            header = (
                "| comparison (paired bootstrap over learners, 95%) | protocol | AUC difference [interval] | "
                "RMSE difference [interval] | reading |"
            )
            lines += ["", header, "|---|---|---|---|---|"]
            for c in result["comparisons"]:
                first = LABELS.get(c["first"], c["first"])
                lines.append(
                    f"| {first} − {LABELS.get(c['second'], c['second'])}{_on_folds(c, result)} | "
                    f"{PROTOCOL_NAMES[c['protocol']]} | "
                    f"{c['auc_difference']:+.4f} [{c['auc_interval'][0]:+.4f}, {c['auc_interval'][1]:+.4f}] | "
                    f"{c['rmse_difference']:+.4f} [{c['rmse_interval'][0]:+.4f}, {c['rmse_interval'][1]:+.4f}] | "
                    f"{verdict(c)} |"
                )
        if result["comparisons"]:
            lines += ["", 'Readings (AUC; "level with" where the 95% interval holds zero):', ""]
            pairs: dict[tuple[str, str], list[str]] = {}
            for c in result["comparisons"]:
                pairs.setdefault((c["first"], c["second"]), []).append(
                    f"{PROTOCOL_NAMES[c['protocol']]}{_on_folds(c, result)}: {verdict(c)} ({c['auc_difference']:+.4f} "
                    f"[{c['auc_interval'][0]:+.4f}, {c['auc_interval'][1]:+.4f}])"
                )
            for (first, second), readings in pairs.items():
                lines.append(
                    f"- {LABELS.get(first, first)} against {LABELS.get(second, second)}: " + "; ".join(readings) + "."
                )
        lines += anchor_sentences(result)
        lines += pykt_cost_sentence(dataset, result, cost)
        table = result["protocols"]["next_step"]
        lines += [
            "",
            "Reliability, next step (observed correct rate / rows, per bin of predicted P(correct)):",
            "",
            "| P(correct) | " + " | ".join(LABELS[m] for m in models if m in table) + " |",
            "|---|" + "---|" * len([m for m in models if m in table]),
        ]
        for index in range(10):
            low, high = index / 10, (index + 1) / 10
            cells = []
            for model in models:
                if model not in table:
                    continue
                found = [b for b in table[model]["reliability"] if abs(b["low"] - low) < 1e-9]
                cells.append(f"{found[0]['observed']:.3f} / {found[0]['n']}" if found else "–")
            lines.append(f"| {low:.1f}-{high:.1f} | " + " | ".join(cells) + " |")
        lines.append("")
    lines.append(END)
    return "\n".join(lines)


STREAM_BEGIN, STREAM_END = "<!-- bench:streaming:begin -->", "<!-- bench:streaming:end -->"
STREAMING = REPO / "bench" / "results"  # streaming.json (all learners) and streaming-<N>learners.json


def streaming_reports(folder: Path = STREAMING) -> list[tuple[str, dict[str, Any]]]:
    """bench/streaming.py's result files, the all-learner run first, then subsamples by size."""
    files = sorted(folder.glob("streaming*.json"), key=lambda path: (path.name != "streaming.json", path.name))
    return [(f"bench/results/{path.name}", json.loads(path.read_text())) for path in files]


def render_streaming(reports: list[tuple[str, dict[str, Any]]]) -> str:
    """bench/streaming.py's JSON files as tables: accuracy per block of answers and per-answer latency."""
    header = (
        "| model | AUC per block of answers, in time order | ECE per block | predict + update ms: "
        "median / p90 / p99 | refit s (last) |"
    )
    lines = [STREAM_BEGIN, ""]
    for name, report in reports:
        heading = (
            f"Rendered by `bench/models.py --render` from `{name}` ({report['dataset']}, "
            f"{report['learners']} learners, {report['answers']} answers, refit every {report['every']} answers"
            + (f"; load average {report['load_average'][0]:.1f} at start" if report.get("load_average") else "")
            + (f", {report['load_average_at_end'][0]:.1f} at end" if report.get("load_average_at_end") else "")
            + "). Do not edit by hand."
        )
        lines += [heading, "", header, "|---|---|---|---|---|"]
        for model, result in report["models"].items():
            aucs = ", ".join(f"{block['auc']:.3f}" for block in result["blocks"])
            eces = ", ".join(f"{block['ece']:.3f}" for block in result["blocks"])
            latency = result["latency_ms"]
            lines.append(
                f"| {LABELS.get(model, model)} | {aucs} | {eces} | {latency['median']:.3f} / "
                f"{latency['p90']:.3f} / {latency['p99']:.3f} | {result['refits'][-1]['seconds']:.1f} |"
            )
        lines.append("")
    return "\n".join([*lines, STREAM_END])


def stale_fits(report: dict[str, Any]) -> list[str]:
    """The fits in ``report`` whose effective parameters (recorded since folds carry a manifest) are
    not what the model's name gives today: a default changed after they were fitted."""
    from tracing.estimators.hyper import BY_KIND

    stale = []
    for dataset, result in report["datasets"].items():
        for model, fit in result["fits"].items():
            if "effective_params" not in fit or model not in MODELS:
                continue
            kind, params = fold_params(model, bool(report.get("quick")))
            today = json.loads(json.dumps(BY_KIND[kind].check(params, owner=kind)))
            then = fit["effective_params"]
            changed = sorted(k for k in {*today, *then} if today.get(k) != then.get(k))
            if changed:
                stale.append(
                    f"{dataset} {model}: "
                    + ", ".join(f"{k} {then.get(k)!r} then, {today.get(k)!r} now" for k in changed)
                )
    return stale


def readme_rewrite(
    report: dict[str, Any], readme: Path = README, streaming: list[tuple[str, dict[str, Any]]] | None = None
) -> None:
    """README's model block from ``report``, and its streaming block from ``streaming`` when given."""
    cost = json.loads(PYKT_COST.read_text()) if PYKT_COST.exists() else None
    text = block_replace(readme.read_text(), BEGIN, END, render(report, cost), source=readme)
    if streaming:
        text = block_replace(text, STREAM_BEGIN, STREAM_END, render_streaming(streaming), source=readme)
    readme.write_text(text)


# ---------------------------------------------------------------- driver


def _commit() -> str:
    head = REPO / ".git"
    try:
        import subprocess

        # "-dirty" when the working tree differs from the commit: the figures are not that commit's.
        return subprocess.run(
            ["git", "describe", "--always", "--dirty", "--abbrev=7"],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except Exception:  # noqa: BLE001 - a tarball without git still benches
        return str(head)


RUN_KEYS = ("commit", "started", "finished", "load_average_at_start", "load_average_at_end")


def _run_of(report: dict[str, Any]) -> dict[str, Any]:
    return {key: report.get(key) for key in RUN_KEYS}


def report_merge(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """``new`` added to ``old``: the models and comparisons a run measured replace the same ones in
    ``old`` and join the rest, so a run of one more model (or dataset) keeps what earlier runs
    measured without re-running them (their per-fold predictions may be gone). Each model's fit
    names the run that measured it; ``runs`` lists every run. A dataset whose learners, rows or
    folds differ is another experiment: ``new`` replaces it whole."""
    if old.get("quick") != new.get("quick") or old.get("folds") != new.get("folds"):
        raise ValueError("a quick check and a full run (or different fold counts) are not merged")
    merged = json.loads(json.dumps(old))
    runs = merged.setdefault("runs", [_run_of(old)])
    this_run = _run_of(new)
    merged["runs"] = [run for run in runs if run.get("started") != this_run["started"]] + [this_run]
    merged.update({key: new[key] for key in RUN_KEYS if key in new})
    merged["draws"] = new.get("draws", merged.get("draws"))
    for name, result in new["datasets"].items():
        result = json.loads(json.dumps(result))
        for fit in result["fits"].values():
            fit.setdefault("run", {"commit": new.get("commit"), "started": new.get("started")})
        before = merged["datasets"].get(name)
        same = before is not None and all(before.get(k) == result.get(k) for k in ("learners", "rows", "folds"))
        if not same:
            merged["datasets"][name] = result
            continue
        assert before is not None
        # A model read on only its first folds (--partial) never replaces one measured on all of them;
        # the comparisons made with it, on the folds both have, still land.
        kept = {
            model
            for model, fit in result["fits"].items()
            if fit.get("folds_used") and model in before["fits"] and not before["fits"][model].get("folds_used")
        }
        for protocol, table in result["protocols"].items():
            before["protocols"].setdefault(protocol, {}).update({m: v for m, v in table.items() if m not in kept})
        before["fits"].update({m: v for m, v in result["fits"].items() if m not in kept})
        keyed = {(c["first"], c["second"], c["protocol"]): c for c in before["comparisons"]}
        for c in result["comparisons"]:
            key = (c["first"], c["second"], c["protocol"])
            if not (c.get("folds_used") and key in keyed and not keyed[key].get("folds_used")):
                keyed[key] = c  # (one on fewer folds never replaces one on all of them)
        before["comparisons"] = list(keyed.values())
    return merged


def _write(out: Path, report: dict[str, Any], merge: bool) -> None:
    """``report`` to ``out``, merged into what ``out`` holds when it is read (so two runs of
    different models, one after the other or side by side, both land)."""
    report["finished"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    report["load_average_at_end"] = os.getloadavg()
    out.parent.mkdir(parents=True, exist_ok=True)
    written = report_merge(json.loads(out.read_text()), report) if merge and out.exists() else report
    partial = out.with_suffix(f".{os.getpid()}.tmp")
    partial.write_text(json.dumps(written, indent=1) + "\n")
    partial.replace(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200 learners a dataset, short fits: a check, not claims")
    parser.add_argument("--datasets", default=",".join(DATASETS), help="comma-separated, of " + ", ".join(DATASETS))
    parser.add_argument("--models", default="", help="only these models (default: each dataset's list)")
    parser.add_argument("--folds", type=int, default=FOLDS)
    parser.add_argument("--draws", type=int, default=1000, help="bootstrap draws")
    parser.add_argument(
        "--out",
        type=Path,
        help=f"JSON results (default {RESULTS.relative_to(REPO)}, --quick: {QUICK_RESULTS.relative_to(REPO)})",
    )
    parser.add_argument("--work", type=Path, help="per-fold predictions (default .bench/models[-quick])")
    parser.add_argument(
        "--pykt", action="store_true", help="also run pyKT's models (bench/setup_pykt.sh's venv; hours a fold on CPU)"
    )
    parser.add_argument("--render", action="store_true", help="rewrite README's block from --out and stop")
    parser.add_argument(
        "--fresh", action="store_true", help="replace --out instead of merging this run's models into it"
    )
    parser.add_argument(
        "--partial",
        action="store_true",
        help="fit nothing: summarise the cached folds, a model with only its first k folds on those "
        "(marked in the JSON and README), for a run the deadline cut short",
    )
    parser.add_argument(
        "--refit", action="store_true", help="fit every fold again, cached or not (after a change of a model's code)"
    )
    args = parser.parse_args()
    out = args.out or (QUICK_RESULTS if args.quick else RESULTS)
    if args.render:
        for line in stale_fits(json.loads(out.read_text())):
            print(f"stale (a default changed since it was fitted; run it again): {line}", file=sys.stderr)
        readme_rewrite(json.loads(out.read_text()), streaming=streaming_reports())
        return
    work = args.work or REPO / ".bench" / ("models-quick" if args.quick else "models")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    report: dict[str, Any] = {
        "quick": args.quick,
        "folds": args.folds,
        "horizon": HORIZON,
        "draws": args.draws,
        "commit": _commit(),
        "started": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "results_file": str(out.relative_to(REPO)) if out.is_relative_to(REPO) else str(out),
        "load_average_at_start": os.getloadavg(),
        "datasets": {},
    }
    only = [m for m in args.models.split(",") if m]
    # pyKT's models run only when asked for (--pykt, or named in --models): at their defaults on
    # this bench's CPU one AKT fold takes hours (bench/results/pykt_cost.json); a GPU is their place.
    skip = set() if args.pykt else {m for m in MODELS if MODELS[m][0] == "pykt" and m not in only}
    for dataset in [d for d in args.datasets.split(",") if d]:
        spec = DATASETS[dataset]
        sample, flags, cache_key, subsample = bench_sample(dataset, args.quick)
        folds = learner_folds(sample.n_learners, folds=args.folds, seed=0)
        results: dict[str, list[dict[str, Any]]] = {}
        for model in spec["models"]:
            if (only and model not in only) or model in skip:
                continue
            outcomes = []
            for fold, test_learners in enumerate(folds):
                if args.partial:
                    manifest = fold_manifest(sample, model, test_learners, fold, args.quick)
                    cached = fold_cached(work, cache_key, model, fold, manifest)
                    if cached is None:
                        break  # the first k folds only: the split's order, as the full run fits them
                    outcomes.append(cached)
                    continue
                started = time.perf_counter()
                try:
                    outcome, fitted = fold_outcome(
                        work, sample, cache_key, model, test_learners, fold, args.quick, refit=args.refit
                    )
                except Exception:  # noqa: BLE001 - a failed fold is reported; the others go on
                    print(f"{dataset} {model} fold {fold} failed:\n{traceback.format_exc()}", file=sys.stderr)
                    break
                if fitted:
                    print(
                        f"{time.strftime('%H:%M:%S')} {dataset} {model} fold {fold}: "
                        f"{time.perf_counter() - started:.0f} s",
                        file=sys.stderr,
                        flush=True,
                    )
                outcomes.append(outcome)
            if len(outcomes) == args.folds or (args.partial and outcomes):
                results[model] = outcomes
        if results:
            report["datasets"][dataset] = summarise(
                dataset, sample, results, flags, args.draws, subsample, folds=args.folds
            )
            _write(
                out, report, merge=not args.fresh
            )  # after each dataset: a run cut short still leaves what it finished
    _write(out, report, merge=not args.fresh)
    print(
        json.dumps(
            {
                name: {
                    "comparisons": [
                        (c["first"], c["second"], c["protocol"], c["auc_difference"], c["auc_interval"])
                        for c in result["comparisons"]
                    ]
                }
                for name, result in report["datasets"].items()
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
