"""The Django edge of tracing: fits, the active model of a course, and mastery."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import os
import resource
import socket
import threading
import time
import traceback
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Any

import numpy as np
from celery import current_app
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, QuerySet
from django.utils import timezone as django_timezone

from core.errors import Conflict, ServiceError
from core.recheck import Recent
from core.sql import CHUNK, db_datetime, json_value, keyed_rows, rows_in, tables_analyze, upsert
from curriculum.models import Course, Item, Prerequisite, Skill
from curriculum.selectors import prerequisites_authored
from curriculum.services import learned_edges_store
from tracing.artifacts import artifact_delete, artifact_learner_forget, artifact_load, artifact_save
from tracing.background import Coalescer, FitRunner
from tracing.data import Dataset, concat
from tracing.estimators import ESTIMATORS, estimator_params, get_estimator
from tracing.estimators.base import Estimator, LearnerState, SkillSeparable
from tracing.estimators.hyper import ParamError
from tracing.evaluation import evaluate, evaluate_multistep, split_learners
from tracing.models import Fit, LearnerTrace, LearnerTraits, Mastery
from tracing.selectors import (
    Vocabulary,
    course_vocabulary,
    interactions_between,
    interactions_for_fit,
    interactions_of_learners,
    item_answer_counts,
    learner_history,
    learners_histories,
)
from tutor.activity import activity_pending, activity_pending_mark
from tutor.hot_queries import (
    copy_columns,
    copy_columns_in,
    course_learners_lock,
    learners_lock,
    row_triggers_skippable,
    row_triggers_skipped,
)
from tutor.models import Interaction, Learner

logger = logging.getLogger(__name__)

DEFAULT_KIND = "bkt"
"""The kind that serves a course before its first fit (its untrained form)."""

MIN_LEARNERS_FOR_HOLDOUT = 5
MASTERY_BATCH = 2_000
"""Learners per statement when a fit's or an import's mastery is written: about 100,000 rows with 50
skills, a few MB of values, whatever the course's size."""
MAX_ATTEMPTS = 3


@dataclass
class CourseModel:
    """The estimator that answers for a course now, and how its indices map to the course."""

    estimator: Estimator
    fit: Fit | None
    vocabulary: Vocabulary
    _memo: dict[Hashable, Any] = field(default_factory=dict, repr=False, compare=False)

    def memo(self, name: Hashable, build: Callable[[], Any]) -> Any:
        """``build()``, computed once per model: for data derived from the course as this model saw it
        (the prerequisite graph, item specs). The cache key covers items, skills, links and prerequisite
        edges, so such data is as fresh as the model itself. Treat the result as read-only."""
        try:
            return self._memo[name]
        except KeyError:
            value = self._memo[name] = build()  # two requests may both build it: same value, last one kept
            return value

    @cached_property
    def item_index(self) -> dict[str, int]:
        """Item external id -> the estimator's item index."""
        return {e: i for i, e in enumerate(self.estimator.item_ids)}

    @cached_property
    def skill_index(self) -> dict[str, int]:
        """Skill external id -> the estimator's skill index (position in ``LearnerState.mastery``)."""
        return {e: i for i, e in enumerate(self.estimator.skill_ids)}

    @cached_property
    def item_pks(self) -> dict[str, int]:
        """Item external id -> primary key, for every item of the course."""
        return dict(zip(self.vocabulary.item_ids, self.vocabulary.item_pk))

    @cached_property
    def item_pk_index(self) -> dict[int, int]:
        """Item primary key -> the estimator's item index (items the estimator knows only)."""
        return {
            pk: self.item_index[e]
            for pk, e in zip(self.vocabulary.item_pk, self.vocabulary.item_ids)
            if e in self.item_index
        }


_cache: OrderedDict[tuple, CourseModel] = OrderedDict()
_cache_lock = threading.Lock()
_CACHE_SIZE = 16


def _default_estimator(vocabulary: Vocabulary) -> Estimator:
    for kind in (DEFAULT_KIND, "rate"):
        if kind not in ESTIMATORS:
            continue
        try:
            return get_estimator(kind).untrained(
                item_ids=vocabulary.item_ids, skill_ids=vocabulary.skill_ids, q_matrix=vocabulary.q_matrix
            )
        except NotImplementedError:
            continue
    raise RuntimeError("no estimator offers an untrained form")


def _course_signature(course: Course) -> tuple[Any, ...]:
    """One query: the active fit's id (0 if none) and a fingerprint of the course's items, skills,
    Q-matrix links and prerequisite edges. Ids only grow, so adding or removing any of them changes
    (count, max id) or (count, sum of ids); external ids are identities and never renamed in place;
    an edge's weight may change in place (a refit's learned edges), so their weights are summed too, and
    so may an item's difficulty (a curriculum re-import), so the items' (id, difficulty) pairs are summed.
    The active fit's count of erased learners is in it too: an erasure rewrites the fit's artifact without
    the learner's name (fits_learner_forget), and every process then loads the rewritten one."""
    fit, item, skill = Fit._meta.db_table, Item._meta.db_table, Skill._meta.db_table
    link, edge = Item.skills.through._meta.db_table, Prerequisite._meta.db_table
    sql = (
        f"SELECT (SELECT id FROM {fit} WHERE course_id = %s AND active LIMIT 1), "
        f"(SELECT coalesce(max(erased_learners), 0) FROM {fit} WHERE course_id = %s AND active), "
        f"items.n, items.top, items.levels, skills.n, skills.top, links.n, links.total, "
        f"edges.n, edges.total, edges.weight "
        f"FROM (SELECT count(*) AS n, coalesce(max(id), 0) AS top, "
        f"coalesce(sum(CAST(id AS BIGINT) * (coalesce(difficulty, -1) + 2)), 0) AS levels "
        f"FROM {item} WHERE course_id = %s) AS items, "
        f"(SELECT count(*) AS n, coalesce(max(id), 0) AS top FROM {skill} WHERE course_id = %s) AS skills, "
        f"(SELECT count(*) AS n, coalesce(sum(l.id), 0) AS total FROM {link} AS l "
        f"JOIN {item} AS i ON i.id = l.item_id WHERE i.course_id = %s) AS links, "
        f"(SELECT count(*) AS n, coalesce(sum(id), 0) AS total, coalesce(sum(weight), 0) AS weight "
        f"FROM {edge} WHERE course_id = %s) AS edges"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [course.pk] * 6)
        row = cursor.fetchone()
    return (row[0] or 0, *(int(value) for value in row[1:-1]), float(row[-1]))


_signatures: Recent[tuple[Any, ...]] = Recent(size=4 * _CACHE_SIZE)
"""(course pk, created at) -> signature: this process's recent checks."""


def _recent_signature(course: Course) -> tuple[Any, ...]:
    """The course's signature, read again only when this process's copy is older than
    ``TRACING_MODEL_RECHECK`` seconds (0: on every call)."""
    recheck = settings.TRACING_MODEL_RECHECK
    key = (course.pk, course.created_at)
    signature = _signatures.get(key, within=recheck)
    if signature is None:
        signature = _course_signature(course)
        _signatures.put(key, signature, within=recheck)
    return signature


def course_model_forget(course: Course) -> None:
    """Read the course's signature again on the next call, in this process (after its new fit commits)."""
    _signatures.forget((course.pk, course.created_at))


def course_model(course: Course) -> CourseModel:
    """The active fit's estimator and the course vocabulary, loaded once per process.

    A new fit, item, skill, link or prerequisite edge changes the course's signature (one
    query) and so the key of the cached model, so a cached model (and what was memoised on it)
    is never stale beyond ``TRACING_MODEL_RECHECK`` seconds: that long (default 1 s) a process
    reuses the signature it read, which saves the query on nearly every request. A fit
    activated in this process is seen at once. The returned model is shared between requests:
    read it, never change it.
    """
    signature = _recent_signature(course)
    # created_at tells apart courses that reuse a primary key (SQLite after a rolled-back test).
    key = (course.pk, course.created_at, *signature)
    with _cache_lock:
        cached = _cache.get(key)
        if cached is not None:
            _cache.move_to_end(key)
            return cached
    fit = Fit.objects.filter(pk=signature[0]).first() if signature[0] else None
    vocabulary = course_vocabulary(course=course)
    if fit is not None:
        estimator = artifact_load(kind=fit.kind, name=fit.artifact)
    else:
        estimator = _default_estimator(vocabulary)
    model = CourseModel(estimator=estimator, fit=fit, vocabulary=vocabulary)
    with _cache_lock:
        _cache[key] = model
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return model


