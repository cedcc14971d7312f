"""Online traits for new learners (issue 17, items 2 and 6): JSON.

    KT_DATASETS=../shared/datasets .venv/bin/python bench/traits.py [--quick] [--folds 5]
        [--traits encoder|svi] [--out bench/results/traits.json]

DBE-KT22, five folds by learner (``learner_folds``, seed 0, as bench/models.py). On each fold psikt
is fitted on the other learners: with its trait encoder (``--traits encoder``: ``encoder=True``,
otherwise registry defaults) or at the registry defaults, the service's own (``--traits svi``).
Each held-out learner is then a new learner: their first 20 answers are predicted one at a time,
answer t from answers 0..t-1, twice:

- ``population``: the population's traits throughout (what the service gave new learners);
- ``online``: traits re-inferred before each answer from the answers so far: by the encoder's
  forward pass, or (``svi``) by ``traits_infer``, the per-learner SVI the service runs after a
  learner's burst of answers at its defaults.

Knowledge is filtered over the answers so far in both. AUC and RMSE on those rows, a paired
bootstrap by learner (pooled folds) for online minus population, and the encoder model's next-step
AUC on all the held-out rows (beside bench/models.py's psikt, same folds).
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

import numpy as np  # noqa: E402

from bench.common import block_replace, dataset_path, emit, in_child  # noqa: E402
from tracing.data import Dataset  # noqa: E402
from tracing.evaluation import bootstrap_difference, learner_folds, mean_std, metrics  # noqa: E402
from tracing.formats import load_dataset  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
FIRST = 20
# --traits -> the results file and README's block; "encoder" keeps the names it had alone.
METHODS = {
    "encoder": ("traits.json", "traits", "psikt with its trait encoder", "by the encoder"),
    "svi": ("traits-svi.json", "traits-svi", "psikt at its defaults", "by `traits_infer` (per-learner SVI)"),
}


def first_answers(model: Any, test: Dataset, first: int) -> dict[str, np.ndarray]:
    """Per held-out row t < ``first``: the answer, P(correct) with population and with online traits."""
    population = np.repeat(model.arrays["population_loc"][None, :], test.n_learners, axis=0)
    rows: dict[str, list[np.ndarray]] = {"correct": [], "population": [], "online": [], "learner": []}
    for step in range(first):
        have = np.flatnonzero(test.lengths > step)
        if not len(have):
            break
        window = test.subset(have)
        upto = window.truncate(np.minimum(window.lengths, step + 1))  # rows 0..step
        last = upto.offsets[1:] - 1
        if step == 0:
            online_traits = population[have]
        else:
            # traits_infer is the encoder's forward pass on a model fitted with one, else the per-learner SVI.
            online_traits, _ = model.traits_infer(window.truncate(np.minimum(window.lengths, step)))
        rows["correct"].append(upto.correct[last])
        rows["population"].append(model.predict_proba_given(upto, population[have])[last])
        rows["online"].append(model.predict_proba_given(upto, online_traits)[last])
        rows["learner"].append(np.asarray(test.learner_ids)[have])
    return {name: np.concatenate(parts) for name, parts in rows.items()}


def fold_run(data: Dataset, held_out: np.ndarray, quick: bool, fold: int, method: str) -> dict[str, Any]:
    from tracing.estimators import get_estimator

    train = data.subset(np.setdiff1d(np.arange(data.n_learners), held_out))
    test = data.subset(held_out)
    params: dict[str, Any] = {
        "threads": 1,
        **({"encoder": True} if method == "encoder" else {}),
        **({"steps": 20} if quick else {}),
    }
    started = time.perf_counter()
    model = get_estimator("psikt")(**params).fit(train, seed=fold)
    seconds = time.perf_counter() - started
    rows = first_answers(model, test, FIRST)
    next_step = metrics(test.correct, model.predict_proba(test))
    return {"fit_seconds": round(seconds, 1), "rows": rows, "next_step": next_step}


def _f(block: dict[str, Any]) -> str:
    return f"{block['mean']:.4f} ± {block['std']:.4f}"


def render(results: dict[str, Any], method: str) -> str:
    s, c = results["summary"], results["online_minus_population"]
    how = METHODS[method][3]
    low, high = c["auc_interval"]
    verdict = (
        "online traits above population traits"
        if low > 0
        else "online traits below population traits"
        if high < 0
        else "level with"
    )
    return "\n".join(
        [
            f"{results['what']}; {results['folds']} folds by learner, {results['rows']:,} predicted answers "
            f"(load average {results['load_average_at_start']:.1f} at the start):",
            "",
            "| traits of a new learner | AUC, first 20 answers | RMSE |",
            "|---|---|---|",
            f"| population's (what a new learner got before) | {_f(s['population']['auc'])} | "
            f"{_f(s['population']['rmse'])} |",
            f"| re-inferred before each answer {how} | {_f(s['online']['auc'])} | {_f(s['online']['rmse'])} |",
            "",
            f"Online minus population, paired bootstrap by learner: AUC {c['auc_difference']:+.4f} "
            f"[{low:+.4f}, {high:+.4f}] ({verdict}). This model's next-step AUC on all held-out rows: "
            f"{_f(s['model_next_step_auc'])}.",
        ]
    )


def readme_render(out: Path, method: str) -> None:
    text = README.read_text()
    body = render(json.loads(out.read_text()), method)
    begin, end = f"<!-- bench:{METHODS[method][1]}:begin -->", f"<!-- bench:{METHODS[method][1]}:end -->"
    README.write_text(block_replace(text, begin, end, f"{begin}\n{body}\n{end}", source=README))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--traits", choices=sorted(METHODS), default="encoder", help="how online traits are inferred")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--render", action="store_true", help="rewrite README's block from --out and stop")
    args = parser.parse_args()
    name = METHODS[args.traits][0]
    out = args.out or (REPO / ".bench" / f"quick-{name}" if args.quick else REPO / "bench" / "results" / name)
    if args.render:
        readme_render(out, args.traits)
        return
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    load_start = os.getloadavg()[0]
    data = load_dataset(dataset_path("dbe_kt22", "pyedmine_preprocessed", "data.txt"), format="dbe")[0]
    parts = learner_folds(data.n_learners, folds=args.folds, seed=0)
    if args.quick:
        parts = parts[:2]
    folds, pooled = [], []
    for fold, held_out in enumerate(parts):
        result = in_child(fold_run, data, held_out, args.quick, fold, args.traits)
        rows = result["rows"]
        scored = {name: metrics(rows["correct"], rows[name]) for name in ("population", "online")}
        folds.append({"fold": fold, "fit_seconds": result["fit_seconds"], "next_step": result["next_step"], **scored})
        pooled.append(rows)
        print(f"fold {fold}: {json.dumps(folds[-1])}", file=sys.stderr)
    rows = {name: np.concatenate([part[name] for part in pooled]) for name in pooled[0]}
    summary: dict[str, Any] = {
        name: {"auc": mean_std([f[name]["auc"] for f in folds]), "rmse": mean_std([f[name]["rmse"] for f in folds])}
        for name in ("population", "online")
    }
    summary["model_next_step_auc"] = mean_std([f["next_step"]["auc"] for f in folds])
    comparison = bootstrap_difference(
        rows["correct"], rows["online"], rows["population"], rows["learner"], draws=args.draws
    )
    results = {
        "what": f"DBE-KT22, new learners' first {FIRST} answers, {METHODS[args.traits][2]}",
        "quick": args.quick,
        "folds": len(parts),
        "rows": int(len(rows["correct"])),
        "summary": summary,
        "online_minus_population": comparison,
        "per_fold": folds,
        "load_average_at_start": load_start,
        "load_average_at_end": os.getloadavg()[0],
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    emit({"out": str(out), "summary": summary, "online_minus_population": comparison})


if __name__ == "__main__":
    main()
