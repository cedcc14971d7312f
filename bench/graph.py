"""The learned prerequisite graph against experts' links and simple miners (issue 17, item 5): JSON.

    KT_DATASETS=../shared/datasets .venv/bin/python bench/graph.py [--quick] [--only dbe|simulated]
        [--folds 5] [--out bench/results/graph.json] [--render]
        [--variant NAME --params '{"dynamics": "ou"}']   # psikt with other settings, same folds

**DBE-KT22.** The course's experts linked its knowledge components (KCs) by 101 undirected links
(``raw/KC_Relationships.csv``). psikt (registry defaults) is fitted on the training part of each of
five folds by learner (4/5 of the learners); its edge probabilities, and four miners on the same
learners' answers, rank every unordered pair of the KCs questions use:

- ``transition``: consecutive answers moving between the two KCs, over what their frequencies predict;
- ``conditional``: better first answers on one KC after doing well on the other (the classic test);
- ``learner_correlation``: how strongly learners who beat expectations on one KC also do on the
  other, from questions of one KC only (what correctness alone says, without order or shared
  questions: the signal a graph learned from answers has to work with);
- ``shared_items``: questions tagged with both KCs (metadata only, no answers; a reference: two KCs
  on one question are often linked by the same experts who tagged it);
- ``random``: the expected figures of a random ranking.

Scores: average precision (AP) over all pairs, precision = recall of the best 101 pairs, and for
psikt the graph it reports (edges with probability >= 0.5, as stored with a fit). Orientation:
where a model's direction for an expert link agrees with the order learners meet its two KCs in.
Mean ± std over folds; a paired bootstrap over candidate pairs (fold-averaged scores) for AP
differences. AP is also given over the pairs that share no question, where tagging cannot help
and only answers (their order and correctness) can.

**Simulated.** Graph seeds 1001-1005 (never used while psikt was developed; bench/psikt.py uses
0-4), 15 skills, 1,000 learners x 60 answers from ``curriculum.simulation_sittings`` (learning gated
softly by prerequisites, forgetting only between sittings, per-item guess and slip: not psikt's
mechanism), learners taught in one of three class orders with a mastery streak. psikt with its
defaults; directed precision and recall of its reported graph, and the miners' best-|E| directed
edges.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from bench.common import block_replace, dataset_path, emit, in_child  # noqa: E402
from tracing.data import Dataset  # noqa: E402
from tracing.evaluation import learner_folds, mean_std  # noqa: E402
from tracing.formats import load_dataset  # noqa: E402
from tracing.prerequisites import (  # noqa: E402
    average_precision,
    bootstrap_ap_difference,
    candidate_pairs,
    conditional_correctness,
    first_met,
    learner_correlation,
    orientation_agreement,
    shared_items,
    top_k,
    transition_lift,
    undirected,
)

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results" / "graph.json"
README = REPO / "README.md"
BEGIN, END = "<!-- bench:graph:begin -->", "<!-- bench:graph:end -->"
MINERS = ("transition", "conditional", "learner_correlation", "shared_items")
SIM_SEEDS = (1001, 1002, 1003, 1004, 1005)


def miner_scores(data: Dataset) -> dict[str, np.ndarray]:
    return {
        "transition": transition_lift(data),
        "conditional": conditional_correctness(data),
        "learner_correlation": learner_correlation(data),
        "shared_items": shared_items(data),
    }


def _psikt_fit(data: Dataset, quick: bool, seed: int, extra: dict[str, Any] | None = None) -> tuple[np.ndarray, float]:
    from tracing.estimators import get_estimator

    params: dict[str, Any] = {"threads": 1, **({"steps": 20} if quick else {}), **(extra or {})}
    start = time.perf_counter()
    fitted: Any = get_estimator("psikt")(**params).fit(data, seed=seed)
    return fitted.edge_probabilities(), time.perf_counter() - start


# ---------------------------------------------------------------- DBE-KT22


def expert_links(skill_ids: tuple[str, ...]) -> np.ndarray:
    """(K, K) symmetric bool: the experts' KC links among ``skill_ids`` (``kc<id>``)."""
    index = {name: position for position, name in enumerate(skill_ids)}
    links = np.zeros((len(skill_ids), len(skill_ids)), dtype=bool)
    with dataset_path("dbe_kt22", "raw", "KC_Relationships.csv").open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            a = index.get(f"kc{row['from_knowledgecomponent_id'].strip()}")
            b = index.get(f"kc{row['to_knowledgecomponent_id'].strip()}")
            if a is not None and b is not None and a != b:
                links[a, b] = links[b, a] = True
    return links


