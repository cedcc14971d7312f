"""psikt's traits in words for teachers: high or low only when the posterior is sure enough, and the
population's own traits read as "not sure yet"."""

from __future__ import annotations

import numpy as np

from tracing.estimators.psikt import trait_words

POPULATION_LOC = np.array([np.log(0.2), 0.0, 0.0, 2.0, 0.0])
POPULATION_SCALE = np.full(5, 0.5)


def test_a_sure_fast_learner_who_forgets_slowly():
    loc = POPULATION_LOC + np.array([-1.0, 0.0, 0.0, 0.0, 1.0])
    words = trait_words(loc, np.full(5, 0.2), POPULATION_LOC, POPULATION_SCALE)
    assert words[0].startswith("learns fast (very likely: 100%")
    assert words[1].startswith("forgets slowly (very likely")
    assert len(words) == 2  # the long-run level is said only when it leans one way


def test_the_population_traits_say_not_sure_yet():
    words = trait_words(POPULATION_LOC, POPULATION_SCALE, POPULATION_LOC, POPULATION_SCALE)
    assert words == ["not sure yet how fast they learn", "not sure yet how fast they forget"]


def test_a_narrow_posterior_at_the_usual_value_says_usual():
    words = trait_words(POPULATION_LOC, np.full(5, 0.1), POPULATION_LOC, POPULATION_SCALE)
    assert words == ["learns at about the usual pace", "forgets at about the usual rate"]


def test_a_leaning_posterior_says_likely_with_its_percentage():
    loc = POPULATION_LOC + np.array([0.0, 0.0, 0.0, 0.0, -0.3])
    (first, *_) = trait_words(loc, np.full(5, 0.4), POPULATION_LOC, POPULATION_SCALE)
    assert first == "learns slowly (likely: 77%)"
