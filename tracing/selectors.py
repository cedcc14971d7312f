"""Reads for the tracing layer: stored interactions as the tracing package's Dataset, and stored mastery."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from django.db import connection
from django.db.models import Count

from core.sql import CHUNK
from curriculum.models import Course, Item, Skill
from tracing.data import Dataset
from tracing.models import Mastery
from tutor.hot_queries import copy_columns
from tutor.models import Interaction, Learner

_INTERACTION = Interaction._meta.db_table


@dataclass(frozen=True)
class Vocabulary:
    """A course's items and skills in a fixed order, and the Q-matrix (n_items, n_skills) bool."""

    item_ids: tuple[str, ...]
    skill_ids: tuple[str, ...]
    q_matrix: np.ndarray
    item_pk: tuple[int, ...]
    skill_pk: tuple[int, ...]


def course_vocabulary(*, course: Course) -> Vocabulary:
    items = list(Item.objects.filter(course=course).order_by("id").values_list("id", "external_id"))
    skills = list(Skill.objects.filter(course=course).order_by("id").values_list("id", "external_id"))
    item_row = {pk: row for row, (pk, _) in enumerate(items)}
    skill_column = {pk: column for column, (pk, _) in enumerate(skills)}
    q_matrix = np.zeros((len(items), len(skills)), dtype=bool)
    links = Item.skills.through.objects.filter(item__course=course).values_list("item_id", "skill_id")
    for item_pk, skill_pk in links:
        q_matrix[item_row[item_pk], skill_column[skill_pk]] = True
    return Vocabulary(
        item_ids=tuple(e for _, e in items),
        skill_ids=tuple(e for _, e in skills),
        q_matrix=q_matrix,
        item_pk=tuple(pk for pk, _ in items),
        skill_pk=tuple(pk for pk, _ in skills),
    )


def _dataset(course: Course, vocabulary: Vocabulary, queryset, learner_names: dict[int, str]) -> Dataset:
    item_row = {pk: row for row, pk in enumerate(vocabulary.item_pk)}
    # Answers keep arriving while a fit reads the course: rows of a learner or an item created after the
    # names and the vocabulary were read are left out (the fit's activation replays those learners).
    rows = [
        row
        for row in queryset.order_by("learner_id", "timestamp", "id").values_list(
            "learner_id", "item_id", "correct", "timestamp"
        )
        if row[0] in learner_names and row[1] in item_row
    ]
    learner_pks = sorted({r[0] for r in rows})
    learner_index = {pk: index for index, pk in enumerate(learner_pks)}
    learner = np.fromiter((learner_index[r[0]] for r in rows), dtype=np.int32, count=len(rows))
    item = np.fromiter((item_row[r[1]] for r in rows), dtype=np.int32, count=len(rows))
    correct = np.fromiter((r[2] for r in rows), dtype=np.float32, count=len(rows))
    timestamp = np.fromiter((r[3].timestamp() for r in rows), dtype=np.float64, count=len(rows))
    return Dataset(
        learner=learner,
        item=item,
        correct=correct,
        timestamp=timestamp,
        q_matrix=vocabulary.q_matrix,
        item_ids=vocabulary.item_ids,
        skill_ids=vocabulary.skill_ids,
        learner_ids=tuple(learner_names[pk] for pk in learner_pks),
        has_time=course.has_clock,
    )