def _score_block(scores: dict[str, np.ndarray], pairs: _Pairs, order: np.ndarray) -> dict[str, Any]:
    labels, first, second, unshared = pairs.labels, pairs.first, pairs.second, pairs.unshared
    k = int(labels.sum())
    out: dict[str, Any] = {}
    for name, score in scores.items():
        pair_score = undirected(score, first, second)
        out[name] = {
            "average_precision": average_precision(labels, pair_score),
            "average_precision_unshared": average_precision(labels[unshared], pair_score[unshared]),
            "top_k": top_k(labels, pair_score, k),
            "orientation": orientation_agreement(score, first[labels], second[labels], order),
        }
    return out


def modal_successor_share(data: Dataset) -> float:
    """The share of consecutive answers (same learner) whose question is the one most often
    answered after the previous question: near 1 when every learner follows one fixed order, the
    case where the transition miner reads the syllabus's order rather than learners' choices."""
    same = np.flatnonzero(data.learner[1:] == data.learner[:-1])
    if not len(same):
        return float("nan")
    pairs = np.asarray(data.item[same], dtype=np.int64) * data.n_items + data.item[same + 1]
    counts = np.bincount(pairs, minlength=data.n_items * data.n_items).reshape(data.n_items, data.n_items)
    return float(counts.max(axis=1).sum() / len(same))


@dataclass(frozen=True)
class _Pairs:
    """DBE-KT22 and the experts' links over every unordered pair of the KCs questions use."""

    data: Dataset
    links: np.ndarray  # (K, K) symmetric bool
    first: np.ndarray  # the pairs (first[j], second[j]), first < second
    second: np.ndarray
    labels: np.ndarray  # per pair: the experts link it
    unshared: np.ndarray  # per pair: no question carries both KCs


def _dbe_pairs(quick: bool, folds: int) -> tuple[_Pairs, list[np.ndarray]]:
    """The candidate pairs and the held-out learners of each fold used (the first two when ``quick``)."""
    data = load_dataset(dataset_path("dbe_kt22", "pyedmine_preprocessed", "data.txt"), format="dbe")[0]
    links = expert_links(data.skill_ids)
    first, second = candidate_pairs(np.asarray(data.q_matrix.any(axis=0)))
    unshared = undirected(shared_items(data), first, second) == 0
    parts = learner_folds(data.n_learners, folds=folds, seed=0)
    return _Pairs(data, links, first, second, links[first, second], unshared), parts[:2] if quick else parts


def _training(data: Dataset, held_out: np.ndarray) -> Dataset:
    return data.subset(np.setdiff1d(np.arange(data.n_learners), held_out))


def dbe_variant(quick: bool, folds: int, params: dict[str, Any]) -> dict[str, Any]:
    """psikt with ``params`` over the registry defaults, on :func:`dbe`'s folds and scores (no miners)."""
    pairs, parts = _dbe_pairs(quick, folds)
    runs = []
    for fold, held_out in enumerate(parts):
        train = _training(pairs.data, held_out)
        probability, seconds = in_child(_psikt_fit, train, quick, fold, params)
        block = _score_block({"psikt": probability}, pairs, first_met(train))["psikt"]
        runs.append(block | {"max_probability": float(probability.max()), "fit_seconds": round(seconds, 1)})
        print(f"dbe variant {params} fold {fold}: AP {block['average_precision']:.4f}", file=sys.stderr)
    return {
        "params": params,
        "summary": {
            key: mean_std([run[key] for run in runs]) for key in ("average_precision", "average_precision_unshared")
        }
        | {"precision_at_k": mean_std([run["top_k"]["precision"] for run in runs])},
        "runs": runs,
    }


