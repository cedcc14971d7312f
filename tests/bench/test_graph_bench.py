"""bench/graph.py on the committed DBE-KT22 slice: the experts' links read, every ranking scored
against them (psikt fitted briefly on each fold), the variant path, and the README block."""

from pathlib import Path

import numpy as np
import pytest

from bench import common, graph

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


@pytest.fixture
def on_the_slice(monkeypatch):
    monkeypatch.setattr(common, "DATASETS", FIXTURES)


def test_expert_links_are_read_both_ways(on_the_slice) -> None:
    skills = ("kc53", "kc54", "kc56", "kc999")
    links = graph.expert_links(skills)
    assert links[0, 1] and links[1, 0] and links[0, 2] and links[2, 0]  # rows 595/596 and 397 of the file
    assert not links[3].any() and not np.diag(links).any()


@pytest.mark.slow
def test_the_expert_graph_comparison_runs_on_the_slice(on_the_slice) -> None:
    result = graph.dbe(quick=True, folds=2, draws=20)
    assert result["expert_links"] > 0 and result["candidate_pairs"] > result["expert_links"]
    assert 0 < result["modal_successor_share"] <= 1
    assert result["unshared_pairs"] < result["candidate_pairs"]
    for name in ("psikt", *graph.MINERS):
        value = result["summary"][name]["average_precision"]["mean"]
        assert 0 <= value <= 1, name
        assert result["summary"][name]["average_precision"]["n"] == 2
    assert set(result["comparisons"]) == {f"psikt - {miner}" for miner in graph.MINERS}
    assert set(result["unshared_comparisons"]) == {"psikt - transition", "learner_correlation - transition"}
    variant = graph.dbe_variant(True, 2, {"dynamics": "ou"})
    assert variant["params"] == {"dynamics": "ou"} and len(variant["runs"]) == 2
    text = graph.render({"dbe": result, "dbe_variants": {"ou": variant}})
    assert "| transition miner |" in text and "| learner-correlation miner (correctness only) |" in text
    assert 'psikt with {"dynamics": "ou"} (ou), same folds' in text
    assert "consecutive answers go to the question most often answered" in text
