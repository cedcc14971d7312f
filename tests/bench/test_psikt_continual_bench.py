"""bench/psikt_continual.py: its validation rule picks as written, and its README block renders."""

from bench import psikt_continual


def _run(steps, rate, auc, minus=None, interval=None):
    run = {"steps": steps, "learning_rate": rate, "validation_auc": auc}
    if minus is not None:
        run.update(minus_default=minus, minus_default_interval=interval)
    return run


def test_the_rule_takes_the_fewest_passes_level_with_the_default():
    default = _run(10, 0.1, 0.76)
    runs = [
        default,
        _run(2, 0.3, 0.75, -0.010, [-0.015, -0.005]),  # below: its interval excludes zero
        _run(2, 0.5, 0.757, -0.003, [-0.008, 0.001]),  # level, but trails by more than the margin
        _run(3, 0.3, 0.758, -0.002, [-0.005, 0.001]),  # level
        _run(3, 0.5, 0.759, -0.001, [-0.004, 0.002]),  # level and higher: wins the tie on passes
        _run(4, 0.3, 0.761, 0.001, [-0.002, 0.004]),
    ]
    assert psikt_continual.pick(runs) == {"steps": 3, "learning_rate": 0.5}
    assert psikt_continual.pick([default, runs[1], runs[2]]) == {"steps": 10, "learning_rate": 0.1}
    own = {**_run(2, 0.3, 0.76, 0.0, [-0.003, 0.003]), "per_learner": True}
    assert psikt_continual.pick([default, own]) == {"steps": 2, "learning_rate": 0.3, "per_learner": True}


def test_the_block_renders_every_split_and_setting():
    difference = {"auc_difference": -0.005, "auc_interval": [-0.009, -0.001]}
    seconds = {"cpu": 40.0, "wall": 60.0, "load": 3.0}
    absorb = {
        "steps": 3,
        "learning_rate": 0.3,
        "seconds": {"cpu": 4.0, "wall": 5.0, "load": 3.0},
        "speedup_over_refit_cpu": 10.0,
        "auc": 0.76,
        "minus_refit": difference,
        "minus_population_traits": difference,
    }
    split = {
        "seed": 0,
        "newcomers": 1000,
        "newcomer_history_rows": 119548,
        "base_learners": 214,
        "scored_learners": 927,
        "base_fit_seconds": seconds,
        "refit_seconds": seconds,
        "refit": {"auc": 0.763, "auc_interval": [0.75, 0.77]},
        "population_traits": {"auc": 0.735, "minus_refit": difference},
        "absorb_default_10_passes": {**absorb, "steps": 10, "learning_rate": 0.1},
        "absorb_per_learner_2_passes": {**absorb, "steps": 2, "per_learner": True},
        "absorb_validation_chosen": absorb,
        "validation": {
            "scored_learners": 900,
            "runs": [_run(10, 0.1, 0.75), _run(3, 0.3, 0.751, 0.001, [-0.002, 0.004])],
            "chosen": {"steps": 3, "learning_rate": 0.3},
        },
    }
    block = psikt_continual.render({"splits": [split, {**split, "seed": 1}], "load_average": [3.0, 2.0, 1.0]})
    assert block.startswith(psikt_continual.BEGIN) and block.endswith(psikt_continual.END)
    assert "| absorb, chosen on validation (3 passes at 0.3) | 0.7600 | -0.0050 [-0.0090, -0.0010]" in block
    assert "| absorb, each learner's own Adam (own Adam, 2 passes at 0.3) | 0.7600 |" in block
    assert "Split 1:" in block and "Chosen: 3 passes at 0.3." in block and "10.0x" in block
