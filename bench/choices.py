"""Settings chosen on validation only (issue 16, item 6), never on a test figure.

    nice -n 19 .venv/bin/python bench/choices.py --choice plateau_decay

``plateau_decay`` (CAKT's default 0.5; 1 turns it off): for each of bench/models.py's folds of
its dataset, CAKT is fitted on the fold's training learners (seed = fold, as bench/models.py
fits it) once per value; the fit carves its own validation learners out of those training
learners (``validation_fraction``, the same carve-out for every value of a fold) and stops
early on them. The figure compared is that best validation AUC; the fold's test learners are
never read for the choice (the fold is run as bench/models.py runs it, test predictions kept
under the variant's name in ``.bench/models/`` so that a changed default needs no refit). A fit
bench/models.py already made with the same parameters is read from its cache instead.

The rule, fixed before running: the value with the higher mean validation AUC over the folds
replaces the default only when its paired gain (per fold, same carve-out) is above zero on
every fold or its mean exceeds twice the gain's standard error; otherwise the simpler setting
(1: off) is kept or chosen, as the setting that needs no justification.

psikt's absorb settings are chosen by ``bench/psikt.py --only absorb_choice``, its ``dynamics``
(jump or the paper's ou) by ``bench/psikt_dynamics.py --stage validation``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

from bench import models as bench
from bench.common import REPO
from tracing.evaluation import learner_folds, mean_std

OUT = REPO / "bench" / "results" / "choices.json"

CHOICES: dict[str, dict[str, Any]] = {
    "plateau_decay": {"dataset": "assist2015", "model": "cakt", "param": "plateau_decay", "values": [0.5, 1.0]},
}


def choose(gains: list[float], simpler_is_first: bool) -> dict[str, Any]:
    """The rule above on per-fold paired gains (second value minus first): which value wins.

    ``simpler_is_first`` says which of the two needs no justification (kept on a tie)."""
    gain = np.asarray(gains, dtype=np.float64)
    mean = float(gain.mean())
    error = float(gain.std(ddof=1) / np.sqrt(len(gain))) if len(gain) > 1 else float("inf")
    clear = bool(np.all(gain > 0) or np.all(gain < 0) or abs(mean) > 2 * error)
    if clear:
        winner = "second" if mean > 0 else "first"
    else:
        winner = "first" if simpler_is_first else "second"
    return {"mean_gain": mean, "standard_error": error, "clear": clear, "winner": winner}


def run_choice(
    name: str, folds: int, values: list[float] | None = None, use_folds: int | None = None
) -> dict[str, Any] | None:
    """The choice's fits (cached ones read), and the decision; only ``values`` fitted when given
    (a side run while bench/models.py fits the default), and then no decision (None)."""
    spec = CHOICES[name]
    sample, _, cache_key, subsample = bench.bench_sample(spec["dataset"], quick=False)
    work = REPO / ".bench" / "models"
    per_value: dict[str, list[dict[str, Any]]] = {}
    for value in values or spec["values"]:
        params = {spec["param"]: value}
        rows = []
        split = learner_folds(sample.n_learners, folds=folds, seed=0)
        for fold, test_learners in enumerate(split[:use_folds]):
            # bench/models.py's own fold when the value is the default (the manifests agree), else the variant's.
            manifest = bench.fold_manifest(sample, spec["model"], test_learners, fold, quick=False, override=params)
            cached = bench.fold_cached(work, cache_key, spec["model"], fold, manifest)
            variant = f"{spec['model']}@{spec['param']}={value}"
            if cached is None:
                cached = bench.fold_cached(work, cache_key, variant, fold, manifest)
            if cached is None:
                # A full fold as bench/models.py runs it (its test predictions kept under the variant's
                # name, unread here), so that a changed default needs no second fit.
                cached = bench.fold_run(sample, spec["model"], test_learners, fold, quick=False, override=params)
                bench.fold_store(work, cache_key, variant, fold, cached)
            meta = cached["meta"]
            row = {k: meta[k] for k in ("best_valid_auc", "best_epoch", "epochs", "fit_seconds")}
            rows.append(row)
            print(f"{time.strftime('%H:%M:%S')} {name}={value} fold {fold}: {row}", file=sys.stderr, flush=True)
        per_value[str(value)] = rows
    if values:
        return None
    first, second = (str(v) for v in spec["values"])
    gains = [b["best_valid_auc"] - a["best_valid_auc"] for a, b in zip(per_value[first], per_value[second])]
    # The simpler setting is the one that turns the mechanism off (1.0 for plateau_decay).
    simpler_is_first = float(first) == 1.0
    decision = choose(gains, simpler_is_first=simpler_is_first)
    return {
        **spec,
        "sample": subsample,
        "folds": folds,
        "folds_used": len(per_value[first]),
        "validation_auc": {
            value: {k: round(v, 4) for k, v in mean_std([r["best_valid_auc"] for r in rows]).items()}
            for value, rows in per_value.items()
        },
        "runs": per_value,
        f"gain_{second}_minus_{first}": [round(g, 4) for g in gains],
        "decision": {**{k: (round(v, 5) if isinstance(v, float) else v) for k, v in decision.items()}},
        "chosen": spec["values"][1] if decision["winner"] == "second" else spec["values"][0],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--choice", choices=tuple(CHOICES), action="append", required=True)
    parser.add_argument("--folds", type=int, default=bench.FOLDS)
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--values", help="only fit these values (comma-separated), no decision")
    parser.add_argument(
        "--use-folds", type=int, help="only the first K folds of the --folds split (a run cut short by time)"
    )
    args = parser.parse_args()
    if args.values:
        for name in args.choice:
            run_choice(name, args.folds, [float(v) for v in args.values.split(",")], args.use_folds)
        return
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    report = json.loads(args.out.read_text()) if args.out.exists() else {}
    for name in args.choice:
        started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
        load = os.getloadavg()
        decided = run_choice(name, args.folds, use_folds=args.use_folds)
        assert decided is not None
        report[name] = {
            **decided,
            "commit": bench._commit(),
            "started": started,
            "load_average_at_start": load,
            "load_average_at_end": os.getloadavg(),
        }
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