def _dataset_arrays(
    course: Course, vocabulary: Vocabulary, learner_names: dict[int, str], where: str, params: list, expected: int
) -> tuple[Dataset, np.ndarray]:
    """PostgreSQL: the same Dataset as ``_dataset``, read by binary COPY straight into numpy arrays (no
    Python object per answer): 20 bytes an answer kept, about 30 while reading (items become their
    vocabulary row block by block). Time as epoch seconds computed by the database: the float
    ``datetime.timestamp()`` gives. Returns the Dataset and its learners' pks (int64, in its order)."""
    item_pk = np.asarray(vocabulary.item_pk, dtype=np.int64)
    order = np.argsort(item_pk, kind="stable")  # the course's vocabulary is in id order; a model's may not be
    sorted_pk = item_pk[order]

    def item_row(pks: np.ndarray) -> np.ndarray:
        """Item pks -> the vocabulary's row, -1 for an item it does not hold (one block at a time)."""
        if not len(sorted_pk):
            return np.full(len(pks), -1, dtype=np.int32)
        position = np.minimum(np.searchsorted(sorted_pk, pks), len(sorted_pk) - 1)
        return np.where(sorted_pk[position] == pks, order[position], -1)

    learner, row, correct, moment = copy_columns(
        f"SELECT learner_id::int8, item_id::int8, correct::float8, EXTRACT(EPOCH FROM timestamp)::float8 "
        f"FROM {_INTERACTION} WHERE {where} ORDER BY learner_id, timestamp, id",
        params,
        ("i", "i4", "f4", "f"),
        expected=expected,
        convert={1: item_row},
    )
    # Rows are in learner order: each learner's run of rows is found once, and the learner checked once.
    first = np.ones(len(learner), dtype=bool)
    np.not_equal(learner[1:], learner[:-1], out=first[1:])
    starts = np.flatnonzero(first)
    learner_pks = learner[starts]
    named = np.fromiter(learner_names, dtype=np.int64, count=len(learner_names))
    # Answers keep arriving while a fit reads the course: rows of a learner created after the names were
    # read are left out (the fit's activation replays those learners), as are items it does not know.
    member = np.isin(learner_pks, named)
    del learner, first
    counts = np.diff(np.append(starts, len(row)))
    known = row >= 0
    if not (member.all() and known.all()):
        keep = np.repeat(member, counts) & known
        counts = np.add.reduceat(keep, starts, dtype=np.int64)[member] if len(starts) else counts
        row, correct, moment = row[keep], correct[keep], moment[keep]
        learner_pks = learner_pks[member]
        del keep
    del known
    if len(counts) and not counts.all():  # a learner whose every row was left out has none
        learner_pks, counts = learner_pks[counts > 0], counts[counts > 0]
    index = np.repeat(np.arange(len(learner_pks), dtype=np.int32), counts)
    return Dataset(
        learner=index,
        item=row,
        correct=correct,
        timestamp=moment,
        q_matrix=vocabulary.q_matrix,
        item_ids=vocabulary.item_ids,
        skill_ids=vocabulary.skill_ids,
        learner_ids=tuple(learner_names[pk] for pk in learner_pks.tolist()),
        has_time=course.has_clock,
    ), learner_pks


def interactions_for_fit(
    *, course: Course, vocabulary: Vocabulary | None = None, up_to: int | None = None, items: np.ndarray | None = None
) -> Dataset:
    """Every interaction of the course (with ``up_to``: those whose id is at most that) as one Dataset,
    learners in id order, rows in time order.

    With ``items`` (rows of the vocabulary), only the answers on those items, yet every learner of the
    whole Dataset in its order (some then with no row): a shard of a fit reads its skills' answers
    alone and still splits the learners as the whole fit does.
    """
    vocabulary = vocabulary or course_vocabulary(course=course)
    names = dict(Learner.objects.filter(course=course).values_list("id", "external_id"))
    interactions = Interaction.objects.filter(course=course)
    where, params = "course_id = %s", [course.pk]
    if up_to is not None:
        interactions = interactions.filter(id__lte=up_to)
        where, params = where + " AND id <= %s", params + [up_to]
    if items is None:
        if connection.vendor == "postgresql":
            return _dataset_arrays(course, vocabulary, names, where, params, interactions.count())[0]
        return _dataset(course, vocabulary, interactions, names)
    # The whole Dataset's learners: those with an answer, named when read. (Answers are on the course's
    # items, which the vocabulary read after ``up_to`` holds; a filter on them made this query 10 times
    # slower. The merge compares its learner count with every shard's.)
    everyone = sorted(set(interactions.order_by().values_list("learner_id", flat=True).distinct()) & names.keys())
    chosen = [vocabulary.item_pk[row] for row in np.asarray(items, dtype=np.int64).tolist()]
    if connection.vendor == "postgresql":
        where, params = where + " AND item_id = ANY(%s::bigint[])", params + [chosen]
        part = _dataset_arrays(course, vocabulary, names, where, params, 0)[0]
    else:
        part = _dataset(course, vocabulary, interactions.filter(item_id__in=chosen), names)
    position = {names[pk]: index for index, pk in enumerate(everyone)}
    own = np.array([position[name] for name in part.learner_ids], dtype=np.int32)
    return Dataset(
        learner=own[part.learner] if part.n_rows else np.zeros(0, dtype=np.int32),
        item=part.item,
        correct=part.correct,
        timestamp=part.timestamp,
        q_matrix=vocabulary.q_matrix,
        item_ids=vocabulary.item_ids,
        skill_ids=vocabulary.skill_ids,
        learner_ids=tuple(names[pk] for pk in everyone),
        has_time=course.has_clock,
    )


