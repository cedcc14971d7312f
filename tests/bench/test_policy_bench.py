"""bench/policy.py: figures per seed set, paired intervals by learner, README rendering (no Django)."""

from __future__ import annotations

import numpy as np

from bench import policy as bench


def _outcome(rng: np.random.Generator, skill: float, *, items: float) -> dict:
    asked = 100
    known = int(rng.integers(10, 50))
    return {
        "items_to_mastery": None if items > 300 else int(items),
        "posttest": float(np.clip(skill, 0.0, 1.0)),
        "asked": asked,
        "asked_known": known,
        "asked_ready": asked - known - 5,
        "reasons": {"frontier": 90, "confirm": 10},
    }


def _parts(sets: int = 3, learners: int = 20) -> list[dict]:
    rng = np.random.default_rng(0)
    parts = []
    for index in range(sets):
        talent = rng.uniform(0.2, 0.6, learners)  # the same learners under every arm
        arms = {}
        for arm, lift in (("fixed", 0.0), ("oracle", 0.4), ("ours", 0.25), ("ours_no_exposure", 0.24)):
            outcomes = [_outcome(rng, value + lift, items=400 - 600 * (value + lift) / 2) for value in talent]
            timings = {"interaction_record_s": 1.0, "interaction_record_calls": 100}
            arms[arm] = {"outcomes": outcomes, "timings": timings}
        parts.append(
            {
                "simulator": "classic",
                "set": index,
                "seeds": list(range(learners)),
                "arms": arms,
                "prepare_s": 1.0,
                "run_s": 2.0,
                "fit_metrics": None,
            }
        )
    return parts


def test_summary_pairs_learners_and_renders_the_targets():
    arms = ["fixed", "oracle", "ours", "ours_no_exposure"]
    summary = bench.summarise_simulator(_parts(), arms, 300, draws=200)
    assert summary["sets"] == 3 and summary["learners"] == 60
    ours = summary["arms"]["ours"]
    assert ours["over_sets"]["posttest"]["n"] == 3 and ours["reasons"] == {"frontier": 5400, "confirm": 600}
    rows = {(row["first"], row["second"]): row for row in summary["comparisons"]}
    # ours vs fixed: a large real gap; ours vs no exposure: 0.01 on every learner, so the interval is tight.
    assert rows[("ours", "fixed")]["posttest"]["excludes_zero"]
    assert rows[("ours", "ours_no_exposure")]["posttest"]["estimate"] > 0
    gap = summary["gap_closed"]["ours"]
    assert 0.5 < gap["estimate"] < 0.75 and gap["interval"][0] - 1e-9 <= gap["estimate"] <= gap["interval"][1] + 1e-9
    assert len(summary["per_learner"]["ours"]["posttest"]) == 60
    report = {
        "commit": "abc1234",
        "date": "2026-12-06 16:00 UTC",
        "sets": 3,
        "learners_per_set": [20],
        "pilot_learners": 200,
        "pilot_items": 150,
        "max_items": 300,
        "draws": 200,
        "wall_s": 600.0,
        "workers": 2,
        "load_average_before": [1.0, 1.0, 1.0],
        "load_average_after": [2.0, 2.0, 2.0],
        "simulators": {"classic": summary},
    }
    text = bench.render(report)
    assert "60 learners in 3 sets" in text and "ours − fixed" in text
    assert "at least half of the gap" in text and "exposure control costs at most 5%" in text
    readme = f"intro\n{bench.BEGIN}\nold figures\n{bench.END}\nafter\n"
    rewritten = bench._block_replace(readme, text)
    assert "old figures" not in rewritten and rewritten.startswith("intro\n") and rewritten.endswith("after\n")
