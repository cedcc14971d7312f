"""bench/choices.py's rule for a setting chosen on validation folds."""

from __future__ import annotations

from bench.choices import choose


def test_a_gain_on_every_fold_wins():
    assert choose([0.001, 0.002, 0.0005, 0.001, 0.003], simpler_is_first=True)["winner"] == "second"
    assert choose([-0.001, -0.002, -0.0005, -0.001, -0.003], simpler_is_first=False)["winner"] == "first"


def test_a_gain_within_noise_goes_to_the_simpler_setting_whichever_side_it_is_on():
    noisy = [0.001, -0.002, 0.0005, 0.001, 0.003]
    assert not choose(noisy, simpler_is_first=True)["clear"]
    assert choose(noisy, simpler_is_first=True)["winner"] == "first"
    assert choose(noisy, simpler_is_first=False)["winner"] == "second"


def test_a_mean_beyond_two_standard_errors_wins_without_every_fold_agreeing():
    decision = choose([0.010, 0.011, 0.009, 0.012, -0.0001], simpler_is_first=True)
    assert decision["clear"] and decision["winner"] == "second"
