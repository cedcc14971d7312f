"""Flows that cross apps, one home each (README, Architecture): recording answers, importing a file of
them, starting a fit and choosing the next item. Every entry point (REST, xAPI, the learner page, LTI,
management commands) calls these; each calls down into curriculum, learners, tracing and the LMS
passback, which never call up."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings
from django.db import transaction

from core.errors import ServiceError
from curriculum.models import Course
from curriculum.policies import get_policy
from curriculum.policies.base import Choice, catalog_build
from tracing.models import Fit
from tracing.practice import LearnerView, expected_gain, learner_view, policy_items
from tracing.selectors import stored_mastery
from tracing.services import course_model, fit_create, fits_in_process, mastery_apply, mastery_refresh_pending
from tracing.tasks import fit_queue, traits_queue
from tutor.activity import activity_pending_courses
from tutor.importing import file_import, import_statistics_refresh
from tutor.lti.tasks import lti_grade_passback_enqueue
from tutor.models import Learner
from tutor.services import MAX_BATCH, RecordResult, Row, interaction_record


def answers_record(*, course: Course, rows: Sequence[Mapping[str, Any] | Row], limit: int = MAX_BATCH) -> RecordResult:
    """Store a batch of answers, update the learners' mastery online in the same transaction, and queue
    the LMS grade passback of the learners with new answers once it commits, and, where the model has
    per-learner traits (psikt), the re-inference of their traits (``tracing.tasks.traits_queue``).

    ``results`` says what became of each row: a row whose client id was stored before, or appeared
    earlier in this batch, is a duplicate pointing at the stored interaction. Learners with new answers
    get the mastery the update produced; learners whose rows were all duplicates get their stored
    mastery, so a retried batch answers as the first attempt did (``mastery`` names every learner of
    the batch).
    """
    model = course_model(course)

    def online_update(result: RecordResult) -> None:
        result.mastery = mastery_apply(
            course=course,
            interactions=result.created,
            model=model,
            learner_names={pk: name for name, pk in result.learners.items()},
        )
        learner_pks = {interaction.learner_id for interaction in result.created}
        lti_grade_passback_enqueue(learner_ids=learner_pks)
        if model.estimator.has_traits:
            # After commit, so the refresh reads these answers; debounced, so a burst is one refresh.
            transaction.on_commit(lambda: traits_queue(course_pk=course.pk, learner_pks=learner_pks), robust=True)

    result = interaction_record(
        course=course,
        rows=rows,
        limit=limit,
        item_pks=model.item_pks,
        lock_learners=settings.TUTOR_LEARNER_LOCK,
        on_stored=online_update,
    )
    _outcome(course, result)
    return result


def _outcome(course: Course, result: RecordResult) -> None:
    created = iter(result.created)
    next_duplicate = 0  # duplicates come back in input order, one per row whose id was stored before
    stored_by_id: dict[str, int] = {}
    results: list[dict[str, Any]] = []
    for index, row in enumerate(result.rows):
        client_id, learner, item = row.client_id, row.learner, row.item
        if (
            client_id is not None
            and next_duplicate < len(result.duplicates)
            and result.duplicates[next_duplicate].client_id == client_id
        ):
            status, number = "duplicate", result.duplicates[next_duplicate].pk
            next_duplicate += 1
        elif client_id is not None and client_id in stored_by_id:
            status, number = "duplicate", stored_by_id[client_id]  # repeated within this batch
        else:
            status, number = "created", next(created).pk
        if client_id is not None:
            stored_by_id.setdefault(client_id, number)
        results.append(
            {"index": index, "id": client_id, "status": status, "interaction": number, "learner": learner, "item": item}
        )
    missing = {entry["learner"] for entry in results} - set(result.mastery)
    if missing:
        result.mastery.update(stored_mastery(course=course, learners=missing))
    result.results = results


def answers_import(
    *, course_slug: str, path: Path, format: str, course_name: str = "", on_rows: Callable[[int], Any] | None = None
) -> dict[str, int]:
    """Import one file of answers (``tutor.importing.file_import``: all or nothing, its learners marked
    ``mastery_pending``), then, once it has committed, analyse the tables it grew (PostgreSQL: the refresh and
    the next fit plan with its rows), refresh the mastery of the course's pending learners
    under its active model (``tracing.services.mastery_refresh_pending``: batches of learners, each its own
    transaction) and queue their LMS grade passback (which reads that mastery). Returns the import's summary;
    ``mastery_updated``: the learners refreshed.

    The answers are stored and visible from the commit on; until its batch is written a learner's stored
    mastery leaves the file out, and says so (``mastery_pending``). Inside a caller's transaction the
    refresh runs in it too."""
    with transaction.atomic():
        summary, course = file_import(
            course_slug=course_slug, course_name=course_name, path=path, format=format, on_rows=on_rows
        )
    import_statistics_refresh(created=summary["created"])
    summary["mastery_updated"] = len(mastery_pending_finish(course=course))
    return summary


def mastery_pending_finish(*, course: Course) -> list[int]:
    """Refresh the mastery of the course's learners marked ``mastery_pending`` (``mastery_refresh_pending``)
    and queue their LMS grade passback, which reads that mastery; returns the learners refreshed. After
    each import, and from the sweep (``mastery_pending_sweep``) for what an import that stopped half way
    left marked."""
    refreshed = mastery_refresh_pending(course=course)
    lti_grade_passback_enqueue(learner_ids=refreshed)
    return refreshed


def mastery_pending_sweep(*, courses: Sequence[Course] | None = None) -> dict[str, int]:
    """``mastery_pending_finish`` for each course (default: every course with a learner marked): what an
    import's own refresh did not get to (its process ended first) is done here; celery beat runs it every
    TUTOR_PENDING_SWEEP_EVERY seconds (``tutor.tasks``), ``manage.py mastery_refresh`` without a broker.
    Returns course slug -> learners refreshed. Two sweeps at once are safe: each batch re-reads the marks
    under its learners' locks."""
    if courses is None:
        courses = list(Course.objects.filter(pk__in=activity_pending_courses()).order_by("pk"))
    return {course.slug: len(mastery_pending_finish(course=course)) for course in courses}


