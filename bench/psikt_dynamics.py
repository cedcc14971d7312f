"""psikt's two dynamics on DBE-KT22 (issue 17, item 1): chosen on validation, both reported on test.

    nice -n 19 .venv/bin/python bench/psikt_dynamics.py --stage validation --use-folds 2
    nice -n 19 .venv/bin/python bench/psikt_dynamics.py --stage test --use-folds 2
    .venv/bin/python bench/psikt_dynamics.py --render

``jump`` (the default) and ``ou`` (the paper's dynamics, ``dynamics="ou"``) run with bench/models.py's
settings (registry defaults, one torch thread), on its folds of DBE-KT22 (5 folds by learner, seed 0).

Validation (the choice): for each fold used, the fold's training learners only: 20% of them
(drawn with seed 1000 + fold) are the validation learners, each variant is fitted on the other 80%
(seed = fold) and predicts the validation learners as unseen learners (population traits): the
10-step AUC (each learner's last 10 answers from the rows before them) and the next-step AUC. The
fold's test learners are never read. The rule, fixed before the run: ``ou`` replaces the default
only when the paired bootstrap 95% interval of its 10-step AUC gain over ``jump`` (validation
learners of the folds used pooled, each fold's learners counted apart, resampled with
replacement) lies above zero; otherwise ``jump`` stays. (A bootstrap, not bench/choices.py's
per-fold rule, because the time left allowed few folds, and one fold's gain is "positive on every
fold" by itself.) The per-fold gains are reported beside it.

Test (the report): bench/models.py's ``fold_run`` for ``psikt``, ``psikt_ou`` and ``bkt_item``
(item-level BKT, KT-IDEM) on the first ``--use-folds`` folds, and its ``summarise`` (AUC mean and
sd over folds, paired bootstrap 95% intervals of psikt_ou - psikt and of each against bkt_item, on
next step, 10 steps ahead, and 10 steps ahead with each test learner's history absorbed). Fold
predictions are cached under ``.bench/models/`` as bench/models.py caches them.
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
from bench.common import REPO, block_replace
from tracing.evaluation import bootstrap_difference, learner_folds, mean_std, metrics, multistep_predict

OUT = REPO / "bench" / "results" / "psikt_dynamics.json"
BEGIN, END = "<!-- bench:psikt-dynamics:begin -->", "<!-- bench:psikt-dynamics:end -->"
DATASET = "dbe_kt22"
VARIANTS = ("psikt", "psikt_ou")  # jump (the default), ou
VALIDATION_SHARE = 0.2
COMPARISONS = [("psikt_ou", "psikt"), ("psikt_ou", "bkt_item"), ("psikt", "bkt_item")]


def validation_fold(fold: int, *, quick: bool) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Both variants fitted on 80% of fold ``fold``'s training learners, scored on the other 20%:
    (figures, the 10-step answers, each variant's probabilities and the learner of each row)."""
    from tracing.estimators import get_estimator

    sample, _, _, _ = bench.bench_sample(DATASET, quick=quick)
    test_learners = learner_folds(sample.n_learners, folds=bench.FOLDS, seed=0)[fold]
    training = np.setdiff1d(np.arange(sample.n_learners), test_learners)
    shuffled = np.random.default_rng(1000 + fold).permutation(training)
    count = int(round(VALIDATION_SHARE * len(training)))
    valid = sample.subset(np.sort(shuffled[:count]))
    fitting = sample.subset(np.sort(shuffled[count:]))
    rows: dict[str, Any] = {}
    arrays: dict[str, np.ndarray] = {}
    for variant in VARIANTS:
        kind, params = bench.MODELS[variant]
        params = {**params, **(bench.QUICK_PARAMS.get(variant, {}) if quick else {})}
        started = time.perf_counter()
        model: Any = get_estimator(kind)(**params).fit(fitting, seed=fold)
        fit_seconds = time.perf_counter() - started
        next_step = metrics(valid.correct, model.predict_proba(valid))["auc"]
        answers, ahead = multistep_predict(model, valid, horizon=bench.HORIZON)
        arrays["answers"], arrays[variant] = answers, ahead
        rows[variant] = {
            "multistep_auc": float(metrics(answers, ahead)["auc"]),
            "next_step_auc": float(next_step),
            "fit_seconds": fit_seconds,
            "final_loss": model.losses[-1],
        }
        print(f"{time.strftime('%H:%M:%S')} validation fold {fold} {variant}: {rows[variant]}", file=sys.stderr)
    long_enough = np.flatnonzero(valid.lengths > bench.HORIZON)
    arrays["learners"] = np.repeat(fold * 1_000_000 + long_enough, bench.HORIZON)
    figures = {"fold": fold, "fitting_learners": fitting.n_learners, "validation_learners": valid.n_learners}
    return {**figures, **rows}, arrays