def _stored_traits(model: CourseModel, learner_pks: Sequence[int]) -> dict[int, LearnerState]:
    """learner pk -> the state before any answer with the traits re-inferred for them under the model's fit
    (``traits_refresh``), for the learners that have them; {} for models without traits."""
    if model.fit is None or not model.estimator.has_traits or not learner_pks:
        return {}
    found = rows_in(
        f"SELECT learner_id, loc, scale FROM {LearnerTraits._meta.db_table} "
        "WHERE fit_id = %s AND learner_id IN ({marks})",
        [model.fit.pk],
        learner_pks,
    )
    return {
        pk: model.estimator.initial_state_with_traits(np.asarray(json_value(loc)), np.asarray(json_value(scale)))
        for pk, loc, scale in found
    }


def _replay(model: CourseModel, learner: Learner) -> LearnerState:
    history = learner_history(learner=learner, vocabulary=model.vocabulary)
    estimator = model.estimator
    state = _stored_traits(model, [learner.pk]).get(learner.pk) or estimator.initial_state()
    for row in range(history.n_rows):
        index = model.item_index.get(history.item_ids[history.item[row]])
        if index is None:
            continue  # an item added after the fit: it moves mastery once a new fit knows it
        state = estimator.update(
            state, item=index, correct=float(history.correct[row]), at=float(history.timestamp[row])
        )
    return state


def _replay_many(model: CourseModel, learner_pks: Sequence[int]) -> dict[int, LearnerState]:
    """Each learner's state from their whole history, read in one query per chunk of learners.

    The same steps as _replay (rows in (timestamp, id) order, scores as float32), without a
    query per learner.
    """
    estimator, item_index = model.estimator, model.item_pk_index
    states: dict[int, LearnerState] = {pk: estimator.initial_state() for pk in learner_pks}
    states.update(_stored_traits(model, learner_pks))  # a learner's own traits where they were re-inferred
    for start in range(0, len(learner_pks), CHUNK):
        rows = (
            Interaction.objects.filter(learner_id__in=learner_pks[start : start + CHUNK])
            .order_by("learner_id", "timestamp", "id")
            .values_list("learner_id", "item_id", "correct", "timestamp")
        )
        for learner_pk, item_pk, correct, moment in rows.iterator(chunk_size=10_000):
            index = item_index.get(item_pk)
            if index is None:
                continue  # an item added after the fit: it moves mastery once a new fit knows it
            states[learner_pk] = estimator.update(
                states[learner_pk], item=index, correct=float(np.float32(correct)), at=moment.timestamp()
            )
    return states


def trace_states(*, fit_pk: int, learner_pks: Sequence[int]) -> dict[int, Any]:
    """learner pk -> the state stored under this fit (learners without one are absent), one query per chunk."""
    found = keyed_rows(
        f"SELECT learner_id, state FROM {LearnerTrace._meta.db_table} WHERE fit_id = %s AND learner_id IN ({{marks}})",
        [fit_pk],
        learner_pks,
    )
    return {pk: json_value(state) for pk, state in found.items()}


def _traces_current(
    course: Course, model: CourseModel, learner_pks: Sequence[int]
) -> tuple[CourseModel, dict[int, Any]]:
    """The model to update these learners with, and their traces under its fit (learner pk -> state).

    Reads the learners' traces under any fit (one query; each learner keeps one, _traces_write sees to
    that). A trace under another fit than ``model``'s means a fit was activated that this process may
    not have seen yet (it rechecks every TRACING_MODEL_RECHECK seconds): then, and only then, the
    active fit is read, and a stale model is replaced, so an answer is never folded into an old fit's
    state after a new fit took over. Traces under an older fit are ignored (those learners are replayed).
    """
    found = rows_in(
        f"SELECT learner_id, fit_id, state FROM {LearnerTrace._meta.db_table} WHERE learner_id IN ({{marks}})",
        [],
        learner_pks,
    )
    mine = model.fit.pk if model.fit is not None else None
    if any(fit_pk != mine for _, fit_pk, _ in found):
        active = Fit.objects.filter(course=course, active=True).values_list("id", flat=True).first()
        if active != mine:
            course_model_forget(course)  # read the course's signature again, now
            model = course_model(course)
            mine = model.fit.pk if model.fit is not None else None
    return model, {learner_pk: json_value(state) for learner_pk, fit_pk, state in found if fit_pk == mine}


def learner_state(*, learner: Learner, model: CourseModel) -> LearnerState:
    """The learner's current state under ``model``: the stored trace, else a replay of the history;
    for a learner not stored yet (no answers), the model's prior."""
    if learner.pk is None:
        return model.estimator.initial_state()
    if model.fit is not None:
        stored = trace_states(fit_pk=model.fit.pk, learner_pks=[learner.pk])
        if stored:
            return LearnerState.from_json(stored[learner.pk])
    return _replay(model, learner)


def _mastery_write(
    model: CourseModel,
    states: dict[int, LearnerState],
    now: datetime,
    previous: dict[int, np.ndarray] | None = None,
    *,
    learners_locked: bool = False,
) -> None:
    """Upsert Mastery rows and traces. With ``previous`` (per learner, the stored trace's
    mastery before the new answers; those learners already have every row), only the skills whose
    probability moved are written. ``learners_locked``: the caller holds these learners' rows locked
    (``learners_lock``) and its role may skip triggers (``row_triggers_skippable``): a bulk write then
    locks the skills and the fit it points to and goes in without a foreign-key trigger per row."""
    skill_pk = dict(zip(model.vocabulary.skill_ids, model.vocabulary.skill_pk))
    columns = [(index, skill_pk[e]) for e, index in model.skill_index.items() if e in skill_pk]
    previous = previous or {}
    # Plain SQL upserts: they run on every recorded answer (tutor/hot_queries.py says why).
    moment, fit_pk = db_datetime(now), model.fit.pk if model.fit is not None else None
    if connection.vendor == "postgresql" and not previous and columns and len(states) * len(columns) > CHUNK:
        _mastery_write_arrays(states, columns, moment, fit_pk, learners_locked=learners_locked)
    else:
        _mastery_write_rows(states, columns, moment, fit_pk, previous)
    if fit_pk is not None:
        _traces_write(fit_pk, [(pk, fit_pk, json.dumps(state.to_json()), moment) for pk, state in states.items()])


def _mastery_write_arrays(
    states: dict[int, LearnerState],
    columns: list[tuple[int, int]],
    moment: Any,
    fit_pk: int | None,
    *,
    learners_locked: bool = False,
) -> None:
    """PostgreSQL, many learners at once (a fit's recompute, an import's refresh): the (learner, skill) rows
    go by binary COPY into a temporary table, then into Mastery in one upsert; no Python object per row.

    ``learners_locked`` (see ``_mastery_write``): the skills and the fit are locked FOR KEY SHARE, as the
    foreign-key triggers of the rows would do one row at a time at commit, and the upsert runs without
    them (``row_triggers_skipped``): every row's learner, skill and fit then exists till the commit."""
    indices = np.array([index for index, _ in columns], dtype=np.int64)
    skill_pks = np.array([pk for _, pk in columns], dtype=np.int64)
    learners = np.fromiter(states, dtype=np.int64, count=len(states))
    matrix = np.empty((len(states), len(columns)), dtype=np.float64)
    for row, state in enumerate(states.values()):
        matrix[row] = np.asarray(state.mastery, dtype=np.float64)[indices]
    table, batch = Mastery._meta.db_table, "tracing_mastery_batch"
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TEMP TABLE IF NOT EXISTS {batch} (learner_id bigint, skill_id bigint, "
            "probability double precision) ON COMMIT DROP"
        )
        cursor.execute(f"TRUNCATE {batch}")
        copy_columns_in(
            batch,
            ("learner_id", "skill_id", "probability"),
            (np.repeat(learners, len(columns)), np.tile(skill_pks, len(states)), matrix.ravel()),
        )
        if learners_locked:
            cursor.execute(
                f"SELECT count(*) FROM (SELECT id FROM {Skill._meta.db_table} WHERE id = ANY(%s) ORDER BY id "
                "FOR KEY SHARE) AS locked",
                [skill_pks.tolist()],
            )
            if fit_pk is not None:
                cursor.execute(f"SELECT 1 FROM {Fit._meta.db_table} WHERE id = %s FOR KEY SHARE", [fit_pk])
        with row_triggers_skipped() if learners_locked else contextlib.nullcontext():
            cursor.execute(
                f"INSERT INTO {table} (learner_id, skill_id, probability, updated_at, fit_id) "
                f"SELECT learner_id, skill_id, probability, %s, %s FROM {batch} "
                "ON CONFLICT (learner_id, skill_id) DO UPDATE SET probability = excluded.probability, "
                "updated_at = excluded.updated_at, fit_id = excluded.fit_id",
                [moment, fit_pk],
            )


