"""bench/models.py: the expansion-row flag, row bookkeeping across protocols, README rendering."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from bench import models as bench
from tracing.data import Dataset


def _dataset(skills: list[list[int]], answers: list[list[int]]) -> Dataset:
    learner = np.repeat(np.arange(len(skills)), [len(s) for s in skills]).astype(np.int32)
    n_skills = 1 + max(max(s) for s in skills)
    return Dataset(
        learner=learner,
        item=np.concatenate(skills).astype(np.int32),
        correct=np.concatenate(answers).astype(np.float32),
        timestamp=np.arange(len(learner), dtype=float),
        q_matrix=np.eye(n_skills, dtype=bool),
        item_ids=tuple(map(str, range(n_skills))),
        skill_ids=tuple(map(str, range(n_skills))),
        learner_ids=tuple(f"l{i}" for i in range(len(skills))),
        has_time=False,
    )


def test_expansion_rows_flags_pairs_that_always_agree_never_from_the_row_itself():
    rng = np.random.default_rng(0)
    skills, answers = [], []
    for _ in range(30):
        # Skill 0 then 1 is one answer copied per skill (always the same correctness);
        # 2 then 3 are genuine neighbours whose answers agree about half the time.
        first, other = rng.integers(0, 2, 2)
        skills.append([0, 1, 2, 3])
        answers.append([first, first, other, rng.integers(0, 2)])
    data = _dataset(skills, answers)
    flags = bench.expansion_rows(data, min_pairs=20, agreement=0.98)
    assert flags.reshape(30, 4).tolist() == [[False, True, False, False]] * 30
    # A pair seen too rarely is never flagged.
    assert not bench.expansion_rows(data.subset(np.arange(10)), min_pairs=20).any()


def test_protocol_arrays_map_chunked_rows_back_to_flags():
    lengths = [5, 7]
    outcome = {
        "arrays": {
            "rows_learner": np.repeat([0, 1], lengths),
            "correct": np.arange(12) % 2 * 1.0,
            "next_step": np.linspace(0, 1, 12),
            "chunk_rows": np.array([1, 2, 3, 6, 7, 8, 9]),
            "chunked": np.linspace(0, 1, 7),
        }
    }
    flags = np.zeros(12, dtype=bool)
    flags[[2, 7]] = True
    offsets = np.array([0, 5])
    kept = bench._protocol_arrays([outcome], "chunked_without_expansion", flags, offsets)[0]
    assert kept[0].tolist() == (np.array([1, 3, 6, 8, 9]) % 2).tolist()
    assert len(kept[1]) == 5
    next_step = bench._protocol_arrays([outcome], "next_step_without_expansion", flags, offsets)[0]
    assert len(next_step[0]) == 10


def test_render_rewrites_only_the_marked_block(tmp_path):
    entry = {
        "auc": {"mean": 0.8, "std": 0.01, "n": 5},
        "rmse": {"mean": 0.4, "std": 0.002, "n": 5},
        "ece": 0.02,
        "rows": 100,
        "reliability": [{"low": 0.5, "high": 0.6, "n": 100, "predicted": 0.55, "observed": 0.56}],
    }
    report = {
        "results_file": "bench/results/models.json",
        "finished": "now",
        "commit": "abc",
        "folds": 5,
        "quick": False,
        "datasets": {
            "toy": {
                "what": "toy",
                "learners": 10,
                "rows": 100,
                "subsample": None,
                "protocols": {"next_step": {"bkt": entry, "dkt": entry}},
                "fits": {
                    m: {"fit_seconds": {"mean": 1.0}, "epochs": [None], "best_epoch": [None]} for m in ("bkt", "dkt")
                },
                "comparisons": [
                    {
                        "first": "dkt",
                        "second": "bkt",
                        "protocol": "next_step",
                        "auc_difference": 0.001,
                        "auc_interval": [-0.002, 0.004],
                        "rmse_difference": 0.0,
                        "rmse_interval": [-0.001, 0.001],
                    }
                ],
            }
        },
    }
    readme = tmp_path / "README.md"
    readme.write_text(f"before\n{bench.BEGIN}\nold figures\n{bench.END}\nafter\n")
    bench.readme_rewrite(json.loads(json.dumps(report)), readme)
    text = readme.read_text()
    assert text.startswith("before\n") and text.endswith("after\n") and "old figures" not in text
    assert "| DKT − BKT (skill) | next step, all earlier rows | +0.0010 [-0.0020, +0.0040] |" in text
    assert "level with" in text and "0.8000 ± 0.0100" in text
    readme.write_text("no block\n")
    with pytest.raises(SystemExit):
        bench.readme_rewrite(report, readme)


def _run(started: str, datasets: dict) -> dict:
    return {"quick": False, "folds": 5, "draws": 100, "commit": started, "started": started, "datasets": datasets}


def _result(models: list[str], learners: int = 10, comparisons: tuple[tuple[str, str, float], ...] = ()) -> dict:
    return {
        "learners": learners,
        "rows": 100,
        "folds": 5,
        "protocols": {"next_step": {m: {"auc": {"mean": 0.7}} for m in models}},
        "fits": {m: {"fit_seconds": {"mean": 1.0}} for m in models},
        "comparisons": [
            {"first": a, "second": b, "protocol": "next_step", "auc_difference": d} for a, b, d in comparisons
        ],
    }


def test_report_merge_adds_models_and_comparisons_and_keeps_earlier_ones():
    old = _run("t1", {"dbe": _result(["bkt", "dkt"], comparisons=[("dkt", "bkt", 0.1)])})
    new = _run("t2", {"dbe": _result(["bkt", "cakt"], comparisons=[("cakt", "bkt", 0.2), ("dkt", "bkt", 0.3)])})
    new["datasets"]["other"] = _result(["bkt"])
    merged = bench.report_merge(old, new)
    dbe = merged["datasets"]["dbe"]
    assert set(dbe["protocols"]["next_step"]) == {"bkt", "dkt", "cakt"}
    assert [(c["first"], c["auc_difference"]) for c in dbe["comparisons"]] == [("dkt", 0.3), ("cakt", 0.2)]
    # Each fit names its run; the older run's fits keep no label but the run list has both runs.
    assert dbe["fits"]["cakt"]["run"]["started"] == "t2" and "run" not in dbe["fits"]["dkt"]
    assert [run["started"] for run in merged["runs"]] == ["t1", "t2"]
    assert "other" in merged["datasets"] and "other" not in old["datasets"]
    # Writing the same run again (after each dataset) does not list it twice.
    assert [run["started"] for run in bench.report_merge(merged, new)["runs"]] == ["t1", "t2"]


def test_report_merge_replaces_a_dataset_measured_on_other_learners_and_refuses_quick_into_full():
    old = _run("t1", {"dbe": _result(["bkt", "dkt"])})
    merged = bench.report_merge(old, _run("t2", {"dbe": _result(["cakt"], learners=20)}))
    assert set(merged["datasets"]["dbe"]["protocols"]["next_step"]) == {"cakt"}
    with pytest.raises(ValueError):
        bench.report_merge(old, {**_run("t2", {}), "quick": True})


def test_streaming_block_renders_every_result_file_the_all_learner_run_first(tmp_path):
    run = {
        "dataset": "dbe_kt22",
        "learners": 3,
        "answers": 30,
        "every": 10,
        "models": {
            "dkt": {
                "blocks": [{"auc": 0.7, "ece": 0.01}],
                "latency_ms": {"median": 1.0, "p90": 2.0, "p99": 3.0},
                "refits": [{"seconds": 4.0}],
            }
        },
    }
    (tmp_path / "streaming-300learners.json").write_text(json.dumps({**run, "learners": 300}))
    (tmp_path / "streaming.json").write_text(json.dumps(run))
    reports = bench.streaming_reports(tmp_path)
    assert [name for name, _ in reports] == ["bench/results/streaming.json", "bench/results/streaming-300learners.json"]
    text = bench.render_streaming(reports)
    assert text.count("| DKT | 0.700 | 0.010 | 1.000 / 2.000 / 3.000 | 4.0 |") == 2
    assert text.index("3 learners") < text.index("300 learners")


def test_a_cached_fold_is_not_reused_after_a_default_changed(tmp_path, monkeypatch):
    """A fold is cached with its kind, full effective parameters, seed, sample and split: a changed
    registry default (CAKT's plateau_decay went from 0.5 to 1) must fit the fold again."""
    from tracing.estimators import hyper

    data = _dataset([[0, 1, 0, 1]] * 6, [[0, 1, 1, 1]] * 6)
    fits: list[dict] = []

    def fake_run(data, model, test_learners, fold, quick, override=None):
        manifest = bench.fold_manifest(data, model, test_learners, fold, quick, override)
        fits.append(manifest["params"])
        return {"arrays": {"next_step": np.full(3, 0.5)}, "meta": {"manifest": manifest}}

    monkeypatch.setattr(bench, "fold_run", fake_run)
    test = np.array([0, 1])

    def outcome(model="cakt", learners=test, data=data):
        return bench.fold_outcome(tmp_path, data, "key", model, learners, 0, quick=False)[1]

    assert outcome() is True
    assert outcome() is False  # same everything: read from the cache
    # The default changes in the registry (not in the bench's own parameters).
    cakt = hyper.BY_KIND["cakt"]
    changed = [dataclasses.replace(p, default=0.5) if p.name == "plateau_decay" else p for p in cakt.params]
    monkeypatch.setitem(hyper.BY_KIND, "cakt", dataclasses.replace(cakt, params=tuple(changed)))
    assert outcome() is True
    assert [f["plateau_decay"] for f in fits] == [1.0, 0.5]
    assert outcome() is False
    # Another split, another sample or the bench's own parameters: fitted again too.
    assert outcome(learners=np.array([0, 2])) is True
    assert outcome(data=data.subset(np.arange(5))) is True
    monkeypatch.setitem(bench.MODELS, "cakt", ("cakt", {"threads": 1, "frame": 4}))
    assert outcome(data=data.subset(np.arange(5))) is True


def test_a_fold_cached_without_a_manifest_is_not_read(tmp_path, capsys):
    data = _dataset([[0, 1, 0, 1]] * 4, [[0, 1, 1, 1]] * 4)
    bench.fold_store(tmp_path, "key", "bkt", 0, {"arrays": {"x": np.zeros(2)}, "meta": {"params": {}}})
    manifest = bench.fold_manifest(data, "bkt", np.array([0]), 0, quick=False)
    assert bench.fold_cached(tmp_path, "key", "bkt", 0, manifest) is None
    assert "no manifest" in capsys.readouterr().err


def _outcomes(data: Dataset, folds: list[np.ndarray], rng: np.random.Generator) -> list[dict]:
    """Per fold what fold_run keeps, with random predictions (every row scored; no chunk cut)."""
    result = []
    for test_learners in folds:
        test = data.subset(test_learners)
        long_enough = test_learners[test.lengths > bench.HORIZON]
        result.append(
            {
                "arrays": {
                    "rows_learner": test_learners[test.learner],
                    "correct": test.correct.astype(np.float64),
                    "next_step": rng.random(test.n_rows),
                    "chunk_rows": np.arange(test.n_rows),
                    "chunked": rng.random(test.n_rows),
                    "multistep_learner": np.repeat(long_enough, bench.HORIZON),
                    "multistep_correct": np.concatenate(
                        [data.correct[data.rows(learner)][-bench.HORIZON :] for learner in long_enough]
                    ).astype(float),
                    "multistep": rng.random(bench.HORIZON * len(long_enough)),
                },
                "meta": {"fit_seconds": 1.0, "params": {}},
            }
        )
    return result


def test_a_partial_model_is_compared_on_the_folds_both_models_have():
    from tracing.evaluation import learner_folds

    rng = np.random.default_rng(0)
    skills = [list(rng.integers(0, 3, 15)) for _ in range(20)]
    data = _dataset(skills, [list(rng.integers(0, 2, 15)) for _ in range(20)])
    folds = learner_folds(data.n_learners, folds=5, seed=0)
    results = {"dkt": _outcomes(data, folds, rng), "cakt": _outcomes(data, folds, rng)[:2]}
    result = bench.summarise("dbe_kt22", data, results, None, draws=50, subsample=None, folds=5)
    assert result["folds"] == 5
    assert result["fits"]["cakt"]["folds_used"] == 2 and "folds_used" not in result["fits"]["dkt"]
    assert result["protocols"]["next_step"]["dkt"]["rows"] == 300
    assert result["protocols"]["next_step"]["cakt"]["rows"] == 15 * sum(len(f) for f in folds[:2])
    compared = [c for c in result["comparisons"] if c["protocol"] == "next_step"]
    assert [(c["first"], c["second"], c["folds_used"]) for c in compared] == [("cakt", "dkt", 2)]
    # The difference is the one on the two folds alone.
    alone = bench.summarise(
        "dbe_kt22", data, {m: r[:2] for m, r in results.items()}, None, draws=50, subsample=None, folds=2
    )
    same = [c for c in alone["comparisons"] if c["protocol"] == "next_step"][0]
    assert same["auc_difference"] == compared[0]["auc_difference"]
    assert same["auc_interval"] == compared[0]["auc_interval"]
    report = {"results_file": "x", "finished": "now", "commit": "abc", "folds": 5, "quick": False, "datasets": {}}
    report["datasets"]["dbe_kt22"] = result
    text = bench.render(report)
    assert "CAKT (2 of 5 folds)" in text and "(on the 2 of 5 folds both have)" in text


def test_render_names_fits_whose_defaults_changed_since():
    from tracing.estimators.hyper import BY_KIND

    today = BY_KIND["cakt"].check({"threads": 1}, owner="cakt")
    fits = {"cakt": {"effective_params": {**today, "plateau_decay": 0.5}}, "dkt": {"params": {}}}
    report = {"quick": False, "datasets": {"assist2015": {"fits": fits}}}
    assert bench.stale_fits(report) == ["assist2015 cakt: plateau_decay 0.5 then, 1.0 now"]
    fits["cakt"]["effective_params"]["plateau_decay"] = 1.0
    assert bench.stale_fits(report) == []


def test_a_partial_fit_does_not_replace_a_complete_one_in_the_merge():
    def result(models: dict[str, int | None]) -> dict:
        fits = {m: {"fit_seconds": {}, **({"folds_used": k} if k else {})} for m, k in models.items()}
        table = {m: {"auc": {"mean": 0.7 if k else 0.8}} for m, k in models.items()}
        return {"learners": 10, "rows": 100, "folds": 5, "protocols": {"next_step": table}, "fits": fits}

    def report(started: str, models: dict[str, int | None], comparisons: list[dict]) -> dict:
        res = {**result(models), "comparisons": comparisons}
        return {"quick": False, "folds": 5, "started": started, "datasets": {"d": res}}

    old = report("a", {"dkt": None, "bkt_item": None}, [{"first": "dkt", "second": "bkt_item", "protocol": "p"}])
    pair = {"first": "cakt", "second": "dkt", "protocol": "p", "folds_used": 2}
    fewer = {"first": "dkt", "second": "bkt_item", "protocol": "p", "folds_used": 2}
    new = report("b", {"dkt": 2, "cakt": 2}, [pair, fewer])
    merged = bench.report_merge(old, new)["datasets"]["d"]
    assert "folds_used" not in merged["fits"]["dkt"] and merged["fits"]["cakt"]["folds_used"] == 2
    assert merged["protocols"]["next_step"]["dkt"]["auc"]["mean"] == 0.8
    assert len(merged["comparisons"]) == 2 and pair in merged["comparisons"] and fewer not in merged["comparisons"]