def dbe(quick: bool, folds: int, draws: int) -> dict[str, Any]:
    pairs, parts = _dbe_pairs(quick, folds)
    data, links, labels, unshared = pairs.data, pairs.links, pairs.labels, pairs.unshared
    first, second = pairs.first, pairs.second
    runs: list[dict[str, Any]] = []
    averaged: dict[str, np.ndarray] = {}
    for fold, held_out in enumerate(parts):
        train = _training(data, held_out)
        scores = miner_scores(train)
        probability, seconds = in_child(_psikt_fit, train, quick, fold)
        scores["psikt"] = probability
        block = _score_block(scores, pairs, first_met(train))
        reported = probability >= 0.5
        block["psikt"]["reported_graph"] = {
            "edges": int(reported.sum()),
            "undirected_hits": int(((reported | reported.T) & links).sum() // 2),
            "max_probability": float(probability.max()),
        }
        block["psikt"]["fit_seconds"] = round(seconds, 1)
        runs.append(block)
        for name, score in scores.items():
            averaged[name] = averaged.get(name, 0) + score / len(parts)
        print(
            f"dbe fold {fold}: " + json.dumps({n: round(b["average_precision"], 4) for n, b in block.items()}),
            file=sys.stderr,
        )
    summary: dict[str, Any] = {}
    for name in ("psikt", *MINERS):
        summary[name] = {
            "average_precision": mean_std([run[name]["average_precision"] for run in runs]),
            "average_precision_unshared": mean_std([run[name]["average_precision_unshared"] for run in runs]),
            "precision_at_k": mean_std([run[name]["top_k"]["precision"] for run in runs]),
            "orientation_agree": mean_std([run[name]["orientation"]["agree"] for run in runs]),
        }
    density = float(labels.mean())
    summary["random"] = {
        "average_precision": {"mean": density},
        "average_precision_unshared": {"mean": float(labels[unshared].mean())},
        "precision_at_k": {"mean": density},
    }
    comparisons = {
        f"psikt - {miner}": bootstrap_ap_difference(
            labels,
            undirected(averaged["psikt"], first, second),
            undirected(averaged[miner], first, second),
            draws=draws,
        )
        for miner in MINERS
    }
    # Where tagging cannot help: does psikt, or correctness alone, beat the order of answers?
    unshared_comparisons = {
        f"{name} - transition": bootstrap_ap_difference(
            labels[unshared],
            undirected(averaged[name], first, second)[unshared],
            undirected(averaged["transition"], first, second)[unshared],
            draws=draws,
        )
        for name in ("psikt", "learner_correlation")
    }
    return {
        "what": "DBE-KT22: 93 KCs used by questions, expert links undirected",
        "candidate_pairs": int(len(labels)),
        "expert_links": int(labels.sum()),
        "modal_successor_share": modal_successor_share(data),
        "unshared_pairs": int(unshared.sum()),
        "unshared_links": int(labels[unshared].sum()),
        "folds": len(parts),
        "fit_learners": [int(data.n_learners - len(part)) for part in parts],
        "summary": summary,
        "comparisons": comparisons,
        "unshared_comparisons": unshared_comparisons,
        "runs": runs,
    }


# ---------------------------------------------------------------- simulated


def _document(graph: np.ndarray, seed: int) -> dict[str, Any]:
    rng = np.random.default_rng([seed, 3])
    n = len(graph)
    skills = [{"id": f"s{k}", "name": f"skill {k}"} for k in range(n)]
    prerequisites = [{"from": f"s{i}", "to": f"s{k}"} for i, k in zip(*np.nonzero(graph))]
    items = [
        {"id": f"s{k}-{j}", "skills": [f"s{k}"], "difficulty": int(rng.integers(1, 4)), "text": "?"}
        for k in range(n)
        for j in range(4)
    ]
    return {"skills": skills, "prerequisites": prerequisites, "items": items}


def simulate_sittings(graph: np.ndarray, *, learners: int, answers: int, seed: int) -> Dataset:
    """Learners of ``curriculum.simulation_sittings`` taught in one of three class orders (a random
    topological order each): the current skill's questions until two right in a row or five tries,
    with one answer in ten a review of an earlier skill."""
    from curriculum.simulation_sittings import SittingsCourse, SittingsLearner
    from tracing.simulate import course_order

    course = SittingsCourse.from_document(_document(graph, seed), seed=seed)
    items_of = course.skill_items()
    order_rng = np.random.default_rng([seed, 4])
    orders = [course_order(graph, order_rng) for _ in range(3)]
    rng = np.random.default_rng([seed, 5])
    rows: dict[str, list[Any]] = {"learner": [], "item": [], "correct": [], "timestamp": []}
    for learner in range(learners):
        person = SittingsLearner(course, seed=seed * 100_000 + learner)
        order = orders[learner % 3]
        position, tries, streak = 0, 0, 0
        for _ in range(answers):
            review = position > 0 and (position >= len(order) or rng.random() < 0.1)
            skill = int(order[rng.integers(min(position, len(order)))]) if review else int(order[position])
            item = int(rng.choice(items_of[skill]))
            correct, moment = person.answer(item)
            if not review:
                tries, streak = tries + 1, (streak + 1 if correct else 0)
                if streak >= 2 or tries >= 5:
                    position, tries, streak = position + 1, 0, 0
            rows["learner"].append(learner)
            rows["item"].append(item)
            rows["correct"].append(correct)
            rows["timestamp"].append(moment)
    n = len(graph)
    q = np.zeros((len(course.item_ids), n), dtype=bool)
    for item, skills in enumerate(course.item_skills):
        q[item, list(skills)] = True
    return Dataset(
        learner=np.asarray(rows["learner"], dtype=np.int32),
        item=np.asarray(rows["item"], dtype=np.int32),
        correct=np.asarray(rows["correct"], dtype=np.float32),
        timestamp=np.asarray(rows["timestamp"], dtype=np.float64),
        q_matrix=q,
        item_ids=course.item_ids,
        skill_ids=tuple(f"s{k}" for k in range(n)),
        learner_ids=tuple(f"sim{learner}" for learner in range(learners)),
        has_time=True,
    )


def _directed(score: np.ndarray, truth: np.ndarray, k: int) -> dict[str, float]:
    masked = score.astype(np.float64).copy()
    np.fill_diagonal(masked, -np.inf)
    best = np.argsort(-masked, axis=None, kind="stable")[:k]
    found = np.zeros_like(truth)
    found.flat[best] = True
    hits = int((found & truth).sum())
    return {"precision": hits / k if k else 0.0, "recall": hits / max(int(truth.sum()), 1)}


def simulated(quick: bool) -> dict[str, Any]:
    from tracing.simulate import random_prerequisite_graph

    learners, answers = (200, 40) if quick else (1000, 60)
    seeds = SIM_SEEDS[:2] if quick else SIM_SEEDS
    runs = []
    for seed in seeds:
        graph = random_prerequisite_graph(15, seed=seed)
        data = simulate_sittings(graph, learners=learners, answers=answers, seed=seed)
        probability, seconds = in_child(_psikt_fit, data, quick, 0)
        reported = probability >= 0.5
        hits = int((reported & graph).sum())
        truth_edges = int(graph.sum())
        run: dict[str, Any] = {
            "graph_seed": seed,
            "true_edges": truth_edges,
            "psikt": {
                "reported_edges": int(reported.sum()),
                "precision": hits / int(reported.sum()) if reported.any() else 0.0,
                "recall": hits / truth_edges,
                "max_probability": float(probability.max()),
                "best_k": _directed(probability, graph, truth_edges),
                "fit_seconds": round(seconds, 1),
            },
        }
        for name, score in miner_scores(data).items():
            if name != "shared_items":  # one skill an item here: nothing shared
                run[name] = {"best_k": _directed(score, graph, truth_edges)}
        runs.append(run)
        print(f"simulated seed {seed}: {json.dumps(run)}", file=sys.stderr)
    summary = {
        "psikt_reported": {
            "precision": mean_std([r["psikt"]["precision"] for r in runs]),
            "recall": mean_std([r["psikt"]["recall"] for r in runs]),
        },
        **{
            name: {"best_k_precision": mean_std([r[name]["best_k"]["precision"] for r in runs])}
            for name in ("psikt", "transition", "conditional")
        },
    }
    return {
        "what": "curriculum.simulation_sittings learners, 15 skills, class orders with a mastery streak",
        "learners": learners,
        "answers": answers,
        "graph_seeds": list(seeds),
        "summary": summary,
        "runs": runs,
    }


# ---------------------------------------------------------------- README


def _f(summary: dict[str, Any]) -> str:
    if summary["mean"] != summary["mean"]:  # NaN: a symmetric score gives a link no direction
        return "-"
    if "std" not in summary:
        return f"{summary['mean']:.3f}"
    return f"{summary['mean']:.3f} ± {summary['std']:.3f}"


def _interval(block: dict[str, Any], subject: str = "psikt") -> str:
    low, high = block["interval"]
    verdict = "above" if low > 0 else "below" if high < 0 else "level with"
    return f"{block['difference']:+.4f} [{low:+.4f}, {high:+.4f}] ({subject} {verdict})"


def render(results: dict[str, Any]) -> str:
    lines = []
    if "dbe" in results:
        d = results["dbe"]
        s = d["summary"]
        lines += [
            f"DBE-KT22, {d['expert_links']} expert links among the {d['candidate_pairs']} pairs of KCs "
            "that questions use; "
            f"{d['folds']} folds by learner (fitted on {min(d['fit_learners'])}-{max(d['fit_learners'])} learners), "
            "mean ± std over folds:",
            "",
            "| ranking | average precision | AP, pairs sharing no question "
            f"({d['unshared_links']} links in {d['unshared_pairs']} pairs) | precision = recall, best "
            f"{d['expert_links']} pairs | orientation agrees with the order learners meet KCs |",
            "|---|---|---|---|---|",
        ]
        names = {
            "psikt": "psikt's edge probabilities",
            "transition": "transition miner",
            "conditional": "conditional-correctness miner",
            "learner_correlation": "learner-correlation miner (correctness only)",
            "shared_items": "shared questions (metadata only)",
            "random": "random ranking (expected)",
        }
        for name, label in names.items():
            row = s[name]
            orient = _f(row["orientation_agree"]) if "orientation_agree" in row else "-"
            lines.append(
                f"| {label} | {_f(row['average_precision'])} | {_f(row['average_precision_unshared'])} | "
                f"{_f(row['precision_at_k'])} | {orient} |"
            )
        lines += ["", "Paired bootstrap over pairs (fold-averaged scores), difference in average precision:", ""]
        for name, block in d["comparisons"].items():
            lines.append(f"- {name}: {_interval(block)}")
        lines += ["", "The same over the pairs that share no question:", ""]
        for name, block in d["unshared_comparisons"].items():
            lines.append(f"- {name}: {_interval(block, name.split(' ')[0])}")
        reported = [run["psikt"]["reported_graph"] for run in d["runs"]]
        lines += [
            "",
            f"psikt's reported graph (edges at probability >= 0.5): {[r['edges'] for r in reported]} edges per fold, "
            f"highest edge probability {max(r['max_probability'] for r in reported):.3f}.",
        ]
        for name, variant in results.get("dbe_variants", {}).items():
            v = variant["summary"]
            lines += [""]
            lines.append(
                f"psikt with {json.dumps(variant['params'])} ({name}), same folds: average precision "
                f"{_f(v['average_precision'])}, over pairs sharing no question {_f(v['average_precision_unshared'])}."
            )
        if "modal_successor_share" in d:
            lines += [
                "",
                f"{d['modal_successor_share']:.1%} of consecutive answers go to the question most often answered "
                "after the previous one: learners follow one fixed order of questions.",
            ]
    if "simulated" in results:
        m = results["simulated"]
        s = m["summary"]
        lines += [
            "",
            f"Simulated (a simulator with another learning mechanism, graph seeds {m['graph_seeds']} unused in "
            f"development, {m['learners']} learners x {m['answers']} answers, 15 skills), mean ± std over graphs:",
            "",
            "| ranking | precision | recall |",
            "|---|---|---|",
            f"| psikt's reported graph (>= 0.5) | {_f(s['psikt_reported']['precision'])} | "
            f"{_f(s['psikt_reported']['recall'])} |",
            f"| psikt, best \\|E\\| edges | {_f(s['psikt']['best_k_precision'])} | (= precision) |",
            f"| transition miner, best \\|E\\| | {_f(s['transition']['best_k_precision'])} | (= precision) |",
            f"| conditional miner, best \\|E\\| | {_f(s['conditional']['best_k_precision'])} | (= precision) |",
        ]
    return "\n".join(lines)


def readme_render(out: Path) -> None:
    results = json.loads(out.read_text())
    text = README.read_text()
    README.write_text(block_replace(text, BEGIN, END, f"{BEGIN}\n{render(results)}\n{END}", source=README))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", choices=("dbe", "simulated"))
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--render", action="store_true")
    parser.add_argument("--variant", help="name of a psikt variant to fit on the DBE-KT22 folds (with --params)")
    parser.add_argument("--params", type=json.loads, default={}, help="the variant's psikt parameters, JSON")
    args = parser.parse_args()
    out = args.out or (REPO / ".bench" / "graph-quick.json" if args.quick else RESULTS)
    if args.render:
        readme_render(out)
        return
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    results: dict[str, Any] = json.loads(out.read_text()) if out.exists() else {}
    results.update({"quick": args.quick, "load_average_at_start": os.getloadavg()[0]})
    if args.variant:
        results.setdefault("dbe_variants", {})[args.variant] = dbe_variant(args.quick, args.folds, args.params)
    elif args.only in (None, "dbe"):
        results["dbe"] = dbe(args.quick, args.folds, args.draws)
    if not args.variant and args.only in (None, "simulated"):
        results["simulated"] = simulated(args.quick)
    results["load_average_at_end"] = os.getloadavg()[0]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    emit(
        {key: value for key, value in results.items() if key not in ("dbe", "dbe_variants", "simulated")}
        | {"out": str(out)}
    )


if __name__ == "__main__":
    main()
