"""Continual learning for psikt: absorbing 1,000 new learners into a fitted course against a refit.
JSON on stdout.

    nice -n 19 .venv/bin/python bench/psikt_continual.py [--splits 2] [--quick] [--out FILE] [--render]

DBE-KT22 (1,214 learners) is cut by learner, for each split seed s: 1,000 learners are the
newcomers, the other 214 the base. psikt is fitted on the base; the newcomers' histories (all but
their last HORIZON answers) are then either absorbed into a copy of that fit (``PsiKT.absorb``: their
traits only, the course posterior frozen) or fitted together with the base from scratch (a refit).
Both predict each newcomer's last HORIZON answers from the history (tracing.evaluation's multi-step
protocol); the base fit without absorbing (population traits) is scored beside them. Differences
come as paired bootstrap 95% intervals by learner (``bootstrap_difference``). Times of ``fit`` and
``absorb`` alone, on one torch thread: the process's CPU seconds (what the ratios use: on a shared,
loaded machine wall-clock seconds swing with the other processes) and wall-clock seconds beside them.

Absorb settings, fixed before any run (none chosen on these figures): torch's Adam over the whole
trait table, 10 passes at a learning rate of 0.1 (the estimator's default until each learner had its
own Adam) and 2 passes at 0.3; each learner's own Adam (``per_learner``, ``RowAdam``: a learner moves
only on the step whose minibatch holds it), 2 passes at 0.3 (the candidate default, picked on split
0's validation answers below before this bench's run); and one chosen per split on validation
answers carved from the newcomers' histories, never the scored answers (:func:`choose_on_history`,
its rule fixed before the first run), among per-learner settings. An absorb pass
costs about what a fit step costs per learner (both run the same filter forward and backward), and
a fit costs ``steps`` x ``batch_size`` learner-passes whatever the number of learners, so absorbing
1,000 learners 10 times faster than a 150 x 128 refit leaves about 2 passes. With each learner's
own Adam the absorb steps all the newcomers at once (up to ``psikt.ABSORB_BATCH``) through
``psikt.prefix_filter``, which steps only the learners still in their history: a pass then costs
about half of eight minibatches of 128 (the filter's many small tensor operations are run once a
step, not eight times); torch's Adam keeps its minibatches.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from bench.common import REPO, block_replace, dataset_path, emit, peak_rss_mb  # noqa: E402
from tracing.data import Dataset, concat  # noqa: E402
from tracing.estimators import get_estimator  # noqa: E402
from tracing.evaluation import auc, bootstrap_difference, metrics, multistep_predict  # noqa: E402
from tracing.formats import load_dataset  # noqa: E402

HORIZON = 10
RESULTS = REPO / "bench" / "results" / "psikt_continual.json"
README = REPO / "README.md"
BEGIN, END = "<!-- bench:psikt-continual:begin -->", "<!-- bench:psikt-continual:end -->"
NEWCOMERS = 1000
ABSORB_SETTINGS: dict[str, dict[str, Any]] = {
    "default_10_passes": {"steps": 10, "learning_rate": 0.1, "per_learner": False},
    "budget_2_passes": {"steps": 2, "learning_rate": 0.3, "per_learner": False},
    "per_learner_2_passes": {"steps": 2, "learning_rate": 0.3, "per_learner": True},
}
# The settings the validation stage chooses among (fixed before its first run), against default_10_passes.
VALIDATION_GRID: list[dict[str, Any]] = [
    {"steps": steps, "learning_rate": rate, "per_learner": True} for steps in (1, 2, 3) for rate in (0.3, 0.5)
]
LEVEL_MARGIN = 0.002  # a cheaper setting may trail the default by this much AUC (point estimate) at most


def _auc_interval(correct: np.ndarray, probability: np.ndarray, groups: np.ndarray, draws: int = 1000) -> list[float]:
    """Percentile 95% interval of one model's AUC, resampling learners."""
    rng = np.random.default_rng(0)
    members = [np.flatnonzero(groups == group) for group in np.unique(groups)]
    values = []
    for _ in range(draws):
        rows = np.concatenate([members[index] for index in rng.integers(0, len(members), len(members))])
        values.append(auc(correct[rows], probability[rows]))
    low, high = np.nanpercentile(values, [2.5, 97.5])
    return [round(float(low), 4), round(float(high), 4)]