def fit_start(*, course: Course, kind: str, params: dict[str, Any] | None = None, inline: bool = False) -> Fit:
    """Start a fit of ``course`` (REST, dashboard, ``manage.py fit``, the demo): checked and stored by
    tracing, then run in this process (no broker; ``inline``: before this returns) or handed to a
    worker once the fit row is committed. 409 where the course's fits are at their cap, 503 where the
    broker is down."""
    fit = fit_create(course=course, kind=kind, params=params, inline=inline)
    if not fits_in_process():
        transaction.on_commit(lambda: fit_queue(fit=fit), robust=False)
        fit.refresh_from_db()
    return fit


def next_item_choose(
    *,
    course: Course,
    learner: Learner,
    now: datetime | None = None,
    goals: Sequence[str] | None = None,
    view: LearnerView | None = None,
) -> Choice:
    """The next item for ``learner`` (REST, the learner page, LTI launches): the course's policy over
    its graph, reading the course's active model.

    Mastery now (after forgetting), mastery at the last answer, P(correct) of
    every item and, for the items of the skills the policy may pick, the
    expected mastery gain from a one-step look-ahead of the model all come
    from the tracing layer's active model for the course. ``learner`` may be
    unsaved (a learner with no answers yet: the model's prior). ``goals``
    (skill ids of the course) replace the course's goals for this choice; one
    that is not a skill of the course is a ServiceError naming ``goal``. ``view``: the learner's
    ``learner_view`` at ``now`` where the caller has just read it (the learner page shows it too).
    """
    view = view or learner_view(course=course, learner=learner, now=now)
    unknown = [goal for goal in goals or () if goal not in view.graph]
    if unknown:
        raise ServiceError(
            f"goal {unknown[0]!r} is not a skill of course {course.slug!r}", code="unknown_skill", field="goal"
        )
    model, estimator, state, moment = view.model, view.model.estimator, view.state, view.moment
    _, known, indices = policy_items(model=model, course=course)
    probabilities = estimator.predict_next(state, indices, at=moment) if len(indices) else np.zeros(0)
    p_correct = dict(zip(known, map(float, probabilities)))
    config = view.config
    if goals is not None:
        config = dataclasses.replace(config, goals=tuple(goals))
    policy = get_policy(config.kind)
    # Per course model and goals: the policy's catalog is the same for every learner.
    catalog = model.memo(("catalog", config.goals), lambda: catalog_build(view.graph, view.items, config.goals))
    candidates = policy.candidates(
        mastery=view.mastery,
        graph=view.graph,
        items=view.items,
        config=config,
        mastery_before=view.mastery_before,
        history=view.history,
        seen=view.seen,
        evidence=view.evidence,
        catalog=catalog,
    )
    gain = expected_gain(
        estimator,
        state,
        model.item_index,
        model.skill_index,
        catalog[1],
        candidates,
        p_correct,
        view.now_mastery,
        moment,
    )
    return policy.choose(
        mastery=view.mastery,
        graph=view.graph,
        items=view.items,
        config=config,
        p_correct=p_correct,
        gain=gain,
        mastery_before=view.mastery_before,
        history=view.history,
        last_practice=view.last_practice,
        now=moment,
        seen=view.seen,
        evidence=view.evidence,
        catalog=catalog,
    )
