"""A BKT fit spread over shards of skills, on the Django side: the same artifact, predictions and mastery
as the one-worker fit; a failed shard fails the fit and activates nothing; a bad ``shards`` is refused."""

from __future__ import annotations

import numpy as np
import pytest

from core.errors import ServiceError
from tracing import services
from tracing.artifacts import artifact_load
from tracing.estimators.bkt import BKT
from tracing.models import Fit, Mastery
from tracing.selectors import interactions_for_fit
from tracing.services import fit_create

pytestmark = pytest.mark.django_db

PARAMS = {"restarts": 2, "max_iter": 30}


def run_fit(course, params, capture) -> Fit:
    with capture(execute=True):
        fit = fit_create(course=course, kind="bkt", params=params)
    fit.refresh_from_db()
    assert fit.status == Fit.SUCCEEDED, fit.error
    return fit


def mastery_of(fit: Fit) -> dict[tuple[int, int], float]:
    return {(m.learner_id, m.skill_id): m.probability for m in Mastery.objects.filter(fit=fit)}


@pytest.mark.parametrize("variant", [{}, {"multigs": True}], ids=["bkt", "multigs"])
def test_a_sharded_fit_is_the_one_worker_fit(demo, variant, django_capture_on_commit_callbacks):
    one = run_fit(demo, {**PARAMS, **variant}, django_capture_on_commit_callbacks)
    one_model, one_mastery = artifact_load(kind="bkt", name=one.artifact), mastery_of(one)
    for shards in (2, 3):
        fit = run_fit(demo, {**PARAMS, **variant, "shards": shards}, django_capture_on_commit_callbacks)
        model = artifact_load(kind="bkt", name=fit.artifact)
        data = interactions_for_fit(course=demo)
        np.testing.assert_array_equal(model.predict_proba(data), one_model.predict_proba(data))
        assert fit.fitted_params["skills"] == one.fitted_params["skills"]
        assert fit.metrics == one.metrics
        assert mastery_of(fit) == one_mastery
        assert fit.active and len(fit.timings["shards"]) == shards
        assert [part["shard"] for part in fit.timings["shards"]] == list(range(shards))
        # Each shard read only the answers on its skills' items.
        rows = [part["rows"] for part in fit.timings["shards"]]
        assert max(rows) < data.n_rows <= sum(rows)


def test_the_setting_shards_a_fit_that_names_none(demo, settings, django_capture_on_commit_callbacks, monkeypatch):
    settings.TRACING_BKT_SHARDS = 2
    calls = []
    shard_run = services.fit_shard_run
    monkeypatch.setattr(services, "fit_shard_run", lambda **kw: calls.append(kw["shard"]) or shard_run(**kw))
    fit = run_fit(demo, PARAMS, django_capture_on_commit_callbacks)
    assert calls == [0, 1] and len(fit.timings["shards"]) == 2
    assert services.fit_shard_count(Fit(kind="rate", params={})) == 1  # kinds without shards run whole


def test_a_failed_shard_fails_the_fit_and_activates_nothing(demo, django_capture_on_commit_callbacks, monkeypatch):
    previous = run_fit(demo, PARAMS, django_capture_on_commit_callbacks)
    fit_skills = BKT.fit_skills

    def second_shard_fails(self, data, skills, **kwargs):
        if 0 not in skills and data.n_learners == 20:  # the full fit of a shard other than the first
            raise FloatingPointError("EM diverged")
        return fit_skills(self, data, skills, **kwargs)

    monkeypatch.setattr(BKT, "fit_skills", second_shard_fails)
    with django_capture_on_commit_callbacks(execute=True):
        fit = fit_create(course=demo, kind="bkt", params={**PARAMS, "shards": 3})
    fit.refresh_from_db()
    assert fit.status == Fit.FAILED and "EM diverged" in fit.error and not fit.active
    previous.refresh_from_db()
    assert previous.active and not Mastery.objects.filter(fit=fit).exists()


def test_a_merge_refuses_shards_that_read_other_answers(demo):
    fit = Fit.objects.create(course=demo, kind="bkt", params={**PARAMS, "shards": 2}, time_limit=600)
    up_to = services.fit_snapshot(course=demo)
    parts = [services.fit_shard_run(fit_id=fit.pk, shard=shard, shards=2, up_to=up_to) for shard in range(2)]
    merged = services.fit_shards_merge(fit_id=fit.pk, results=parts, up_to=up_to - 1)  # one answer fewer
    assert merged.status == Fit.FAILED and "changed while the shards read them" in merged.error
    assert not merged.active


def test_a_multiprior_shard_reads_every_answer(demo, django_capture_on_commit_callbacks):
    """PPS's prior class reads a learner's first answers on any skill: its shards read the whole course."""
    params = {**PARAMS, "multiprior": True}
    one = run_fit(demo, params, django_capture_on_commit_callbacks)
    fit = run_fit(demo, {**params, "shards": 2}, django_capture_on_commit_callbacks)
    assert fit.fitted_params["skills"] == one.fitted_params["skills"] and fit.metrics == one.metrics
    assert [part["rows"] for part in fit.timings["shards"]] == [one.snapshot["interactions"]] * 2


@pytest.mark.parametrize("shards", [0, 65, 1.5, "2", True])
def test_a_bad_shards_value_is_refused_naming_it(demo, shards):
    with pytest.raises(ServiceError) as caught:
        fit_create(course=demo, kind="bkt", params={"shards": shards})
    assert caught.value.field == "params.shards" and caught.value.status == 400
