"""bench/pykt_models.py: pyKT's sequence files and the mapping of its predictions back onto our rows."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import numpy as np

from bench import models as bench
from bench import pykt_models
from tracing.data import Dataset
from tracing.evaluation import chunked

# Stands in for pyKT's worker: predicts each scored row's own answer (and so shows which row it
# took each prediction for), reading only the test file, as the real worker does.
FAKE_WORKER = textwrap.dedent(
    """
    import argparse, json
    from pathlib import Path
    import numpy as np
    parser = argparse.ArgumentParser()
    for name in ("--folder", "--model", "--num-q", "--num-c", "--seed", "--config"):
        parser.add_argument(name)
    args = parser.parse_args()
    folder = Path(args.folder)
    lines = (folder / "test_sequences.csv").read_text().splitlines()
    header = lines[0].split(",")
    prediction = []
    for line in lines[1:]:
        fields = line.split('"')[1::2]
        responses, masks = fields[-2].split(","), fields[-1].split(",")
        prediction += [float(r) * 0.5 + 0.25 for r, m in zip(responses[1:], masks[1:]) if m == "1"]
    np.savez(folder / "predictions.npz", prediction=np.array(prediction))
    print(json.dumps({"epochs": 1, "best_epoch": 1, "best_valid_auc": 0.5, "fit_seconds": 0.0,
                      "header": header, "num_q": int(args.num_q), "num_c": int(args.num_c)}))
    """
)


def _dataset(lengths: list[int], n_items: int, n_skills: int, seed: int = 0) -> Dataset:
    rng = np.random.default_rng(seed)
    n = sum(lengths)
    q_matrix = np.zeros((n_items, n_skills), dtype=bool)
    q_matrix[np.arange(n_items), np.arange(n_items) % n_skills] = True
    return Dataset(
        learner=np.repeat(np.arange(len(lengths)), lengths).astype(np.int32),
        item=rng.integers(0, n_items, n).astype(np.int32),
        correct=rng.integers(0, 2, n).astype(np.float32),
        timestamp=np.arange(n, dtype=float),
        q_matrix=q_matrix,
        item_ids=tuple(f"i{i}" for i in range(n_items)),
        skill_ids=tuple(f"s{i}" for i in range(n_skills)),
        learner_ids=tuple(f"l{i}" for i in range(len(lengths))),
        has_time=False,
    )


def _run(tmp_path, data: Dataset, test_learners: np.ndarray) -> tuple[dict, Dataset]:
    script = tmp_path / "fake_worker.py"
    script.write_text(FAKE_WORKER)
    train = data.subset(np.setdiff1d(np.arange(data.n_learners), test_learners))
    test = data.subset(test_learners)
    return pykt_models.fold_run(
        train, test, "pykt_akt", 0, tmp_path / "fold", quick=True, python=Path(sys.executable), script=script
    ), test


def test_predictions_land_on_the_rows_that_pyKT_scores(tmp_path):
    # Learners longer than a chunk, and one whose last piece (2 rows) pyKT drops.
    data = _dataset([450, 30, 202, 2, 12, 260, 5, 40], n_items=12, n_skills=4)
    test_learners = np.array([0, 2, 3, 6])
    outcome, test = _run(tmp_path, data, test_learners)
    arrays = outcome["arrays"]
    _, piece_rows, scored = chunked(test)
    assert arrays["chunk_rows"].tolist() == piece_rows[scored].tolist()
    # The fake predicts 0.75 for a right answer and 0.25 for a wrong one: each prediction sits on its row.
    assert np.array_equal(arrays["chunked"], arrays["correct"][arrays["chunk_rows"]] * 0.5 + 0.25)
    # Every scored row is one of ours that is neither a piece's first nor in a piece under 3 rows.
    position = np.arange(test.n_rows) - test.offsets[test.learner]
    assert set(position[arrays["chunk_rows"]] % 200) <= set(range(1, 200))
    pieces = [min(200, n - start) for n in (450, 202, 2, 5) for start in range(0, n, 200)]
    assert len(arrays["chunked"]) == sum(length - 1 for length in pieces if length >= 3)


def test_items_distinct_from_skills_go_in_as_questions_plus_their_first_skill(tmp_path):
    data = _dataset([20, 30, 25, 40, 22], n_items=12, n_skills=4)
    outcome, _ = _run(tmp_path, data, np.array([1]))
    assert outcome["meta"]["header"] == ["fold", "uid", "questions", "concepts", "responses", "selectmasks"]
    assert (outcome["meta"]["num_q"], outcome["meta"]["num_c"]) == (12, 4)
    line = (tmp_path / "fold" / "train_valid_sequences.csv").read_text().splitlines()[1]
    questions, concepts = ([int(v) for v in f.split(",")] for f in line.split('"')[1:4:2])
    assert [c for c in concepts if c >= 0] == [q % 4 for q in questions if q >= 0]


def test_skill_only_data_goes_in_as_concepts_without_questions_and_the_same_validation_learners(tmp_path):
    from tracing.estimators.deep import validation_split

    data = _dataset([20, 30, 25, 40, 22, 31, 17, 50, 9, 12, 26, 33], n_items=4, n_skills=4)
    outcome, _ = _run(tmp_path, data, np.array([0, 5]))
    assert outcome["meta"]["header"] == ["fold", "uid", "concepts", "responses", "selectmasks"]
    assert outcome["meta"]["num_q"] == 0
    lines = (tmp_path / "fold" / "train_valid_sequences.csv").read_text().splitlines()[1:]
    in_validation = sorted(int(line.split(",")[1]) for line in lines if line.startswith("0,"))
    # Our deep models' early-stopping learners for this fold (seed = fold = 0), by training index.
    assert in_validation == validation_split(10, 0.1, 0)[1].tolist()


def test_a_model_with_chunked_predictions_only_joins_that_protocol_and_its_comparisons():
    lengths = [5, 7]
    ours = {
        "arrays": {
            "rows_learner": np.repeat([0, 1], lengths),
            "correct": np.arange(12) % 2 * 1.0,
            "next_step": np.linspace(0.1, 0.9, 12),
            "chunk_rows": np.array([1, 2, 3, 4, 6, 7, 8, 9, 10, 11]),
            "chunked": np.linspace(0.1, 0.9, 10),
            "multistep_learner": np.array([], dtype=int),
            "multistep_correct": np.array([]),
            "multistep": np.array([]),
        },
        "meta": {"fit_seconds": 1.0, "params": {}},
    }
    theirs = {
        "arrays": {k: ours["arrays"][k] for k in ("rows_learner", "correct", "chunk_rows")}
        | {"chunked": np.linspace(0.9, 0.1, 10)},
        "meta": {"fit_seconds": 2.0, "params": {}, "epochs": 11, "best_epoch": 1},
    }
    data = _dataset(lengths, n_items=4, n_skills=4)
    assert not bench._has_protocol(theirs, "next_step") and bench._has_protocol(theirs, "chunked")
    spec = bench.DATASETS["assist2015"]
    original = spec["comparisons"]
    try:
        spec["comparisons"] = [("dkt", "pykt_akt")]
        result = bench.summarise(
            "assist2015", data, {"dkt": [ours, ours], "pykt_akt": [theirs, theirs]}, None, draws=50, subsample=None
        )
    finally:
        spec["comparisons"] = original
    assert "pykt_akt" in result["protocols"]["chunked"] and "pykt_akt" not in result["protocols"]["next_step"]
    assert [(c["first"], c["second"], c["protocol"]) for c in result["comparisons"]] == [("dkt", "pykt_akt", "chunked")]


def _anchor_result(difference: float, interval: list[float]) -> dict:
    def entry(auc: float) -> dict:
        return {"auc": {"mean": auc, "std": 0.01, "n": 5}}

    comparison = {
        "first": "dkt",
        "second": "pykt_akt",
        "protocol": "chunked",
        "auc_difference": difference,
        "auc_interval": interval,
        "rmse_difference": 0.002,
        "rmse_interval": [0.001, 0.003],
    }
    weaker = dict(comparison, first="bkt", auc_difference=difference - 0.05, auc_interval=[-0.07, -0.04])
    return {
        "protocols": {"chunked": {"dkt": entry(0.80), "bkt": entry(0.75), "pykt_akt": entry(0.80 - difference)}},
        "fits": {"dkt": {}, "bkt": {}, "pykt_akt": {"fit_seconds": {"mean": 1.0, "std": 0.0, "n": 5}}},
        "comparisons": [weaker, comparison],
    }


def test_the_anchor_sentence_names_our_best_model_and_by_how_much_it_falls_short():
    (_, below), (_, level) = (
        bench.anchor_sentences(_anchor_result(-0.0123, [-0.02, -0.005])),
        bench.anchor_sentences(_anchor_result(-0.001, [-0.004, 0.002])),
    )
    assert "our best model here, DKT (AUC 0.8000)" in below
    assert "does not reach it: it is short by 0.0123 AUC (-0.0123 [-0.0200, -0.0050]" in below
    assert "reaches it (level with it" in level
    # Without a pyKT model in the run there is no sentence; the cost line says why it is missing.
    result = _anchor_result(-0.0123, [-0.02, -0.005])
    del result["fits"]["pykt_akt"]
    assert bench.anchor_sentences(result) == []
    cost = {
        "model": "akt",
        "config": {"batch_size": 64},
        "started": "now",
        "load_average_at_start": [3.0],
        "datasets": {
            "assist2015": {
                "cpu_seconds_per_step": 27.0,
                "train_batches_per_epoch": 11,
                "cpu_seconds_per_epoch": 310.0,
                "least_cpu_hours_per_fold": 0.96,
                "least_cpu_hours_5_folds": 4.7,
                "peak_memory_mb": 13000.0,
            }
        },
    }
    (_, line) = bench.pykt_cost_sentence("assist2015", result, cost)
    assert "a fold takes at least 1.0 CPU hours (11 epochs" in line and "5 folds at least 4.7 CPU hours" in line
    assert bench.pykt_cost_sentence("dbe_kt22", result, cost) == []