def item_answer_counts(*, course: Course, vocabulary: Vocabulary, up_to: int | None = None) -> np.ndarray:
    """(n_items,) int64: the course's answers on each of the vocabulary's items (id at most ``up_to``)."""
    interactions = Interaction.objects.filter(course=course)
    if up_to is not None:
        interactions = interactions.filter(id__lte=up_to)
    row = {pk: index for index, pk in enumerate(vocabulary.item_pk)}
    counts = np.zeros(len(vocabulary.item_pk), dtype=np.int64)
    for item_pk, count in interactions.values_list("item_id").annotate(n=Count("id")).order_by():
        if item_pk in row:
            counts[row[item_pk]] = count
    return counts


def interactions_of_learners(
    *, course: Course, learner_pks: list[int], vocabulary: Vocabulary
) -> tuple[Dataset, np.ndarray]:
    """PostgreSQL only: these learners' interactions on the vocabulary's items (rows of other items left
    out) as one Dataset named by learner pk, and the pks of its learners in order (those with no such row
    are left out). A chunk of a file import's learners, whose mastery is refreshed."""
    names = {pk: str(pk) for pk in learner_pks}
    return _dataset_arrays(course, vocabulary, names, "learner_id = ANY(%s::bigint[])", [list(learner_pks)], 0)


def learners_histories(*, course: Course, learner_pks: Sequence[int], vocabulary: Vocabulary) -> Dataset:
    """These learners' whole histories as one Dataset named by learner pk (as text), learners in pk order,
    those without an answer left out; any database (a trait refresh's few learners)."""
    names = {pk: str(pk) for pk in learner_pks}
    return _dataset(course, vocabulary, Interaction.objects.filter(course=course, learner_id__in=list(names)), names)


def interactions_between(*, course: Course, vocabulary: Vocabulary, after_id: int, up_to_id: int) -> Dataset:
    """The course's interactions with ids in (``after_id``, ``up_to_id``] (an absorb's new answers), named by
    learner external id, learners in id order, rows in time order."""
    names = dict(Learner.objects.filter(course=course).values_list("id", "external_id"))
    rows = Interaction.objects.filter(course=course, id__gt=after_id, id__lte=up_to_id)
    return _dataset(course, vocabulary, rows, names)


def learner_history(*, learner: Learner, vocabulary: Vocabulary) -> Dataset:
    """One learner's interactions as a one-learner Dataset (empty if none)."""
    return _dataset(
        learner.course, vocabulary, Interaction.objects.filter(learner=learner), {learner.pk: learner.external_id}
    )


def stored_mastery(*, course: Course, learners: Iterable[str]) -> dict[str, dict[str, float]]:
    """learner external id -> skill external id -> stored P(known), for the named learners of ``course``."""
    names = sorted(set(learners))
    result: dict[str, dict[str, float]] = {}
    for start in range(0, len(names), CHUNK):
        rows = Mastery.objects.filter(
            learner__course=course, learner__external_id__in=names[start : start + CHUNK]
        ).values_list("learner__external_id", "skill__external_id", "probability")
        for learner, skill, probability in rows:
            result.setdefault(learner, {})[skill] = round(float(probability), 6)
    return result
