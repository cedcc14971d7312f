"""Streaming evaluation, as the service runs: answers replayed in time order through the online path.

    nice -n 10 .venv/bin/python bench/streaming.py [--models bkt,dkt,psikt] [--every 20000] [--learners N]

DBE-KT22's answers (all learners, real timestamps) are sorted by time. The model is fitted on
the first ``--every`` answers; from then on each answer is predicted from its learner's state
before it (``predict_next``), then applied (``update``), and after every ``--every`` answers the
model is refitted from everything seen so far and every seen learner's state rebuilt from their
answers (``final_states``), as a nightly refit would. A learner first seen after a fit starts
from ``initial_state()``. Reported per block of ``--every`` answers: AUC, RMSE and ECE of those
predictions (accuracy over time), and per answer the latency of predict plus update (median,
90th and 99th percentile, one torch thread); the refit times too. JSON on stdout and in
``bench/results/streaming.json``.
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

from bench.common import REPO, dataset_path
from tracing.data import Dataset
from tracing.estimators import get_estimator
from tracing.evaluation import calibration, metrics
from tracing.formats import load_dataset

MODELS: dict[str, tuple[str, dict[str, Any]]] = {
    "bkt": ("bkt", {}),
    "bkt_item": ("bkt", {"multigs": True}),
    "dkt": ("dkt", {"threads": 1}),
    "psikt": ("psikt", {"threads": 1}),
}


def seen_data(data: Dataset, seen: np.ndarray) -> tuple[Dataset, np.ndarray]:
    """The seen rows, learners with none left out; and the original index of each learner kept."""
    rows = data.with_rows(seen)
    kept = np.flatnonzero(rows.lengths > 0)
    return rows.subset(kept), kept


def stream(data: Dataset, model: str, every: int) -> dict[str, Any]:
    kind, params = MODELS[model]
    order = np.lexsort((np.arange(data.n_rows), data.timestamp))
    seen = np.zeros(data.n_rows, dtype=bool)
    seen[order[:every]] = True
    blocks, refits, latencies = [], [], []
    position = every
    while position < data.n_rows:
        started = time.perf_counter()
        history, learners = seen_data(data, seen)
        estimator = get_estimator(kind)(**params).fit(history, seed=0)
        states = dict(zip(learners.tolist(), estimator.final_states(history)))
        refits.append({"answers_seen": int(seen.sum()), "seconds": round(time.perf_counter() - started, 2)})
        block = order[position : position + every]
        probability = np.empty(len(block))
        for index, row in enumerate(block):
            learner, item = int(data.learner[row]), data.item[row : row + 1]
            at = float(data.timestamp[row])
            started = time.perf_counter()
            state = states.get(learner)
            if state is None:
                state = estimator.initial_state()
            probability[index] = float(estimator.predict_next(state, item, at=at)[0])
            states[learner] = estimator.update(state, item=int(item[0]), correct=float(data.correct[row]), at=at)
            latencies.append(time.perf_counter() - started)
        seen[block] = True
        scored = metrics(data.correct[block], probability)
        blocks.append(
            {
                "answers_from": position,
                "answers_to": position + len(block),
                "auc": round(scored["auc"], 4),
                "rmse": round(scored["rmse"], 4),
                "ece": round(calibration(data.correct[block], probability)["ece"], 4),
            }
        )
        position += every
    milliseconds = np.asarray(latencies) * 1000
    return {
        "blocks": blocks,
        "refits": refits,
        "params": params,
        "latency_ms": {
            "median": round(float(np.median(milliseconds)), 3),
            "p90": round(float(np.percentile(milliseconds, 90)), 3),
            "p99": round(float(np.percentile(milliseconds, 99)), 3),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="bkt,dkt,psikt")
    parser.add_argument("--every", type=int, default=20_000, help="answers between refits")
    parser.add_argument("--learners", type=int, help="a random subsample of learners (seed 0)")
    parser.add_argument(
        "--out",
        type=Path,
        help="default bench/results/streaming.json, with --learners N bench/results/streaming-Nlearners.json",
    )
    args = parser.parse_args()
    suffix = f"-{args.learners}learners" if args.learners else ""
    out = args.out or REPO / "bench" / "results" / f"streaming{suffix}.json"
    data = load_dataset(dataset_path("dbe_kt22", "pyedmine_preprocessed", "data.txt"), format="dbe")[0]
    if args.learners and args.learners < data.n_learners:
        data = data.subset(np.sort(np.random.default_rng(0).permutation(data.n_learners)[: args.learners]))
    report: dict[str, Any] = {
        "dataset": "dbe_kt22",
        "learners": data.n_learners,
        "answers": data.n_rows,
        "every": args.every,
        "load_average": [round(x, 1) for x in os.getloadavg()],
        "models": {},
    }
    for model in [m for m in args.models.split(",") if m]:
        report["models"][model] = stream(data, model, args.every)
        print(json.dumps({model: report["models"][model]["latency_ms"]}), file=sys.stderr, flush=True)
        report["load_average_at_end"] = [round(x, 1) for x in os.getloadavg()]
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=1) + "\n")  # after each model: a cut-short run keeps what ran
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
