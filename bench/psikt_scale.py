"""How a psikt fit grows with the number of learners (issue 17, item 7): JSON.

    KT_DATASETS=../shared/datasets nice -n 19 .venv/bin/python bench/psikt_scale.py \\
        [--sizes 1000,2500,5000,10000] [--test 1000] [--out bench/results/psikt_scale.json] [--render]

assist2015 (the DKVMN files pooled: 19,840 learners, 683,801 answers, 100 skills). 1,000 learners
(seed 0) are held out; each size is a random draw (seed 0, nested: a smaller draw is part of every
larger one) from the other 18,840, fitted with the registry's defaults in a forked child, so each
fit's peak memory is its own. Per fit: wall and CPU seconds, the fit's own split (padding and SVI,
storing every learner's end state), peak RSS, answers used (each learner's first ``max_length``),
the service's time limit for a course of that many answers (``tracing.services.fit_time_limit``'s
rule with the default settings), and the held-out learners' next-step AUC (new learners: population
traits, knowledge filtered over their answers). Then one fit of all 19,840 learners, timed only
(its learners include the held-out ones).

SVI takes a fixed number of steps (``steps`` x ``batch_size`` learners), so its cost does not grow
with the course; what grows is padding the answers and storing each learner's end state.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from bench.common import block_replace, emit, in_child, peak_rss_mb  # noqa: E402
from tracing.data import Dataset  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results" / "psikt_scale.json"
README = REPO / "README.md"
BEGIN, END = "<!-- bench:psikt-scale:begin -->", "<!-- bench:psikt-scale:end -->"

# tracing.services.fit_time_limit with the default settings (TRACING_FIT_TIME_LIMIT_*): the bench
# stays free of Django, so the rule is restated here and checked against the settings by a test.
LIMIT_BASE, LIMIT_PER_1000, LIMIT_MAX = 600, 10.0, 3 * 3600


def time_limit(answers: int) -> int:
    return int(min(LIMIT_MAX, LIMIT_BASE + LIMIT_PER_1000 * answers / 1000))


def assist2015() -> Dataset:
    from bench.models import dataset_load

    return dataset_load("assist2015")


def fit_one(train: Dataset, test: Dataset | None) -> dict[str, Any]:
    """In a forked child: fit psikt with its defaults on ``train``; time, memory, held-out AUC."""
    from tracing.estimators import get_estimator
    from tracing.evaluation import evaluate

    model: Any = get_estimator("psikt")()
    # The fit's split: the end-state pass timed by wrapping it (the estimator times only the whole fit).
    store, spent = model._store_end_states, [0.0]

    def timed_store(*args: Any, **kwargs: Any) -> Any:
        began = time.perf_counter()
        try:
            return store(*args, **kwargs)
        finally:
            spent[0] += time.perf_counter() - began

    model._store_end_states = timed_store
    cpu_before = resource.getrusage(resource.RUSAGE_SELF)
    wall = time.perf_counter()
    model.fit(train, seed=0)
    wall = time.perf_counter() - wall
    cpu_after = resource.getrusage(resource.RUSAGE_SELF)
    used = int(np.minimum(train.lengths, model.max_length).sum())
    outcome: dict[str, Any] = {
        "learners": train.n_learners,
        "answers": train.n_rows,
        "answers_used": used,
        "wall_seconds": round(wall, 1),
        "cpu_seconds": round(
            (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime), 1
        ),
        "stages": {"padding_svi_seconds": round(wall - spent[0], 1), "end_states_seconds": round(spent[0], 1)},
        "peak_rss_mb": peak_rss_mb(),
        "time_limit_seconds": time_limit(train.n_rows),
    }
    if test is not None:
        outcome["test_auc"] = round(float(evaluate(model, test)["auc"]), 4)
    return outcome


def run(sizes: list[int], held_out: int) -> dict[str, Any]:
    data = assist2015()
    rng = np.random.default_rng(0)
    order = rng.permutation(data.n_learners)
    test = data.subset(np.sort(order[:held_out]))
    pool = order[held_out:]
    fits = []
    for size in [*sizes, None]:
        train = data if size is None else data.subset(np.sort(pool[:size]))
        outcome = in_child(fit_one, train, None if size is None else test)
        outcome["all_learners"] = size is None
        outcome["load_average"] = [round(value, 1) for value in os.getloadavg()]
        print(json.dumps(outcome), file=sys.stderr, flush=True)
        fits.append(outcome)
    return {
        "bench": "psikt_scale",
        "dataset": "assist2015",
        "learners": data.n_learners,
        "answers": data.n_rows,
        "held_out": held_out,
        "fits": fits,
        "growth": growth(fits),
    }


def growth(fits: list[dict[str, Any]]) -> dict[str, float]:
    """Least-squares slope of log(cost) on log(learners) over the fits: 1 is linear growth."""
    learners = np.log([fit["learners"] for fit in fits])
    slopes = {}
    for key in ("wall_seconds", "peak_rss_mb"):
        values = np.log([max(fit[key], 1e-3) for fit in fits])
        slopes[f"{key}_exponent"] = round(float(np.polyfit(learners, values, 1)[0]), 2)
    return slopes


def render(report: dict[str, Any]) -> str:
    lines = [
        BEGIN,
        f"<!-- rendered by bench/psikt_scale.py --render from {RESULTS.relative_to(REPO)}; do not edit by hand -->",
        "",
        "| learners | answers (used in fitting) | fit wall s | CPU s | padding + SVI s | end states s | "
        "peak RSS MB | time limit s | held-out next-step AUC | load |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for fit in report["fits"]:
        stages = fit["stages"]
        svi, ends = stages["padding_svi_seconds"], stages["end_states_seconds"]
        lines.append(
            f"| {fit['learners']:,}{' (all)' if fit['all_learners'] else ''} | {fit['answers']:,} "
            f"({fit['answers_used']:,}) | {fit['wall_seconds']} | {fit['cpu_seconds']} | {svi} | {ends} | "
            f"{fit['peak_rss_mb']} | {fit['time_limit_seconds']:,} | {fit.get('test_auc', '—')} | "
            f"{fit['load_average'][0]} |"
        )
    slopes = report["growth"]
    lines += [
        "",
        f"Growth with learners (slope of log cost on log learners; 1 = linear): wall time "
        f"{slopes['wall_seconds_exponent']}, peak memory {slopes['peak_rss_mb_exponent']}.",
        END,
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="1000,2500,5000,10000")
    parser.add_argument("--test", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--render", action="store_true", help="only rewrite README's block from --out")
    arguments = parser.parse_args()
    if arguments.render:
        report = json.loads(arguments.out.read_text())
        README.write_text(block_replace(README.read_text(), BEGIN, END, render(report), source=README))
        return
    report = run([int(size) for size in arguments.sizes.split(",")], arguments.test)
    emit(report, arguments.out)


if __name__ == "__main__":
    main()