def validation_cached(fold: int, *, quick: bool) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """:func:`validation_fold`, kept under ``.bench/psikt-dynamics-valid/`` (a rerun with more folds
    reads the folds already done)."""
    path = REPO / ".bench" / f"psikt-dynamics-valid{'-quick' if quick else ''}" / f"fold{fold}"
    if path.with_suffix(".json").exists():
        with np.load(path.with_suffix(".npz")) as stored:
            return json.loads(path.with_suffix(".json").read_text()), {key: stored[key] for key in stored.files}
    figures, arrays = validation_fold(fold, quick=quick)
    path.parent.mkdir(parents=True, exist_ok=True)
    kept: dict[str, Any] = arrays
    np.savez_compressed(path.with_suffix(".npz"), **kept)
    path.with_suffix(".json").write_text(json.dumps(figures))
    return figures, arrays


def validation(use_folds: int, quick: bool) -> dict[str, Any]:
    runs, arrays = zip(*(validation_cached(fold, quick=quick) for fold in range(use_folds)))
    gains = [run["psikt_ou"]["multistep_auc"] - run["psikt"]["multistep_auc"] for run in runs]
    next_gains = [run["psikt_ou"]["next_step_auc"] - run["psikt"]["next_step_auc"] for run in runs]
    pooled = {key: np.concatenate([fold[key] for fold in arrays]) for key in arrays[0]}
    interval = bootstrap_difference(
        pooled["answers"], pooled["psikt_ou"], pooled["psikt"], pooled["learners"], draws=1000, seed=0
    )
    low, high = interval["auc_interval"]
    decision = {
        "pooled_gain": float(interval["auc_difference"]),
        "interval": [float(low), float(high)],
        "clear": bool(low > 0 or high < 0),
        "winner": "second" if low > 0 else "first",
    }
    return {
        "folds_used": use_folds,
        "runs": runs,
        "multistep_auc": {v: mean_std([run[v]["multistep_auc"] for run in runs]) for v in VARIANTS},
        "next_step_auc": {v: mean_std([run[v]["next_step_auc"] for run in runs]) for v in VARIANTS},
        "gain_ou_minus_jump_multistep": gains,
        "gain_ou_minus_jump_next_step": next_gains,
        "decision": decision,
        "chosen": "ou" if decision["winner"] == "second" else "jump",
    }


def test(use_folds: int, quick: bool, draws: int, models: tuple[str, ...], cached_only: bool) -> dict[str, Any] | None:
    """The test folds of ``models`` (fitted where not cached), then, when all three models were
    asked for, the summary; ``cached_only``: summarise the leading folds that all three have cached."""
    sample, flags, cache_key, subsample = bench.bench_sample(DATASET, quick=quick)
    folds = learner_folds(sample.n_learners, folds=bench.FOLDS, seed=0)[:use_folds]
    work = REPO / ".bench" / ("models-quick" if quick else "models")
    if cached_only:
        done = [
            all(
                bench.fold_cached(work, cache_key, m, f, bench.fold_manifest(sample, m, folds[f], f, quick))
                for m in models
            )
            for f in range(len(folds))
        ]
        folds = folds[: done.index(False) if False in done else len(done)]
    results: dict[str, list[dict[str, Any]]] = {}
    for model in models:
        outcomes = []
        for fold, test_learners in enumerate(folds):
            outcome, fitted = bench.fold_outcome(work, sample, cache_key, model, test_learners, fold, quick)
            if fitted:
                print(f"{time.strftime('%H:%M:%S')} test {model} fold {fold} done", file=sys.stderr, flush=True)
            outcomes.append(outcome)
        results[model] = outcomes
    if set(models) != {"bkt_item", *VARIANTS}:
        return None
    summary = bench.summarise(DATASET, sample, results, flags, draws, subsample, comparisons=COMPARISONS)
    for protocol in summary["protocols"].values():
        for table in protocol.values():
            table.pop("reliability", None)
    return summary


def _pm(entry: dict[str, float], folds: int = 2) -> str:
    """mean ± sd, or the one fold's figure alone."""
    return f"{entry['mean']:.4f} ± {entry['std']:.4f}" if folds > 1 else f"{entry['mean']:.4f}"