def one_split(data: Dataset, seed: int, params: dict[str, Any], newcomer_count: int = NEWCOMERS) -> dict[str, Any]:
    order = np.random.default_rng(seed).permutation(data.n_learners)
    newcomers = data.subset(np.sort(order[:newcomer_count]))
    base = data.subset(np.sort(order[newcomer_count:]))
    history = newcomers.truncate(np.maximum(newcomers.lengths - HORIZON, 0))
    psikt = get_estimator("psikt")
    clock = _Clock()
    base_fit = psikt(**params).fit(base, seed=seed)
    base_seconds = clock.lap()
    refit = psikt(**params).fit(concat(base, history), seed=seed)
    refit_seconds = clock.lap()
    answers, p_refit = multistep_predict(refit, newcomers, horizon=HORIZON)
    groups = np.repeat(np.arange(len(answers) // HORIZON), HORIZON)
    _, p_population = multistep_predict(base_fit, newcomers, horizon=HORIZON)
    result: dict[str, Any] = {
        "seed": seed,
        "base_learners": base.n_learners,
        "newcomers": newcomers.n_learners,
        "newcomer_history_rows": history.n_rows,
        "scored_learners": int(groups.max()) + 1 if len(groups) else 0,
        "base_fit_seconds": base_seconds,
        "refit_seconds": refit_seconds,
        "refit": {**_rounded(metrics(answers, p_refit)), "auc_interval": _auc_interval(answers, p_refit, groups)},
        "population_traits": {
            **_rounded(metrics(answers, p_population)),
            "minus_refit": _rounded(bootstrap_difference(answers, p_population, p_refit, groups)),
        },
    }
    validation = choose_on_history(base_fit, history, seed)
    result["validation"] = validation
    settings = {**ABSORB_SETTINGS, "validation_chosen": validation["chosen"]}
    for name, setting in settings.items():
        same = [other for other, earlier in settings.items() if earlier == setting and f"absorb_{other}" in result]
        if same:  # the validation chose a setting already run: the same absorb, not run twice
            result[f"absorb_{name}"] = result[f"absorb_{same[0]}"]
            continue
        absorbed: Any = copy.deepcopy(base_fit)
        clock = _Clock()
        absorbed.absorb(history, seed=seed, **setting)
        seconds = clock.lap()
        _, p_absorbed = multistep_predict(absorbed, newcomers, horizon=HORIZON)
        result[f"absorb_{name}"] = {
            **setting,
            "seconds": seconds,
            "speedup_over_refit_cpu": round(refit_seconds["cpu"] / seconds["cpu"], 2),
            "speedup_over_refit_wall": round(refit_seconds["wall"] / seconds["wall"], 2),
            **_rounded(metrics(answers, p_absorbed)),
            "minus_refit": _rounded(bootstrap_difference(answers, p_absorbed, p_refit, groups)),
            "minus_population_traits": _rounded(bootstrap_difference(answers, p_absorbed, p_population, groups)),
        }
        print(f"split {seed} {name}: {result[f'absorb_{name}']}", file=sys.stderr, flush=True)
    return result


def choose_on_history(base_fit: Any, history: Dataset, seed: int) -> dict[str, Any]:
    """The absorb setting chosen on validation answers carved from the newcomers' histories (what a
    refit trains on), never from the scored last HORIZON answers: each history less its own last
    HORIZON answers is absorbed into a copy of the base fit, those HORIZON answers predicted. The same
    1,000 learners, so the same minibatches per pass as the scored absorb (Adam's steps per learner
    depend on them).

    The rule, fixed before the first run: of VALIDATION_GRID, the setting with the fewest passes (then
    the higher validation AUC) whose paired bootstrap 95% interval of AUC minus the default's
    (ABSORB_SETTINGS' default_10_passes) reaches zero or above, its point estimate no more than
    LEVEL_MARGIN below; none such: the default."""
    inner = history.truncate(np.maximum(history.lengths - HORIZON, 0))
    default = ABSORB_SETTINGS["default_10_passes"]
    predicted: dict[tuple[Any, ...], np.ndarray] = {}
    answers = np.zeros(0)
    for setting in [default, *VALIDATION_GRID]:
        absorbed: Any = copy.deepcopy(base_fit)
        absorbed.absorb(inner, seed=seed, **setting)
        answers, predicted[_key(setting)] = multistep_predict(absorbed, history, horizon=HORIZON)
    groups = np.repeat(np.arange(len(answers) // HORIZON), HORIZON)
    reference = predicted[_key(default)]
    runs: list[dict[str, Any]] = [{**default, "validation_auc": round(auc(answers, reference), 4)}]
    for setting in VALIDATION_GRID:
        mine = predicted[_key(setting)]
        difference = bootstrap_difference(answers, mine, reference, groups)
        runs.append(
            {
                **setting,
                "validation_auc": round(auc(answers, mine), 4),
                "minus_default": round(difference["auc_difference"], 4),
                "minus_default_interval": [round(value, 4) for value in difference["auc_interval"]],
            }
        )
    chosen = pick(runs)
    print(f"validation: {runs} -> {chosen}", file=sys.stderr, flush=True)
    return {"scored_learners": int(groups.max()) + 1 if len(groups) else 0, "runs": runs, "chosen": chosen}


def pick(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """:func:`choose_on_history`'s rule on its runs (the default first): the setting to absorb with."""
    level = [run for run in runs[1:] if run["minus_default_interval"][1] >= 0 and run["minus_default"] >= -LEVEL_MARGIN]
    best = min(level, key=lambda run: (run["steps"], -run["validation_auc"])) if level else runs[0]
    return {name: best[name] for name in ("steps", "learning_rate", "per_learner") if name in best}


def _key(setting: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(sorted(setting.items()))


class _Clock:
    """CPU and wall-clock seconds since it was made or last read."""

    def __init__(self) -> None:
        self.cpu, self.wall = time.process_time(), time.perf_counter()

    def lap(self) -> dict[str, float]:
        cpu, wall = time.process_time(), time.perf_counter()
        lapse = {"cpu": round(cpu - self.cpu, 1), "wall": round(wall - self.wall, 1), "load": os.getloadavg()[0]}
        self.cpu, self.wall = cpu, wall
        return lapse


def _rounded(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 4)
    if isinstance(value, dict):
        return {key: _rounded(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_rounded(item) for item in value]
    return value


def _optimiser(setting: dict[str, Any]) -> str:
    return "own Adam, " if setting.get("per_learner") else ""


def _interval(pair: list[float], signed: bool = True) -> str:
    form = "+.4f" if signed else ".4f"
    return f"[{pair[0]:{form}}, {pair[1]:{form}}]"


def render(report: dict[str, Any]) -> str:
    """README's tables: one per split, refit against each absorb setting, CPU seconds beside wall-clock."""
    source = RESULTS.relative_to(REPO)
    lines = [BEGIN, f"<!-- rendered by bench/psikt_continual.py --render from {source}; do not edit by hand -->"]
    for split in report["splits"]:
        refit, population = split["refit"], split["population_traits"]
        seconds = split["refit_seconds"]
        lines += [
            "",
            f"Split {split['seed']}: {split['newcomers']:,} newcomers ({split['newcomer_history_rows']:,} history "
            f"rows), base {split['base_learners']}, {split['scored_learners']} learners scored.",
            "",
            "| split " + str(split["seed"]) + " | 10-step AUC | − refit (AUC) | − population traits (AUC) "
            "| CPU s (wall s, load) | refit ÷ absorb, CPU s |",
            "|---|---|---|---|---|---|",
            f"| refit (base + newcomers) | {refit['auc']:.4f} {_interval(refit['auc_interval'], signed=False)} | – | – "
            f"| {seconds['cpu']} ({seconds['wall']}, {seconds['load']:.1f}) | – |",
        ]
        for name, label in (
            ("default_10_passes", "absorb, torch Adam, previous default"),
            ("budget_2_passes", "absorb, torch Adam, budget"),
            ("per_learner_2_passes", "absorb, each learner's own Adam"),
            ("validation_chosen", "absorb, chosen on validation"),
        ):
            run = split.get(f"absorb_{name}")
            if run is None:
                continue
            took, minus, over = run["seconds"], run["minus_refit"], run["minus_population_traits"]
            lines.append(
                f"| {label} ({_optimiser(run)}{run['steps']} passes at {run['learning_rate']}) | {run['auc']:.4f} "
                f"| {minus['auc_difference']:+.4f} {_interval(minus['auc_interval'])} "
                f"| {over['auc_difference']:+.4f} {_interval(over['auc_interval'])} "
                f"| {took['cpu']} ({took['wall']}, {took['load']:.1f}) | {run['speedup_over_refit_cpu']}x |"
            )
        base = split["base_fit_seconds"]
        minus = population["minus_refit"]
        lines.append(
            f"| base fit, population traits (no absorb) | {population['auc']:.4f} "
            f"| {minus['auc_difference']:+.4f} {_interval(minus['auc_interval'])} | – "
            f"| (base fit {base['cpu']} ({base['wall']}, {base['load']:.1f})) | – |"
        )
        validation = split.get("validation")
        if validation:
            runs = "; ".join(
                f"{_optimiser(run)}{run['steps']}/{run['learning_rate']}: {run['validation_auc']:.4f}"
                + (
                    f" ({run['minus_default']:+.4f} {_interval(run['minus_default_interval'])})"
                    if "minus_default" in run
                    else ""
                )
                for run in validation["runs"]
            )
            chosen = validation["chosen"]
            lines += [
                "",
                f"Validation (split {split['seed']}, {validation['scored_learners']} learners, passes/rate: AUC "
                f"(− the previous default, 10/0.1 torch Adam)): {runs}. "
                f"Chosen: {_optimiser(chosen)}{chosen['steps']} passes at {chosen['learning_rate']}.",
            ]
    lines += ["", f"Load average at the end: {', '.join(f'{value:.1f}' for value in report['load_average'])}.", END]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--splits", type=int, default=2, help="this many split seeds, from --first-seed on")
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument(
        "--quick", action="store_true", help="20 fit steps, 100 newcomers (a smoke run; figures mean nothing)"
    )
    parser.add_argument("--out", type=Path, default=None, help=f"also write the JSON here (the README's: {RESULTS})")
    parser.add_argument("--render", action="store_true", help=f"only rewrite README's block from {RESULTS}")
    arguments = parser.parse_args()
    if arguments.render:
        report = json.loads(RESULTS.read_text())
        README.write_text(block_replace(README.read_text(), BEGIN, END, render(report), source=README))
        return
    params = {"steps": 20 if arguments.quick else 150, "batch_size": 128, "max_length": 150, "threads": 1}
    data = load_dataset(dataset_path("dbe_kt22", "pyedmine_preprocessed", "data.txt"), format="dbe")[0]
    started = time.perf_counter()
    splits = []
    for seed in range(arguments.first_seed, arguments.first_seed + arguments.splits):
        splits.append(one_split(data, seed, params, 100 if arguments.quick else NEWCOMERS))
        print(f"split {seed} done: {splits[-1]}", file=sys.stderr, flush=True)
    emit(
        {
            "dataset": "dbe_kt22",
            "learners": data.n_learners,
            "horizon": HORIZON,
            "params": params,
            "splits": splits,
            "load_average": os.getloadavg(),
            "peak_rss_mb": peak_rss_mb(),
            "total_seconds": round(time.perf_counter() - started, 1),
        },
        arguments.out,
    )


if __name__ == "__main__":
    main()
