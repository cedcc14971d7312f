"""bench/psikt_scale.py: its restated time-limit rule is the service's, and its README block renders."""

import pytest

from bench import psikt_scale


@pytest.mark.parametrize("answers", [0, 87_154, 683_801, 5_000_000])
def test_the_bench_time_limit_is_the_services_with_the_default_settings(answers):
    from django.conf import settings

    from tracing.services import fit_time_limit

    assert (settings.TRACING_FIT_TIME_LIMIT_BASE, settings.TRACING_FIT_TIME_LIMIT_PER_1000_ANSWERS) == (
        psikt_scale.LIMIT_BASE,
        psikt_scale.LIMIT_PER_1000,
    )
    assert settings.TRACING_FIT_TIME_LIMIT_MAX == psikt_scale.LIMIT_MAX
    assert psikt_scale.time_limit(answers) == fit_time_limit(answers=answers)


def test_the_block_renders_every_fit_and_the_growth():
    fit = {
        "learners": 2500,
        "answers": 87154,
        "answers_used": 85367,
        "wall_seconds": 40.0,
        "cpu_seconds": 60.0,
        "stages": {"padding_svi_seconds": 30.0, "end_states_seconds": 10.0},
        "peak_rss_mb": 550.0,
        "time_limit_seconds": 1471,
        "test_auc": 0.70,
        "all_learners": False,
        "load_average": [1.0, 1.0, 1.0],
    }
    big = {**fit, "learners": 19840, "answers": 683801, "all_learners": True, "wall_seconds": 80.0}
    del big["test_auc"]
    report = {"fits": [fit, big], "growth": psikt_scale.growth([fit, big])}
    block = psikt_scale.render(report)
    assert block.startswith(psikt_scale.BEGIN) and block.endswith(psikt_scale.END)
    assert "| 2,500 | 87,154 (85,367) | 40.0 |" in block and "| 19,840 (all) |" in block
    assert report["growth"]["wall_seconds_exponent"] == pytest.approx(0.33, abs=0.01)