def _mastery_write_rows(
    states: dict[int, LearnerState],
    columns: list[tuple[int, int]],
    moment: Any,
    fit_pk: int | None,
    previous: dict[int, np.ndarray],
) -> None:
    rows = []
    for learner_pk, state in states.items():
        before = previous.get(learner_pk)
        for index, pk in columns:
            probability = float(state.mastery[index])
            if before is None or probability != float(before[index]):
                rows.append((learner_pk, pk, probability, moment, fit_pk))
    upsert(
        table=Mastery._meta.db_table,
        columns=["learner_id", "skill_id", "probability", "updated_at", "fit_id"],
        rows=rows,
        conflict=["learner_id", "skill_id"],
        update=["probability", "updated_at", "fit_id"],
    )


def _traces_write(fit_pk: int, rows: list[tuple[int, int, str, Any]]) -> None:
    """Upsert (learner, fit, state, updated at) rows, and drop these learners' traces under every other fit.

    A request may still run on the previous fit for up to TRACING_MODEL_RECHECK seconds after a new
    one is activated (its process has not yet read the change), and the new fit's trace of its learner
    would then miss that answer for good. With the learner's traces under other fits gone, the next
    update under the active fit finds none and replays the history instead. On PostgreSQL the delete
    rides in the upsert's statement (no round trip more).
    """
    table = LearnerTrace._meta.db_table
    columns = "learner_id, fit_id, state, updated_at"
    tail = " ON CONFLICT (learner_id, fit_id) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at"
    with connection.cursor() as cursor:
        for start in range(0, len(rows), CHUNK // 4):
            chunk = rows[start : start + CHUNK // 4]
            learners = ", ".join(["%s"] * len(chunk))
            prune = f"DELETE FROM {table} WHERE fit_id <> %s AND learner_id IN ({learners})"
            insert = f"INSERT INTO {table} ({columns}) VALUES " + ", ".join(["(%s, %s, %s, %s)"] * len(chunk)) + tail
            values = [value for row in chunk for value in row]
            learner_pks = [row[0] for row in chunk]
            if connection.vendor == "postgresql":
                cursor.execute(f"WITH pruned AS ({prune}) {insert}", [fit_pk, *learner_pks, *values])
            else:
                cursor.execute(prune, [fit_pk, *learner_pks])
                cursor.execute(insert, values)


def mastery_apply(
    *,
    course: Course,
    interactions: Sequence[Interaction],
    model: CourseModel | None = None,
    learner_names: dict[int, str] | None = None,
) -> dict[str, dict[str, float]]:
    """Update each learner's mastery with newly stored answers (call inside their transaction).

    Returns learner external id -> skill external id -> P(known) after the answers.
    An answer older than the learner's last one replays the whole history, so
    late arrivals land in time order. ``model`` (the course's model, read in the same
    transaction) and ``learner_names`` (learner pk -> external id), where the caller has
    them, save reading them again.
    """
    model = model or course_model(course)
    by_learner: dict[int, list[Interaction]] = defaultdict(list)
    for interaction in interactions:
        by_learner[interaction.learner_id].append(interaction)
    learner_pks = list(by_learner)
    if learner_names is None or not set(learner_pks) <= learner_names.keys():
        learner_names = {pk: learner.external_id for pk, learner in Learner.objects.in_bulk(learner_pks).items()}
    model, traces = _traces_current(course, model, learner_pks)
    item_index = model.item_pk_index
    states: dict[int, LearnerState] = {}
    previous: dict[int, np.ndarray] = {}
    replay: list[int] = []
    for learner_pk, new in by_learner.items():
        stored = traces.get(learner_pk)
        state = LearnerState.from_json(stored) if stored is not None else None
        new.sort(key=lambda i: (i.timestamp, i.pk or 0))
        if state is None or (state.at is not None and new[0].timestamp.timestamp() < state.at):
            replay.append(learner_pk)  # no trace, or a late answer: the history (new rows included) decides
            continue
        previous[learner_pk] = np.array(state.mastery, dtype=np.float64)  # a copy: update may reuse arrays
        for interaction in new:
            index = item_index.get(interaction.item_id)
            if index is not None:
                state = model.estimator.update(
                    state, item=index, correct=interaction.correct, at=interaction.timestamp.timestamp()
                )
        states[learner_pk] = state
    states.update(_replay_many(model, replay))
    _mastery_write(model, states, django_timezone.now(), previous=previous)
    return {
        learner_names[pk]: dict(zip(model.estimator.skill_ids, np.round(s.mastery, 6).tolist()))
        for pk, s in states.items()
    }


TRAITS_BATCH = 256
"""Learners whose traits one ``traits_infer`` call re-infers (memory follows it, not the burst)."""


def traits_refresh(*, course_pk: int, learner_pks: Iterable[int]) -> int:
    """Re-infer these learners' traits from their whole histories under the course's active fit (the course
    posterior frozen), store them (LearnerTraits) and rewrite their mastery and traces from the new traits;
    returns how many learners were refreshed. Nothing for models without traits.

    Inference runs outside any transaction (seconds for a few learners); the write holds the learners'
    locks, as an answer's online update does, so the two serialise: the state written is the replay of the
    history as stored at the write, and an answer that arrived during the inference is in it. A posterior
    inferred from fewer answers than the one stored is not written (two refreshes of one learner racing).
    """
    course = Course.objects.filter(pk=course_pk).first()
    if course is None:
        return 0
    model = course_model(course)
    if model.fit is None or not model.estimator.has_traits:
        return 0
    ordered = sorted(set(Learner.objects.filter(course=course, pk__in=list(learner_pks)).values_list("pk", flat=True)))
    done = 0
    for start in range(0, len(ordered), TRAITS_BATCH):
        chunk = ordered[start : start + TRAITS_BATCH]
        data = learners_histories(course=course, learner_pks=chunk, vocabulary=model.vocabulary)
        if data.n_learners == 0:
            continue
        inferred = model.estimator.traits_infer(data, seed=0)
        if inferred is None:
            return done
        loc, scale = inferred
        pks = [int(name) for name in data.learner_ids]
        with transaction.atomic():
            learners_lock(learner_pks=pks)
            if not Fit.objects.filter(pk=model.fit.pk, active=True).exists():
                return done  # a new fit took over meanwhile: its activation wrote these learners' states
            _traits_write(model.fit.pk, pks, loc, scale, data.lengths)
            _mastery_write(model, _replay_many(model, pks), django_timezone.now())
        done += len(pks)
    return done


def _traits_write(fit_pk: int, pks: list[int], loc: np.ndarray, scale: np.ndarray, answers: np.ndarray) -> None:
    table = LearnerTraits._meta.db_table
    moment = db_datetime(django_timezone.now())
    rows = [
        (pk, fit_pk, json.dumps(loc[index].tolist()), json.dumps(scale[index].tolist()), int(answers[index]), moment)
        for index, pk in enumerate(pks)
    ]
    marks = ", ".join(["(%s, %s, %s, %s, %s, %s)"] * len(rows))
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (learner_id, fit_id, loc, scale, answers, updated_at) VALUES {marks} "
            "ON CONFLICT (learner_id, fit_id) DO UPDATE SET loc = excluded.loc, scale = excluded.scale, "
            f"answers = excluded.answers, updated_at = excluded.updated_at WHERE excluded.answers >= {table}.answers",
            [value for row in rows for value in row],
        )


def learner_traits_view(*, learner: Learner, model: CourseModel, state: LearnerState) -> dict[str, Any]:
    """The learner's traits as the API and the pages show them: ``traits`` (mean and sd of each, natural
    units), ``traits_words`` (plain words with how sure), ``traits_source`` ("learner": re-inferred from
    their answers, ``traits_answers`` of them; "fit": the fit's own estimate of a learner it was fitted
    on or absorbed; "population": the class's typical traits, for a learner the model has no answers of)
    and ``traits_answers``. Models whose traits the service does not re-infer (hbkt) give their own
    ``traits`` and no words or source."""
    estimator = model.estimator
    if not estimator.has_traits:  # traits the service does not re-infer (hbkt's), as the model gives them
        traits = _finite(estimator.learner_traits(state))
        return {"traits": traits, "traits_words": [], "traits_source": None, "traits_answers": 0}
    row = None
    if learner.pk is not None and model.fit is not None:
        stored = LearnerTraits.objects.filter(fit=model.fit, learner=learner)
        row = stored.values_list("loc", "scale", "answers").first()
    if row is not None:
        state = estimator.initial_state_with_traits(np.asarray(row[0]), np.asarray(row[1]))
        source, answers = "learner", int(row[2])
    elif learner.pk is not None and estimator.knows_learner(learner.external_id):
        source, answers = "fit", 0
    else:
        state, source, answers = estimator.initial_state(), "population", 0
    return {
        "traits": _finite(estimator.learner_traits(state)),
        "traits_words": estimator.traits_words(state),
        "traits_source": source,
        "traits_answers": answers,
    }


def mastery_get(*, learner: Learner) -> list[Mastery]:
    return list(Mastery.objects.filter(learner=learner).select_related("skill").order_by("skill_id"))


def learner_outlook(
    *, learner: Learner, at: datetime | None = None, model: CourseModel | None = None, state: LearnerState | None = None
) -> dict[str, Any]:
    """The learner's latent traits with uncertainty (``learner_traits_view``) and, when ``at`` is given,
    P(knows each skill) at that moment with no practice until then (forgetting, where the model has it;
    else today's mastery). One model load and one state read serve both; a caller that has read
    them already (``model`` and ``state``) passes them in.
    """
    if model is None or state is None:
        model = course_model(learner.course)
        state = learner_state(learner=learner, model=model)
    forecast = None
    if at is not None:
        values = model.estimator.mastery_at(state, at.timestamp())
        forecast = dict(zip(model.estimator.skill_ids, (round(float(p), 6) for p in values)))
    return {**learner_traits_view(learner=learner, model=model, state=state), "forecast": forecast}


def predict_items(*, learner: Learner, items: Sequence[str], at: datetime | None = None) -> dict[str, float | None]:
    """P(correct) for each named item if the learner answered it next; None for items the model does not know."""
    model = course_model(learner.course)
    state = learner_state(learner=learner, model=model)
    known = [item for item in items if item in model.item_index]
    moment = (at or django_timezone.now()).timestamp()
    probabilities = (
        model.estimator.predict_next(state, np.array([model.item_index[i] for i in known], dtype=np.int64), at=moment)
        if known
        else np.zeros(0)
    )
    result: dict[str, float | None] = {item: None for item in items}
    result.update(zip(known, (round(float(p), 6) for p in probabilities)))
    return result


def fit_params_check(*, kind: str, params: Any) -> dict[str, Any]:
    """The one check of a fit request's model and hyper-parameters (API, dashboard, ``manage.py fit``).

    Returns the parameters as given, each as its declared type; raises ServiceError (400) naming the
    model or the parameter (``field`` "params.<name>"). Reads the declarations only: no model is imported.
    """
    if not isinstance(kind, str):
        raise ServiceError("model must be a string", code="unknown_model", field="model")
    if params is not None and not isinstance(params, dict):
        raise ServiceError("params must be an object", code="invalid_params", field="params")
    for name in params or ():
        # Names are constructor keywords: anything else (a lone surrogate, a 10 kB key) is refused here,
        # before it reaches an error message, a log line or the Fit row.
        if not isinstance(name, str) or not name.isidentifier() or not name.isascii() or len(name) > 64:
            raise ServiceError(
                f"params: {str(name)[:64]!r} is not a parameter name (ASCII letters, digits and _)",
                code="invalid_params",
                field="params",
            )
    try:
        declared = estimator_params(kind)
    except KeyError as error:
        raise ServiceError(str(error.args[0]), code="unknown_model", field="model") from None
    if params is None:
        params = {}
    try:
        config = declared.check(params, owner=kind)
    except ParamError as error:
        # Names were checked above (short ASCII identifiers), so echoing one is safe.
        field = f"params.{error.name}" if error.name is not None else "params"
        raise ServiceError(f"bad params for {kind}: {error}", code="invalid_params", field=field) from None
    return {name: config[name] for name in params}


def fit_time_limit(*, answers: int) -> int:
    """Seconds one attempt of a fit may run on a course of ``answers`` interactions: a base, plus an
    allowance per thousand answers, capped (settings TRACING_FIT_TIME_LIMIT_*)."""
    allowance = settings.TRACING_FIT_TIME_LIMIT_PER_1000_ANSWERS * answers / 1000
    return int(min(settings.TRACING_FIT_TIME_LIMIT_MAX, settings.TRACING_FIT_TIME_LIMIT_BASE + allowance))


FIT_REAP_GRACE_S = 120
"""Beyond its time limit, how long a running fit may still be finishing (writing its result) before it
counts as lost."""


def fits_reap(*, course: Course) -> int:
    """Mark failed the course's running fits that are past their time limit with a grace: their worker
    was killed (Celery's hard limit, the OOM killer) before it could say so. Returns how many."""
    now = django_timezone.now()
    lost = 0
    for fit in Fit.objects.filter(
        course=course, status=Fit.RUNNING, started_at__isnull=False, time_limit__isnull=False
    ):
        if (now - fit.started_at).total_seconds() > fit.time_limit + FIT_REAP_GRACE_S:
            lost += Fit.objects.filter(pk=fit.pk, status=Fit.RUNNING).update(
                status=Fit.FAILED,
                active=False,
                finished_at=now,
                error=f"stopped: it ran past its time limit of {fit.time_limit} s, or its worker was lost",
            )
    return lost


def _place_holders(course: Course) -> list[Fit]:
    return list(Fit.objects.filter(course=course, status__in=(Fit.QUEUED, Fit.RUNNING)).order_by("created_at", "id"))


def fits_in_process() -> bool:
    """True where fits run in this process (no broker: Celery's eager mode); False where a worker takes them."""
    return bool(current_app.conf.task_always_eager)


def fit_create(
    *, course: Course, kind: str, params: dict[str, Any] | None = None, inline: bool = False, parent: Fit | None = None
) -> Fit:
    """Validate the request and store a queued Fit; where fits run in this process, start it after commit.

    Without a broker the fit runs in the background thread (``tracing.background``) so the caller
    returns at once, or, with ``inline`` (management commands, whose process would end before a
    background thread finished) or setting TRACING_FITS_INLINE, before this returns. With a broker
    the fit stays queued for ``tracing.tasks.fit_queue``, which ``tutor.actions.fit_start`` calls.
    At most TRACING_FITS_PER_COURSE fits of a course may be queued or running: beyond that,
    Conflict (409) names the oldest of them. ``parent``: an absorb of that fit (``fit_absorb``), not a refit.
    """
    params = fit_params_check(kind=kind, params=params)
    answers = Interaction.objects.filter(course=course).count()
    time_limit = fit_time_limit(answers=answers)
    with transaction.atomic():
        # The course row serialises fit requests of one course, so two at once cannot both take the last place.
        Course.objects.select_for_update().filter(pk=course.pk).first()
        fits_reap(course=course)
        holders = _place_holders(course)
        cap = settings.TRACING_FITS_PER_COURSE
        if len(holders) >= cap:
            holder = holders[0]
            raise Conflict(
                f"fit {holder.pk} ({holder.kind}, {holder.status}) holds this course's place: at most {cap} "
                f"fit{'s' if cap != 1 else ''} of a course may be queued or running; try again when it "
                "has finished",
                code="fit_in_progress",
                detail={
                    "fits": [{"id": fit.pk, "model": fit.kind, "status": fit.status} for fit in holders],
                    "limit": cap,
                },
            )
        in_process = fits_in_process()
        background = in_process and not (inline or settings.TRACING_FITS_INLINE)
        fit = Fit.objects.create(
            course=course,
            kind=kind,
            params=params,
            time_limit=time_limit,
            task_id=_runner_owner() if background else "",
            parent=parent,
        )
        if background:
            transaction.on_commit(lambda: _runner.submit(fit.pk, course.pk), robust=False)
        elif in_process:
            transaction.on_commit(lambda: fit_run(fit_id=fit.pk), robust=False)
    fit.refresh_from_db()
    return fit


def _runner_owner() -> str:
    """The mark of this process's background runner on the fits it holds: local:<host>:<pid>."""
    return f"local:{socket.gethostname()}:{os.getpid()}"


def _owner_alive(owner: str) -> bool:
    """Whether the process named by a runner mark may still run: only a process of this host that is
    gone counts as dead (another host's cannot be checked; its fits end by their time limit)."""
    _, host, pid = (owner.split(":", 2) + ["", ""])[:3]
    if host != socket.gethostname() or not pid.isdigit():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def fits_resume(runner: FitRunner | None = None) -> list[int]:
    """Queue again, on this process's runner, the fits a dead process's runner left queued or running
    (a restart; runserver's autoreloader restarts on every code change). A fit killed mid-run counts an
    attempt: after MAX_ATTEMPTS, fit_run marks it failed instead of running it again. Returns their ids."""
    runner = runner or _runner
    mine = _runner_owner()
    resumed = []
    for fit in Fit.objects.filter(status__in=(Fit.QUEUED, Fit.RUNNING), task_id__startswith="local:").order_by("id"):
        if fit.task_id == mine or _owner_alive(fit.task_id):
            continue
        # Claimed only if no other process claimed it first (the owner mark is compared).
        if Fit.objects.filter(pk=fit.pk, task_id=fit.task_id).update(status=Fit.QUEUED, task_id=mine, stage="resumed"):
            runner.submit(fit.pk, fit.course_id)
            resumed.append(fit.pk)
    if resumed:
        logger.warning("resumed fits %s left by a process that ended", resumed)
    return resumed


_runner = FitRunner(run=lambda fit_id: fit_run(fit_id=fit_id), on_start=fits_resume)


def fits_background_start() -> None:
    """Start this process's background fit runner where fits run in-process (no broker): at once, so
    fits an ended process left are resumed without waiting for a new request."""
    if fits_in_process() and not settings.TRACING_FITS_INLINE:
        _runner.start()


def fits_background_wait(timeout: float) -> bool:
    """True once this process's background runners (fits, trait refreshes) have nothing pending or running
    (tests, shutdown)."""
    return _runner.wait_idle(timeout) and _traits_runner.wait_idle(timeout)


_traits_runner = Coalescer(
    run=lambda course_pk, learner_pks: traits_refresh(course_pk=course_pk, learner_pks=learner_pks),
    name="traits-runner",
)


def traits_refresh_in_process(*, course_pk: int, learner_pks: Iterable[int]) -> None:
    """Where fits run in this process (no broker): the trait refresh on this process's background thread,
    coalesced per course (a burst of answers is one refresh), or at once with TRACING_FITS_INLINE."""
    if settings.TRACING_FITS_INLINE:
        traits_refresh(course_pk=course_pk, learner_pks=learner_pks)
    else:
        _traits_runner.submit(course_pk, set(learner_pks))


def fit_absorb(*, course: Course, inline: bool = False) -> Fit | None:
    """Queue an absorb of the course's active fit: the answers stored since its snapshot (new learners and
    new answers of known ones) folded into its posterior without a refit, as a new Fit (``parent`` set)
    that runs and is activated like a fit. None where there is nothing to absorb or the active model
    cannot absorb (no per-learner traits). 409 where the course's fits are at their cap. ``inline`` as
    ``fit_create``'s."""
    active = Fit.objects.filter(course=course, active=True, status=Fit.SUCCEEDED).first()
    if active is None or active.kind not in ESTIMATORS or not get_estimator(active.kind).has_traits:
        return None
    after = int(active.snapshot.get("last_interaction_id") or 0)
    if not Interaction.objects.filter(course=course, id__gt=after).exists():
        return None
    return fit_create(course=course, kind=active.kind, params=active.params, inline=inline, parent=active)


class FitTimeLimitExceeded(Exception):
    """Raised inside a fit (at its next progress report) once it has run past its time limit."""


class _ProgressWriter:
    """Writes stage and percent on the Fit row at most twice a second, outside any transaction, and stops
    the fit (FitTimeLimitExceeded) at the first report past its deadline (time.monotonic() seconds)."""

    def __init__(self, fit_id: int, deadline: float | None = None) -> None:
        self.fit_id, self.last, self.deadline = fit_id, 0.0, deadline

    def __call__(self, stage: str, fraction: float) -> None:
        now = time.monotonic()
        if self.deadline is not None and now > self.deadline:
            raise FitTimeLimitExceeded(stage)
        if now - self.last < 0.5 and fraction < 1.0:
            return
        self.last = now
        Fit.objects.filter(pk=self.fit_id).update(stage=stage[:64], progress=round(float(min(max(fraction, 0), 1)), 4))


def _time_limit_message(fit: Fit) -> str:
    return (
        f"the fit ran past its time limit of {fit.time_limit} s (it grows with the course's answers: "
        "TRACING_FIT_TIME_LIMIT_BASE, _PER_1000_ANSWERS, _MAX) and was stopped; the previous fit stays active. "
        "Try fewer steps, epochs or iterations"
    )


def _fit_claim(fit_id: int, *, attempt: bool = True) -> tuple[Fit, bool]:
    """The fit, and whether to work on it: a queued fit becomes running (one attempt more). With
    ``attempt`` (a task that runs the whole fit) a running fit counts one attempt more too (its worker
    was lost and the task redelivered), and after MAX_ATTEMPTS the fit is marked failed instead; a shard
    of a fit another shard has started just goes on. A finished fit is left alone."""
    with transaction.atomic():
        fit = Fit.objects.select_for_update().select_related("course").get(pk=fit_id)
        if fit.status in (Fit.SUCCEEDED, Fit.FAILED):
            return fit, False  # a redelivered task for a finished fit: nothing to do
        if fit.status == Fit.RUNNING and not attempt:
            return fit, True
        if fit.attempts >= MAX_ATTEMPTS:
            fit.status, fit.error, fit.finished_at = (
                Fit.FAILED,
                "gave up after repeated worker loss",
                django_timezone.now(),
            )
            fit.save(update_fields=["status", "error", "finished_at"])
            return fit, False
        fit.status, fit.started_at, fit.attempts, fit.stage, fit.progress = (
            Fit.RUNNING,
            django_timezone.now(),
            fit.attempts + 1,
            "loading",
            0.0,
        )
        fit.save(update_fields=["status", "started_at", "attempts", "stage", "progress"])
    return fit, True


def _fit_progress(fit: Fit) -> _ProgressWriter:
    """The fit's progress writer, its deadline the fit's time limit counted from when it started."""
    if not fit.time_limit:
        return _ProgressWriter(fit.pk)
    ran = (django_timezone.now() - fit.started_at).total_seconds() if fit.started_at else 0.0
    return _ProgressWriter(fit.pk, time.monotonic() + fit.time_limit - max(ran, 0.0))


def _fit_fail(fit: Fit, error: Exception) -> None:
    """Mark the fit failed with the reason (the previous active fit stays in place)."""
    if isinstance(error, (FitTimeLimitExceeded, SoftTimeLimitExceeded)):
        logger.warning("fit %s ran past its time limit of %s s", fit.pk, fit.time_limit)
        reason = _time_limit_message(fit)
    else:
        logger.exception("fit %s failed", fit.pk, exc_info=error)
        reason = error.message if isinstance(error, ServiceError) else f"{type(error).__name__}: {error}"
    Fit.objects.filter(pk=fit.pk).update(
        status=Fit.FAILED,
        error=reason[:2000] or traceback.format_exc()[-2000:],
        finished_at=django_timezone.now(),
        active=False,
    )


def _fit_data(fit: Fit, up_to: int | None = None) -> tuple[Dataset, Vocabulary]:
    """The course's answers for the fit (those with id <= ``up_to`` where given), or ServiceError if none."""
    vocabulary = course_vocabulary(course=fit.course)
    data = interactions_for_fit(course=fit.course, vocabulary=vocabulary, up_to=up_to)
    if data.n_rows == 0:
        raise ServiceError("the course has no interactions to fit", code="no_data")
    return data, vocabulary


def _last_interaction_id(course: Course) -> int | None:
    return Interaction.objects.filter(course=course).order_by("-id").values_list("id", flat=True).first()


def fit_shard_count(fit: Fit) -> int:
    """How many shards a fit's EM is spread over: its ``shards`` parameter, else setting TRACING_BKT_SHARDS,
    for kinds that declare one (BKT); 1 for the others. Reads the declarations only: no model is imported."""
    if "shards" not in {param.name for param in estimator_params(fit.kind).params}:
        return 1
    return int(fit.params.get("shards", settings.TRACING_BKT_SHARDS))


def fit_snapshot(*, course: Course) -> int | None:
    """The bound every shard of a fit reads the course's answers up to (the latest answer's id now), so
    that all shards and the merge fit the same answers; None for a course without any."""
    return _last_interaction_id(course)


def fit_run(*, fit_id: int) -> Fit:
    """Fit, evaluate on held-out learners, save the artifact, then activate it atomically.

    Any failure, or running past the fit's time limit, marks the Fit failed with the reason and
    leaves the previous active fit in place. A fit with shards (``fit_shard_count``) runs them here one
    after the other (no broker, or no result backend for a chord) and merges them, as the workers would.
    """
    fit, go = _fit_claim(fit_id)
    if not go:
        return fit
    shards = fit_shard_count(fit)
    if shards > 1:
        up_to = fit_snapshot(course=fit.course)
        results = [fit_shard_run(fit_id=fit.pk, shard=shard, shards=shards, up_to=up_to) for shard in range(shards)]
        return fit_shards_merge(fit_id=fit.pk, results=results, up_to=up_to)
    progress = _fit_progress(fit)
    timings: dict[str, float] = {}
    try:
        started = time.perf_counter()
        data, vocabulary = _fit_data(fit)
        last_id = _last_interaction_id(fit.course)
        timings["load_s"] = time.perf_counter() - started
        estimator_class = get_estimator(fit.kind)
        held_out: Estimator | None = None
        test: Dataset | None = None
        metrics: dict[str, Any] | None = None
        if fit.parent_id is not None:
            step = time.perf_counter()
            estimator, metrics = _absorbed(fit, vocabulary, last_id or 0, progress)
            timings["absorb_s"] = time.perf_counter() - step
        else:
            declared = prerequisites_authored(course=fit.course)  # an absorb keeps its parent's graph
            if data.n_learners >= MIN_LEARNERS_FOR_HOLDOUT:
                train, test = split_learners(data, test_fraction=0.2, seed=0)
                step = time.perf_counter()
                held_out = (
                    estimator_class(**fit.params)
                    .with_known_prerequisites(declared)
                    .fit(train, seed=0, progress=lambda s, f: progress(f"evaluate:{s}", f * 0.45))
                )
                timings["fit_holdout_s"] = time.perf_counter() - step
                progress("fit", 0.5)  # evaluation reports no progress of its own: the deadline is checked here too
            step = time.perf_counter()
            estimator = (
                estimator_class(**fit.params)
                .with_known_prerequisites(declared)
                .fit(data, seed=0, progress=lambda s, f: progress(s, 0.5 + f * 0.45))
            )
            timings["fit_s"] = time.perf_counter() - step
        _fit_finish(
            fit, estimator, held_out, test, data, vocabulary, last_id, progress, timings, started, metrics=metrics
        )
    except Exception as error:
        _fit_fail(fit, error)
    fit.refresh_from_db()
    return fit


def _fit_finish(
    fit: Fit,
    estimator: Estimator,
    held_out: Estimator | None,
    test: Dataset | None,
    data: Dataset,
    vocabulary: Vocabulary,
    last_id: int | None,
    progress: _ProgressWriter,
    timings: dict[str, Any],
    started: float,
    *,
    metrics: dict[str, Any] | None = None,
) -> None:
    """Evaluate the held-out model (unless ``metrics`` come with the estimator, as an absorb's do), save
    the fitted one's artifact and activate it, with the timings."""
    metrics = dict(metrics or {})
    if held_out is not None and test is not None:
        metrics = {
            "next_step": evaluate(held_out, test),
            "multi_step": evaluate_multistep(held_out, test, horizon=10),
            "train_learners": data.n_learners - test.n_learners,
            "test_learners": test.n_learners,
        }
    artifact = artifact_save(estimator=estimator, name=f"{fit.course.slug}/fit-{fit.pk}.{fit.kind}")
    progress("activating", 0.96)
    step = time.perf_counter()

    def timed() -> dict[str, Any]:
        timings["activate_s"] = time.perf_counter() - step
        timings["total_s"] = time.perf_counter() - started
        timings["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        return _rounded(timings)

    _activate(fit, estimator, data, vocabulary, artifact, metrics, last_id, timed)


def _rounded(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 3)
    if isinstance(value, dict):
        return {key: _rounded(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_rounded(item) for item in value]
    return value


def _shard_plan(fit: Fit, up_to: int | None) -> tuple[Vocabulary, np.ndarray, list[Any]]:
    """What every shard and the merge of one fit read alike: the vocabulary, each item's answer count
    (which the skills' groups follow) and a mark of both that the merge compares."""
    vocabulary = course_vocabulary(course=fit.course)
    counts = item_answer_counts(course=fit.course, vocabulary=vocabulary, up_to=up_to)
    if not counts.any():
        raise ServiceError("the course has no interactions to fit", code="no_data")
    links = np.flatnonzero(np.asarray(vocabulary.q_matrix, dtype=bool).ravel()).tolist()
    seen = json.dumps([vocabulary.item_ids, vocabulary.skill_ids, links, counts.tolist()]).encode()
    return vocabulary, counts, [int(counts.sum()), hashlib.sha256(seen).hexdigest()]


def _separable(kind: str) -> type[SkillSeparable]:
    estimator_class = get_estimator(kind)
    if not issubclass(estimator_class, SkillSeparable):
        raise ServiceError(f"{kind} fits cannot be sharded", code="invalid_params", field="params.shards")
    return estimator_class


def fit_shard_run(*, fit_id: int, shard: int, shards: int, up_to: int | None) -> dict[str, Any] | None:
    """One shard of a sharded fit: EM on its group of skills (``skill_shards``) of the course's answers up
    to ``up_to``, on the held-out split's training learners and on all of them. Returns the parts
    (JSON-ready, small: a few numbers per skill and link) for ``fit_shards_merge``; a failure marks the
    fit failed and returns None, so the other shards skip their work and the merge activates nothing."""
    fit, go = _fit_claim(fit_id, attempt=False)
    if not go:
        return None
    progress = _fit_progress(fit)
    name = f"shard {shard + 1}/{shards}"
    try:
        began, started = time.time(), time.perf_counter()
        vocabulary, counts, mark = _shard_plan(fit, up_to)
        estimator = _separable(fit.kind)(**fit.params)
        skills = estimator.skill_shards(vocabulary.q_matrix, counts, shards)[shard]
        items = estimator.shard_items(vocabulary.q_matrix, skills)
        data = interactions_for_fit(course=fit.course, vocabulary=vocabulary, up_to=up_to, items=items)
        loaded = time.perf_counter()
        result: dict[str, Any] = {"shard": shard, "data": mark, "learners": data.n_learners, "train": None}
        if data.n_learners >= MIN_LEARNERS_FOR_HOLDOUT:
            train, _ = split_learners(data, test_fraction=0.2, seed=0)
            result["train"] = estimator.fit_skills(
                train, skills, seed=0, progress=lambda s, f: progress(f"{name}:evaluate:{s}", f * 0.45)
            )
        result["full"] = estimator.fit_skills(
            data, skills, seed=0, progress=lambda s, f: progress(f"{name}:{s}", 0.5 + f * 0.45)
        )
        result["timings"] = {
            "shard": shard,
            "started": began,  # wall clock: shards on different machines are compared by it
            "rows": data.n_rows,
            "load_s": loaded - started,
            "fit_s": time.perf_counter() - loaded,
            "pid": os.getpid(),
        }
        return result
    except Exception as error:
        _fit_fail(fit, error)
        return None


def fit_shards_merge(*, fit_id: int, results: Sequence[dict[str, Any] | None], up_to: int | None) -> Fit:
    """Merge a sharded fit's parts (in any order) into the one-worker fit, evaluate, save and activate,
    as ``fit_run`` does. A fit a shard failed stays failed; nothing is activated unless every shard's
    part is here and every shard read the same answers as this merge."""
    fit = Fit.objects.select_related("course").get(pk=fit_id)
    if fit.status != Fit.RUNNING:
        return fit  # a shard failed it, or a redelivered merge of a finished fit
    progress = _fit_progress(fit)
    timings: dict[str, Any] = {}
    try:
        started = time.perf_counter()
        if any(result is None for result in results):
            raise ServiceError("a shard of the fit did not finish", code="shard_failed")
        parts = sorted((result for result in results if result is not None), key=lambda result: result["shard"])
        _, _, mark = _shard_plan(fit, up_to)
        data, vocabulary = _fit_data(fit, up_to)
        last_id = _last_interaction_id(fit.course)
        if any(part["data"] != mark or part["learners"] != data.n_learners for part in parts):
            raise ServiceError(
                "the course's answers or items changed while the shards read them; start the fit again",
                code="shard_mismatch",
            )
        timings["load_s"] = time.perf_counter() - started
        timings["shards"] = [part["timings"] for part in parts]
        estimator_class = _separable(fit.kind)
        held_out, test = None, None
        if data.n_learners >= MIN_LEARNERS_FOR_HOLDOUT:
            train, test = split_learners(data, test_fraction=0.2, seed=0)
            held_out = estimator_class(**fit.params).from_parts(train, [part["train"] for part in parts])
        estimator = estimator_class(**fit.params).from_parts(data, [part["full"] for part in parts])
        _fit_finish(fit, estimator, held_out, test, data, vocabulary, last_id, progress, timings, started)
    except Exception as error:
        _fit_fail(fit, error)
    fit.refresh_from_db()
    return fit


def _absorbed(
    fit: Fit, vocabulary: Vocabulary, up_to_id: int, progress: Callable[[str, float], None]
) -> tuple[Estimator, dict]:
    """An absorb's model: its parent's, with the answers stored since the parent's snapshot, up to
    ``up_to_id`` (this fit's), folded in by the estimator's ``absorb`` (the course posterior frozen): a
    learner the parent knows resumes from its stored posterior and state with its new answers only, a
    new learner brings their whole history. The metrics say what was absorbed and carry the parent's
    held-out metrics (an absorb is not evaluated)."""
    parent = Fit.objects.get(pk=fit.parent_id)
    estimator = artifact_load(kind=parent.kind, name=parent.artifact)  # its own copy: absorb changes it
    after = int(parent.snapshot.get("last_interaction_id") or 0)
    new = interactions_between(course=fit.course, vocabulary=vocabulary, after_id=after, up_to_id=up_to_id)
    unknown = [index for index, name in enumerate(new.learner_ids) if not estimator.knows_learner(name)]
    if unknown:
        # A learner new to the model brings every answer they have, not only those after the snapshot.
        pk_of = dict(Learner.objects.filter(course=fit.course).values_list("external_id", "id"))
        whole = learners_histories(
            course=fit.course, learner_pks=[pk_of[new.learner_ids[index]] for index in unknown], vocabulary=vocabulary
        )
        name_of = {str(pk): name for name, pk in pk_of.items()}
        whole = dataclasses.replace(whole, learner_ids=tuple(name_of[pk] for pk in whole.learner_ids))
        known = new.subset([index for index in range(new.n_learners) if index not in set(unknown)])
        new = concat(known, whole)
    started = time.perf_counter()
    if new.n_learners:
        estimator.absorb(new, seed=0, progress=lambda stage, done: progress(f"absorb:{stage}", done * 0.9))
    seconds = time.perf_counter() - started
    metrics = {
        "absorbed": {
            "parent": parent.pk,
            "after_interaction_id": after,
            "learners": new.n_learners,
            "new_learners": len(unknown),
            "answers": new.n_rows,
            "seconds": round(seconds, 3),
        },
        "parent_metrics": parent.metrics,
    }
    return estimator, metrics


def _activate(
    fit: Fit,
    estimator: Estimator,
    data,
    vocabulary: Vocabulary,
    artifact: str,
    metrics: dict[str, Any],
    last_id: int | None,
    timings: Callable[[], dict[str, Any]],
) -> None:
    """Write every learner's mastery under ``fit``, batch by batch, then make it the active fit (with
    ``timings()``, read at that moment, so a fit is never seen succeeded without them).

    The course's answers go on meanwhile: each batch holds only its own learners (``mastery_recompute``),
    so an answer waits at most for one batch, never for the whole recompute (minutes on a course of
    millions of answers). The activation itself is one short transaction. Learners who answered after
    their batch was written were updated under the previous fit; ``mastery_settle`` replays them under
    this one once every process has seen the change. Until then their rows name the previous fit (each
    Mastery row says which fit wrote it). A recompute that fails puts back what it had written
    (``_mastery_restore``)."""
    course = fit.course
    try:
        mastery_recompute(course=course, fit=fit, estimator=estimator, data=data, vocabulary=vocabulary)
    except Exception:
        _mastery_restore(course=course, fit=fit)
        raise
    with transaction.atomic():
        # Answers being recorded under the previous fit commit first, so the settling pass below
        # finds their traces; new ones wait only for these few statements.
        course_learners_lock(course_pk=fit.course_id)
        Fit.objects.filter(course=fit.course, active=True).update(active=False)
        Fit.objects.filter(pk=fit.pk).update(
            status=Fit.SUCCEEDED,
            active=True,
            artifact=str(artifact),
            metrics=_finite(metrics),
            fitted_params=_finite(estimator.params()),
            stage="done",
            progress=1.0,
            finished_at=django_timezone.now(),
            timings=timings(),
            snapshot={
                "interactions": data.n_rows,
                "learners": data.n_learners,
                "items": data.n_items,
                "skills": data.n_skills,
                "last_interaction_id": last_id,
            },
        )
        fit.refresh_from_db()
        learned_edges_store(course=fit.course, fit_pk=fit.pk, edges=estimator.learned_prerequisites())
        transaction.on_commit(lambda: course_model_forget(fit.course))
    mastery_settle(course=course, model=CourseModel(estimator=estimator, fit=fit, vocabulary=vocabulary))
    # Every learner's rows were just rewritten (10M at 5M answers): the dashboard's and the API's reads by
    # a few learners plan as index scans only with fresh statistics.
    tables_analyze([Mastery._meta.db_table, LearnerTrace._meta.db_table])


def fits_learner_forget(*, course: Course, learner: str, replacement: str) -> int:
    """Rewrite the artifacts of the course's fits that name ``learner`` (models with per-learner
    parameters keep learner ids) to name ``replacement`` instead, point the fits at the rewritten
    copies, and delete the originals once the caller's transaction commits; returns how many fits
    changed. Runs inside the erasure's transaction: a failure here leaves the fits as they were (a
    rewritten copy already stored names nobody)."""
    changed = 0
    for fit_pk, name in Fit.objects.filter(course=course).exclude(artifact="").values_list("pk", "artifact"):
        renamed = artifact_learner_forget(name=name, learner=learner, replacement=replacement)
        if renamed is None:
            continue
        Fit.objects.filter(pk=fit_pk).update(artifact=renamed)
        transaction.on_commit(lambda name=name: artifact_delete(name=name))
        changed += 1
    if changed:
        transaction.on_commit(lambda: course_model_forget(course))
    return changed


def _estimator_vocabulary(model: CourseModel) -> Vocabulary:
    """The estimator's items and skills in its own order, with each item's pk (-1 where the course has
    lost it): loading against it keeps only the answers the estimator can read, as ``_replay_many`` does."""
    estimator = model.estimator
    pk_of = dict(zip(model.vocabulary.item_ids, model.vocabulary.item_pk))
    return Vocabulary(
        item_ids=tuple(estimator.item_ids),
        skill_ids=tuple(estimator.skill_ids),
        q_matrix=np.asarray(estimator.q_matrix, dtype=bool),
        item_pk=tuple(pk_of.get(item, -1) for item in estimator.item_ids),
        skill_pk=(),
    )


def _states_replayed(
    course: Course, model: CourseModel, learner_pks: list[int], vocabulary: Vocabulary | None = None
) -> dict[int, LearnerState]:
    """Each learner's state from their whole history. On PostgreSQL the histories come as numpy arrays
    and go through the estimator's ``final_states`` (vectorised where the model is); elsewhere
    ``_replay_many``'s answer-by-answer replay."""
    if connection.vendor != "postgresql":
        return _replay_many(model, learner_pks)
    # Learners with re-inferred traits replay from them (the vectorised path knows the fit's traits only).
    personal = _stored_traits(model, learner_pks)
    replayed = _replay_many(model, [pk for pk in learner_pks if pk in personal]) if personal else {}
    learner_pks = [pk for pk in learner_pks if pk not in personal]
    estimator = model.estimator
    data, pks = interactions_of_learners(
        course=course, learner_pks=learner_pks, vocabulary=vocabulary or _estimator_vocabulary(model)
    )
    states = {pk: estimator.initial_state() for pk in learner_pks}
    states.update(zip(pks.tolist(), estimator.final_states(data)))
    states.update(replayed)
    return states


def mastery_refresh_pending(
    *, course: Course, batch: int = MASTERY_BATCH, progress: Callable[[int], Any] | None = None
) -> list[int]:
    """Replay the whole history of every learner of the course whose mastery is pending (a file import
    stored answers of theirs without the online update: ``tutor.activity``) under the course's active model,
    store their mastery and traces, and clear the mark; returns the learners refreshed (pks, ascending).

    Runs after the import has committed, ``batch`` learners to a transaction, so the import's transaction
    carries none of it and a reader waits on at most one batch. Each batch locks its learners (as an answer's
    online update does, so the two serialise: the state written is the replay of the history as stored
    then, an answer that arrived meanwhile included), keeps those still marked (a refresh running beside
    this one may have done them), and reads the active fit again under the locks (a fit activated since
    the last batch rewrote every learner; its model replays these). A refresh that stops half way leaves
    the rest marked for the next one. ``progress`` gets the learners done so far after each batch."""
    model = course_model(course)
    vocabulary = _estimator_vocabulary(model) if connection.vendor == "postgresql" else None
    unchecked = row_triggers_skippable()
    done: list[int] = []
    after = 0
    while True:
        candidates = activity_pending(course_pk=course.pk, after=after, limit=batch)
        if not candidates:
            if done:  # a file's worth of learners rewritten: reads plan with the new rows (tables_analyze)
                tables_analyze([Mastery._meta.db_table, LearnerTrace._meta.db_table])
            return done
        after = candidates[-1]
        with transaction.atomic():
            learners_lock(learner_pks=candidates)
            chunk = activity_pending(course_pk=course.pk, after=0, limit=len(candidates), among=candidates)
            active = Fit.objects.filter(course=course, active=True).values_list("id", flat=True).first()
            if active != (model.fit.pk if model.fit is not None else None):
                course_model_forget(course)
                model = course_model(course)
                vocabulary = _estimator_vocabulary(model) if connection.vendor == "postgresql" else None
            if chunk:
                states = _states_replayed(course, model, chunk, vocabulary)
                _mastery_write(model, states, django_timezone.now(), learners_locked=unchecked)
                activity_pending_mark(learner_pks=chunk, pending=False)
        done.extend(chunk)
        if progress is not None:
            progress(len(done))


def _learner_slice(data, start: int, stop: int):
    """Learners ``start:stop`` of a Dataset as a Dataset over views of its arrays (no copy but the indices)."""
    low, high = int(data.offsets[start]), int(data.offsets[stop])
    return type(data)(
        learner=data.learner[low:high] - start,
        item=data.item[low:high],
        correct=data.correct[low:high],
        timestamp=data.timestamp[low:high],
        q_matrix=data.q_matrix,
        item_ids=data.item_ids,
        skill_ids=data.skill_ids,
        learner_ids=data.learner_ids[start:stop],
        has_time=data.has_time,
    )


def _answer_counts(course: Course) -> tuple[np.ndarray, np.ndarray]:
    """(learner pks in id order, their stored answer counts) for the course's learners with answers."""
    if connection.vendor == "postgresql":
        learners, counts = copy_columns(
            f"SELECT learner_id::int8, count(*)::int8 FROM {Interaction._meta.db_table} "
            "WHERE course_id = %s GROUP BY learner_id ORDER BY learner_id",
            [course.pk],
            "ii",
        )
        return learners, counts
    pairs = list(
        Interaction.objects.filter(course=course)
        .order_by("learner_id")
        .values_list("learner_id")
        .annotate(n=Count("id"))
    )
    return (np.array([pk for pk, _ in pairs], dtype=np.int64), np.array([n for _, n in pairs], dtype=np.int64))


class Pacer:
    """Paces a bulk write done in steps: ``step()`` before each one sleeps ``pause`` times as long as the
    step before took (nothing before the first, so nothing after the last). The write's PostgreSQL backend
    runs at the database's CPU and I/O priority, which a worker's nice does not reach: pausing is the
    worker's one way to leave the web room, and a duty cycle (rather than a fixed sleep) leaves more of it on
    a machine that is busy, where each step takes longer."""

    def __init__(self, pause: float) -> None:
        self.pause, self.paused = pause, 0.0
        self.began: float | None = None

    def step(self) -> None:
        if self.pause > 0 and self.began is not None:
            wait = self.pause * (time.perf_counter() - self.began)
            time.sleep(wait)
            self.paused += wait
        self.began = time.perf_counter()


def mastery_recompute(
    *,
    course: Course,
    fit: Fit,
    estimator: Estimator,
    data,
    vocabulary: Vocabulary,
    batch: int | None = None,
    progress: Callable[[float], None] | None = None,
    pause: float | None = None,
) -> int:
    """Every learner's mastery and trace under ``fit`` (about to be activated); returns the learner count.

    In batches of ``batch`` learners (default setting TRACING_RECOMPUTE_BATCH), each its own transaction
    holding its learners (``learners_lock``), so their online updates wait for the batch and no longer,
    and everyone else's go on. ``data`` was read when the fit began (minutes ago, for a deep model): a
    learner whose stored answers differ from it in number, counted under the batch's lock, is replayed
    from the stored history instead; learners whose first answers came after are replayed at the end.
    After each batch it pauses ``pause`` times as long as the batch took (default
    TRACING_RECOMPUTE_PAUSE; ``Pacer``): what is written does not depend on either. Progress goes to
    ``progress`` (a fraction, after each batch, outside its transaction) and the log.

    The rows name ``fit``. While it is not active yet, an answer of a learner already written is
    updated under the active fit, which writes that learner's rows and trace again under it;
    ``mastery_settle`` catches those after the activation.
    """
    batch = batch or settings.TRACING_RECOMPUTE_BATCH
    pacer = Pacer(settings.TRACING_RECOMPUTE_PAUSE if pause is None else pause)
    model = CourseModel(estimator=estimator, fit=fit, vocabulary=vocabulary)
    pk_by_name = dict(Learner.objects.filter(course=course).values_list("external_id", "id"))
    pks = np.fromiter((pk_by_name[name] for name in data.learner_ids), dtype=np.int64, count=data.n_learners)
    del pk_by_name
    replay_vocabulary = _estimator_vocabulary(model) if connection.vendor == "postgresql" else None
    unchecked = row_triggers_skippable()
    now, done, total = django_timezone.now(), 0, data.n_learners
    for start in range(0, data.n_learners, batch):
        pacer.step()
        stop = min(start + batch, data.n_learners)
        part_pks = pks[start:stop]
        with transaction.atomic():
            learners_lock(learner_pks=part_pks.tolist())
            counts = _answer_counts_of(part_pks)
            fresh = counts == data.lengths[start:stop]
            states = {
                pk: state
                for pk, state, kept in zip(
                    part_pks.tolist(), estimator.final_states(_learner_slice(data, start, stop)), fresh.tolist()
                )
                if kept
            }
            if not fresh.all():
                states.update(_states_replayed(course, model, part_pks[~fresh].tolist(), replay_vocabulary))
            _mastery_write(model, states, now, learners_locked=unchecked)
        done += len(states)
        _recompute_progress(fit, done, total, progress, pacer)
    stored_pks, _ = _answer_counts(course)
    newcomers = stored_pks[~np.isin(stored_pks, pks)]  # in id order
    total += len(newcomers)
    for start in range(0, len(newcomers), batch):
        pacer.step()
        chunk = newcomers[start : start + batch].tolist()
        with transaction.atomic():
            learners_lock(learner_pks=chunk)
            _mastery_write(
                model, _states_replayed(course, model, chunk, replay_vocabulary), now, learners_locked=unchecked
            )
        done += len(chunk)
        _recompute_progress(fit, done, total, progress, pacer)
    return total


SETTLE_WAIT_MAX = 10.0
"""Seconds ``mastery_settle`` waits at most for other processes to see a new fit."""


def mastery_settle(*, course: Course, model: CourseModel, batch: int = MASTERY_BATCH) -> int:
    """After ``model``'s fit was activated: replay under it the course's learners whose trace is under
    another fit (they answered while the recompute ran, after their batch, and were updated under the
    fit active then), in batches of ``batch`` learners, each under their lock; returns how many.

    A process may go on serving the previous fit for TRACING_MODEL_RECHECK seconds after the activation
    (``course_model``), so the pass starts after that long (10 s at most: a longer recheck leaves the few
    answering in between to their next answer, which replays them, as ``_traces_write`` says) and looks
    again until it finds no one. A fit activated after ``model``'s settles its own course: this one stops."""
    if model.fit is None:
        return 0
    time.sleep(min(settings.TRACING_MODEL_RECHECK, SETTLE_WAIT_MAX))
    vocabulary = _estimator_vocabulary(model) if connection.vendor == "postgresql" else None
    unchecked = row_triggers_skippable()
    settled = 0
    for _ in range(3):
        behind = list(
            LearnerTrace.objects.filter(learner__course=course)
            .exclude(fit_id=model.fit.pk)
            .order_by("learner_id")
            .values_list("learner_id", flat=True)
            .distinct()
        )
        if not behind:
            break
        for start in range(0, len(behind), batch):
            chunk = behind[start : start + batch]
            with transaction.atomic():
                learners_lock(learner_pks=chunk)
                if Fit.objects.filter(course=course, active=True).values_list("id", flat=True).first() != model.fit.pk:
                    return settled
                _mastery_write(
                    model,
                    _states_replayed(course, model, chunk, vocabulary),
                    django_timezone.now(),
                    learners_locked=unchecked,
                )
            settled += len(chunk)
    if settled:
        logger.info("fit %s: %d learners who answered during the recompute replayed under it", model.fit.pk, settled)
    return settled


def _mastery_restore(*, course: Course, fit: Fit) -> None:
    """A recompute that failed part way: its traces go, and the learners it had written get their
    mastery again under the active fit (best effort: this runs while an error is on its way up)."""
    try:
        written = list(LearnerTrace.objects.filter(fit=fit).values_list("learner_id", flat=True))
        LearnerTrace.objects.filter(fit=fit).delete()
        model = course_model(course)
        vocabulary = _estimator_vocabulary(model) if connection.vendor == "postgresql" else None
        for start in range(0, len(written), MASTERY_BATCH):
            chunk = written[start : start + MASTERY_BATCH]
            with transaction.atomic():
                learners_lock(learner_pks=chunk)
                _mastery_write(model, _states_replayed(course, model, chunk, vocabulary), django_timezone.now())
    except Exception:  # noqa: BLE001 - the recompute's own error is the one to report
        logger.exception("fit %s: the mastery it had written could not be put back", fit.pk)


def _answer_counts_of(learner_pks: np.ndarray) -> np.ndarray:
    """Stored answer counts of these learners, in their order (0 for a learner without answers)."""
    counted = dict(
        Interaction.objects.filter(learner_id__in=learner_pks.tolist())
        .values("learner_id")
        .annotate(n=Count("id"))
        .values_list("learner_id", "n")
    )
    return np.array([counted.get(pk, 0) for pk in learner_pks.tolist()], dtype=np.int64)


def _recompute_progress(
    fit: Fit, done: int, total: int, progress: Callable[[float], None] | None, pacer: Pacer
) -> None:
    logger.info("fit %s: mastery of %d of %d learners written (paused %.1f s)", fit.pk, done, total, pacer.paused)
    if progress is not None:
        progress(done / max(total, 1))


def _finite(value: Any) -> Any:
    """JSON has no NaN: metrics of a one-class test set become null."""
    if isinstance(value, float):
        return value if np.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def fits_for_course(*, course: Course) -> QuerySet[Fit]:
    return Fit.objects.filter(course=course).order_by("-created_at")