def render(report: dict[str, Any]) -> str:
    lines = []
    valid = report.get("validation")
    if valid:
        decision = valid["decision"]
        lines += [
            f"Validation ({valid['folds_used']} of bench/models.py's 5 DBE-KT22 folds; in each, 20% of the "
            "training learners held out, the variants fitted on the other 80%; code "
            f"{valid['commit']}, {valid['started']}, load average {valid['load_average_at_start'][0]:.1f}):",
            "",
            "| dynamics | 10 steps ahead AUC | next step AUC | fit seconds (wall) |",
            "|---|---|---|---|",
        ]
        for variant, name in zip(VARIANTS, ("jump (default)", "ou (the paper's)")):
            seconds = np.mean([run[variant]["fit_seconds"] for run in valid["runs"]])
            used = valid["folds_used"]
            lines.append(
                f"| {name} | {_pm(valid['multistep_auc'][variant], used)} "
                f"| {_pm(valid['next_step_auc'][variant], used)} | {seconds:.0f} |"
            )
        gains = ", ".join(f"{g:+.4f}" for g in valid["gain_ou_minus_jump_multistep"])
        low, high = decision["interval"]
        lines += [
            "",
            f"10-step AUC of ou − jump on the validation learners: {decision['pooled_gain']:+.4f}, paired "
            f"bootstrap 95% interval [{low:+.4f}, {high:+.4f}] (per fold: {gains}); the rule (ou only "
            f"when the interval is above zero) keeps **{valid['chosen']}**"
            + (" as the default." if valid["chosen"] == "jump" else ": it becomes the default."),
            "",
        ]
    tested = report.get("test")
    if tested:
        lines += [
            f"Test ({tested['folds']} of the 5 folds; code {report['test_run']['commit']}, "
            f"{report['test_run']['started']}, load average {report['test_run']['load_average_at_start'][0]:.1f}; "
            f"AUC{' mean ± sd over folds' if tested['folds'] > 1 else ''}):",
            "",
            "| model | next step | 10 steps ahead | 10 steps ahead, history absorbed | fit seconds (wall) |",
            "|---|---|---|---|---|",
        ]
        protocols, folds = tested["protocols"], tested["folds"]
        for model in ("psikt", "psikt_ou", "bkt_item"):
            absorbed = protocols.get("multistep_absorbed", {}).get(model)
            lines.append(
                f"| {bench.LABELS[model]} | {_pm(protocols['next_step'][model]['auc'], folds)} "
                f"| {_pm(protocols['multistep'][model]['auc'], folds)} "
                f"| {_pm(absorbed['auc'], folds) if absorbed else '–'} "
                f"| {tested['fits'][model]['fit_seconds']['mean']:.0f} |"
            )
        lines += [
            "",
            "| difference (paired bootstrap 95% interval, learners resampled) | protocol | AUC |",
            "|---|---|---|",
        ]
        for comparison in tested["comparisons"]:
            if comparison["protocol"] not in {"next_step", "multistep"}:
                continue
            low, high = comparison["auc_interval"]
            lines.append(
                f"| {comparison['first']} − {comparison['second']} | {comparison['protocol']} "
                f"| {comparison['auc_difference']:+.4f} [{low:+.4f}, {high:+.4f}]: {bench.verdict(comparison)} |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stage", choices=("validation", "test"))
    parser.add_argument("--use-folds", type=int, default=bench.FOLDS, help="the first K of the 5 folds")
    parser.add_argument("--quick", action="store_true", help="200 learners, 20 SVI steps: a check, not claims")
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--models", default="bkt_item,psikt,psikt_ou", help="test: only fit these (no summary)")
    parser.add_argument("--cached-only", action="store_true", help="test: summarise the folds already fitted")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--render", action="store_true", help="rewrite README's block from --out and stop")
    args = parser.parse_args()
    report = json.loads(args.out.read_text()) if args.out.exists() else {}
    if args.render:
        readme = bench.README.read_text()
        block = f"{BEGIN}\n{render(report)}\n{END}"
        bench.README.write_text(block_replace(readme, BEGIN, END, block, source=bench.README))
        return
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    run: dict[str, Any] = {"commit": bench._commit(), "started": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    run["load_average_at_start"] = os.getloadavg()
    if args.stage == "validation":
        report["validation"] = {**run, **validation(args.use_folds, args.quick)}
    elif args.stage == "test":
        summary = test(args.use_folds, args.quick, args.draws, tuple(args.models.split(",")), args.cached_only)
        if summary is None:
            return
        report["test"] = summary
        report["test_run"] = {**run, "finished": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    report.setdefault("quick", args.quick)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1, default=float) + "\n")
    print(json.dumps(report.get(args.stage or "", {}).get("decision", {}), indent=1))


if __name__ == "__main__":
    main()
