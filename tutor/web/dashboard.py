"""Read-side queries for the staff dashboard: plain data out, no HTML (the views turn it into SVG)."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from django.db.models import Count, Max, QuerySet, Sum
from django.db.models.functions import TruncDate

from core import sql
from curriculum.graph import AUTHORED, LEARNED, PrerequisiteGraph
from curriculum.models import Course, Item, Prerequisite, Skill
from tracing.models import Fit, Mastery
from tutor.lti.models import ClassMember
from tutor.models import DayActivity, Interaction, ItemActivity, Learner, LearnerActivity

GUESS_OVER_SLIP = 0.3
"""An item whose guess exceeds its slip by more than this is answered right without the skill too often."""
LOW_LEARNING = 0.01
"""A skill whose P(learn) per practice is below this barely moves: the items may not teach or measure it."""


def courses_overview() -> list[dict[str, Any]]:
    """Every course with its counts and active fit: answers from the per-day sums (``tutor.activity``),
    one query per table."""

    def counts(model: Any) -> dict[int, int]:
        return dict(model.objects.values_list("course").annotate(n=Count("id")).values_list("course", "n"))

    learners, skills, items = counts(Learner), counts(Skill), counts(Item)
    interactions = dict(
        DayActivity.objects.filter(clock=False)
        .values_list("course")
        .annotate(n=Sum("answers"))
        .values_list("course", "n")
    )
    last = dict(
        LearnerActivity.objects.values_list("course").annotate(last=Max("last_stored")).values_list("course", "last")
    )
    active = {fit.course_id: fit for fit in Fit.objects.filter(active=True)}
    return [
        {
            "course": course,
            "learners": learners.get(course.pk, 0),
            "interactions": interactions.get(course.pk) or 0,
            "skills": skills.get(course.pk, 0),
            "items": items.get(course.pk, 0),
            "last_activity": last.get(course.pk),
            "active_fit": active.get(course.pk),
        }
        for course in Course.objects.order_by("slug")
    ]


def _answers(course: Course, learners: QuerySet[Learner] | None) -> QuerySet[Interaction]:
    """The course's answers, or those of ``learners`` only (a teacher's class)."""
    answers = Interaction.objects.filter(course=course)
    return answers if learners is None else answers.filter(learner__in=learners.values("pk"))


def _totals(course: Course, learners: QuerySet[Learner] | None) -> tuple[int, float]:
    """(answers, their correct sum) of the course, or of ``learners``, from the kept sums."""
    if learners is None:
        sums = DayActivity.objects.filter(course=course, clock=False)
    else:
        sums = LearnerActivity.objects.filter(course=course, learner__in=learners.values("pk"))
    totals = sums.aggregate(n=Sum("answers"), correct=Sum("correct"))
    return int(totals["n"] or 0), float(totals["correct"] or 0.0)


def course_counts(*, course: Course, learners: QuerySet[Learner] | None = None) -> dict[str, Any]:
    """The course's counts; answers and learners of ``learners`` only when given."""
    answers, correct = _totals(course, learners)
    return {
        "learners": (Learner.objects.filter(course=course) if learners is None else learners).count(),
        "interactions": answers,
        "correct_share": correct / answers if answers else None,
        "skills": Skill.objects.filter(course=course).count(),
        "items": Item.objects.filter(course=course).count(),
        "active_fit": Fit.objects.filter(course=course, active=True).first(),
    }


@dataclass(frozen=True)
class Activity:
    """Answers per time bucket, oldest first: ``labels``, ``totals`` and ``correct`` have one entry per bucket."""

    labels: list[str]
    totals: list[int]
    correct: list[float]
    bucket: str


def _bucket_start(day: date, bucket: str) -> date:
    if bucket == "week":
        return day - timedelta(days=day.weekday())
    if bucket == "month":
        return day.replace(day=1)
    return day


def _next_bucket(day: date, bucket: str) -> date:
    if bucket == "week":
        return day + timedelta(days=7)
    if bucket == "month":
        return (day.replace(day=28) + timedelta(days=4)).replace(day=1)
    return day + timedelta(days=1)


def activity(*, course: Course, max_buckets: int = 120, learners: QuerySet[Learner] | None = None) -> Activity:
    """Answers over time, by day, week or month so that at most ``max_buckets`` bars are drawn.

    A course whose timestamps are synthetic step numbers is bucketed by the
    day the answers were stored instead. The whole course reads the per-day sums; a class counts its
    learners' answers.
    """
    if learners is None:
        rows = (
            DayActivity.objects.filter(course=course, clock=course.has_clock)
            .values_list("day")
            .annotate(total=Sum("answers"), correct=Sum("correct"))
        )
    else:  # a class: its learners' answers, through the learner-history index
        moment = "timestamp" if course.has_clock else "created_at"
        rows = (
            _answers(course, learners)
            .annotate(day=TruncDate(moment))
            .values_list("day")
            .annotate(total=Count("id"), correct=Sum("correct"))
            .order_by()
        )
    per_day = {day: (total, correct or 0.0) for day, total, correct in rows if day is not None and total}
    if not per_day:
        return Activity([], [], [], "day")
    first, last = min(per_day), max(per_day)
    span = (last - first).days + 1
    bucket = "day" if span <= max_buckets else "week" if span <= 7 * max_buckets else "month"
    totals: dict[date, list[float]] = defaultdict(lambda: [0, 0.0])
    for day, (total, correct) in per_day.items():
        start = _bucket_start(day, bucket)
        totals[start][0] += total
        totals[start][1] += correct
    labels, counts, corrects = [], [], []
    cursor = _bucket_start(first, bucket)
    while cursor <= last:
        labels.append(cursor.strftime("%b %Y") if bucket == "month" else cursor.strftime("%d %b"))
        counts.append(int(totals[cursor][0]) if cursor in totals else 0)
        corrects.append(float(totals[cursor][1]) if cursor in totals else 0.0)
        cursor = _next_bucket(cursor, bucket)
    return Activity(labels, counts, corrects, bucket)


def skills_in_order(*, course: Course) -> list[Skill]:
    """The course's skills, each after its authored prerequisites."""
    skills = list(Skill.objects.filter(course=course).order_by("id"))
    edges = Prerequisite.objects.filter(course=course, origin=AUTHORED).values_list(
        "source__external_id", "target__external_id"
    )
    graph, _ = PrerequisiteGraph.acyclic([skill.external_id for skill in skills], list(edges))
    rank = {skill: position for position, skill in enumerate(graph.topological_order())}
    return sorted(skills, key=lambda skill: rank[skill.external_id])


@dataclass(frozen=True)
class MasteryMatrix:
    """``values`` is (learners, skills): P(known) or None where no estimate is stored; ``names`` the
    learners' names on a class roster, else their ids."""

    learners: list[Learner]
    skills: list[Skill]
    values: list[list[float | None]]
    total_learners: int
    names: list[str] = field(default_factory=list)


def mastery_matrix(*, course: Course, limit: int = 40, learners: QuerySet[Learner] | None = None) -> MasteryMatrix:
    """The ``limit`` most active learners (of ``learners`` when given; most answers first, then the
    earliest learner) against every skill (prerequisite order), read from the learners' kept answer
    counts over their index: no answer is counted here."""
    skills = skills_in_order(course=course)
    pool = Learner.objects.filter(course=course) if learners is None else learners
    total = pool.count()
    active = LearnerActivity.objects.filter(course=course)
    if learners is not None:
        active = active.filter(learner__in=learners.values("pk"))
    chosen = list(active.order_by("-answers", "learner_id").values_list("learner_id", flat=True)[:limit])
    if len(chosen) < limit:  # learners with no answers yet fill the rest
        chosen += pool.filter(activity__isnull=True).order_by("pk").values_list("pk", flat=True)[: limit - len(chosen)]
    found = Learner.objects.in_bulk(chosen)
    learners = [found[pk] for pk in chosen]
    column = {skill.pk: index for index, skill in enumerate(skills)}
    row = {learner.pk: index for index, learner in enumerate(learners)}
    values: list[list[float | None]] = [[None] * len(skills) for _ in learners]
    for learner_pk, skill_pk, probability in Mastery.objects.filter(learner__in=row).values_list(
        "learner_id", "skill_id", "probability"
    ):
        if skill_pk in column:
            values[row[learner_pk]][column[skill_pk]] = probability
    roster = dict(
        ClassMember.objects.filter(learner__in=row, role=ClassMember.LEARNER)
        .exclude(name="")
        .order_by("learner_id", "-pk")
        .values_list("learner_id", "name")
    )
    names = [roster.get(learner.pk) or learner.external_id for learner in learners]
    return MasteryMatrix(learners, skills, values, total, names)


def course_learning_curves(
    *,
    course: Course,
    max_attempts: int = 10,
    max_rows: int = 150_000,
    min_answers: int = 3,
    learners: QuerySet[Learner] | None = None,
) -> tuple[list[Skill], dict[int, list[tuple[int, float, int]]]]:
    """Learning curves of every skill from the course's answers (those of ``learners`` only when given, a
    teacher's class): skill pk -> [(attempt, error rate, answers)] for attempts 1..``max_attempts``, where
    a learner's n-th answer on any item of a skill is that skill's attempt n.

    A big course is read from its latest learners, whole histories, until they hold ``max_rows`` answers
    (found from the learners' kept answer counts): every learner read has their true attempt numbers,
    and the page costs the same at 5 or 50 million answers. One SQL statement numbers each learner's
    attempts per skill (a window over the learner-history index) and counts per (skill, attempt): no
    answer crosses into Python. Attempt numbers with fewer than ``min_answers`` answers are left out: one
    learner's single answer would draw a 0 or 1 spike that says nothing.
    """
    links = Item.skills.through._meta.db_table
    scope, scope_params = "", []
    if learners is not None:
        # A class: its learners' keys (a class is hundreds or a few thousand learners, not millions).
        scope_params = list(learners.order_by().values_list("pk", flat=True).distinct())
        scope = f" AND learner_id IN ({', '.join(['%s'] * len(scope_params)) or 'NULL'})"
    first_learner = 0
    if _totals(course, learners)[0] > max_rows:
        found = sql.rows(
            f"SELECT learner_id FROM (SELECT learner_id, SUM(answers) OVER (ORDER BY learner_id DESC) AS running"
            f" FROM {LearnerActivity._meta.db_table} WHERE course_id = %s{scope}) latest"
            f" WHERE running >= %s ORDER BY learner_id DESC LIMIT 1",
            [course.pk, *scope_params, max_rows],
        )
        first_learner = found[0][0] if found else 0
    found = sql.rows(
        f"SELECT skill_id, attempt, COUNT(*), SUM(1.0 - correct) FROM ("
        f" SELECT link.skill_id, answer.correct, ROW_NUMBER() OVER ("
        f"  PARTITION BY answer.learner_id, link.skill_id ORDER BY answer.timestamp, answer.id) AS attempt"
        f" FROM {Interaction._meta.db_table} answer JOIN {links} link ON link.item_id = answer.item_id"
        f" WHERE answer.course_id = %s AND answer.learner_id >= %s{scope.replace('learner_id', 'answer.learner_id')})"
        f" numbered WHERE attempt <= %s GROUP BY skill_id, attempt HAVING COUNT(*) >= %s ORDER BY skill_id, attempt",
        [course.pk, first_learner, *scope_params, max_attempts, min_answers],
    )
    curves: dict[int, list[tuple[int, float, int]]] = {}
    for skill_pk, attempt, count, wrong in found:
        curves.setdefault(skill_pk, []).append((int(attempt), float(wrong) / count, int(count)))
    return skills_in_order(course=course), curves


@dataclass
class FittedParameters:
    """What a fit's ``fitted_params`` say per skill and per item, whatever the model kind."""

    skills: dict[str, dict[str, float]] = field(default_factory=dict)
    items: dict[str, dict[str, float]] = field(default_factory=dict)
    other: dict[str, Any] = field(default_factory=dict)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def parameters_read(params: Mapping[str, Any], *, skill_ids: set[str], item_ids: set[str]) -> FittedParameters:
    """Sort a fit's parameters into per-skill and per-item tables (pure).

    Understands BKT's ``{"skills": {skill: {prior, learns, guesses, slips,
    forgets}}}`` with per-item ``guesses``/``slips`` dicts (KT-IDEM) and any
    top-level ``{name: {skill or item: number}}`` table (e.g. the rate
    baseline's ``skill_rate``); the rest is kept in ``other``.
    """
    result = FittedParameters()
    for name, value in (params or {}).items():
        if name == "skills" and isinstance(value, Mapping) and set(value) <= skill_ids:
            for skill, entry in value.items():
                if not isinstance(entry, Mapping):
                    continue
                for key, number in entry.items():
                    if _is_number(number) and key != "answers":
                        result.skills.setdefault(skill, {})[key] = float(number)
                    elif isinstance(number, Mapping) and number and set(number) <= item_ids:
                        for item, item_number in number.items():
                            if _is_number(item_number):
                                result.items.setdefault(item, {})[key] = float(item_number)
        elif isinstance(value, Mapping) and value and all(_is_number(v) for v in value.values()):
            if set(value) <= skill_ids:
                for skill, number in value.items():
                    result.skills.setdefault(skill, {})[name] = float(number)
            elif set(value) <= item_ids:
                for item, number in value.items():
                    result.items.setdefault(item, {})[name] = float(number)
            else:
                result.other[name] = value
        else:
            result.other[name] = value
    return result


@dataclass(frozen=True)
class Flag:
    """A warning about fitted parameters: a short label for the table and the full reason for its tooltip."""

    label: str
    reason: str


def item_flags(guess: float | None, slip: float | None, learns: float | None) -> list[Flag]:
    """Warnings about an item's (or a skill's) fitted parameters (pure)."""
    flags = []
    if guess is not None and slip is not None and guess > slip + GUESS_OVER_SLIP:
        flags.append(
            Flag(
                "guess > slip",
                f"guess {guess:.2f} exceeds slip {slip:.2f} by more than "
                f"{GUESS_OVER_SLIP}: answerable without the skill?",
            )
        )
    if learns is not None and learns < LOW_LEARNING:
        flags.append(
            Flag("no learning", f"near-zero learning (P(learn) {learns:.3f}): practice barely moves the skill")
        )
    return flags


def item_table(*, course: Course, fit: Fit | None, limit: int = 500) -> dict[str, Any]:
    """Per item: its skills, answers, share correct, fitted guess/slip (item's own or its skill's) and flags.

    Flagged items come first, then the most answered; at most ``limit`` rows
    (``total_items`` says how many there are).
    """
    skills = skills_in_order(course=course)
    skill_name = {skill.external_id: skill.name or skill.external_id for skill in skills}
    items = list(Item.objects.filter(course=course).prefetch_related("skills").order_by("id"))
    stats = {
        row["item"]: row
        for row in ItemActivity.objects.filter(course=course)
        .values("item")
        .annotate(n=Sum("answers"), correct=Sum("correct"))
        if row["n"]
    }
    params = parameters_read(
        fit.fitted_params if fit else {}, skill_ids=set(skill_name), item_ids={item.external_id for item in items}
    )
    skill_columns = sorted(
        {key for entry in params.skills.values() for key in entry},
        key=lambda key: ((["prior", "learns", "guesses", "slips", "forgets"] + [key]).index(key), key),
    )
    rows = []
    for item in items:
        item_skills = [skill.external_id for skill in item.skills.all()]
        own = params.items.get(item.external_id, {})
        first = params.skills.get(item_skills[0], {}) if item_skills else {}
        guess = own.get("guesses", first.get("guesses"))
        slip = own.get("slips", first.get("slips"))
        learns = [params.skills[s]["learns"] for s in item_skills if "learns" in params.skills.get(s, {})]
        answered = stats.get(item.pk)
        rows.append(
            {
                "item": item,
                "skills": [skill_name.get(s, s) for s in item_skills],
                "answers": answered["n"] if answered else 0,
                "correct_share": answered["correct"] / answered["n"] if answered else None,
                "guess": guess,
                "slip": slip,
                "per_item": "guesses" in own,
                "flags": item_flags(guess, slip, min(learns) if learns else None),
            }
        )
    skill_rows = [
        {
            "skill": skill,
            "values": [params.skills.get(skill.external_id, {}).get(key) for key in skill_columns],
            "flags": item_flags(None, None, params.skills.get(skill.external_id, {}).get("learns")),
        }
        for skill in skills
    ]
    rows.sort(key=lambda row: (not row["flags"], -row["answers"]))
    return {
        "items": rows[:limit],
        "total_items": len(rows),
        "skill_rows": skill_rows,
        "skill_columns": skill_columns,
        "other": params.other,
        "flagged": sum(bool(row["flags"]) for row in rows),
    }


@dataclass(frozen=True)
class GraphData:
    skills: list[str]
    names: dict[str, str]
    edges: list[tuple[str, str, str, float]]
    """(source, target, origin, weight); origin is authored, learned or both."""
    layout_edges: list[tuple[str, str]]
    dropped: int


def graph_data(*, course: Course) -> GraphData:
    """Every stored prerequisite edge, authored and learned told apart, and an acyclic subset to lay them out."""
    skills = list(Skill.objects.filter(course=course).order_by("id").values_list("external_id", "name"))
    ids = [skill for skill, _ in skills]
    rows = list(
        Prerequisite.objects.filter(course=course).values_list(
            "source__external_id", "target__external_id", "origin", "weight"
        )
    )
    merged: dict[tuple[str, str], tuple[str, float]] = {}
    for source, target, origin, weight in rows:
        previous = merged.get((source, target))
        if previous is None:
            merged[source, target] = (origin, weight if origin == LEARNED else 1.0)
        elif previous[0] != origin:
            learned_weight = weight if origin == LEARNED else previous[1]
            merged[source, target] = ("both", learned_weight)
    layout_source = [
        (source, target, 1.0 if origin != LEARNED else weight, AUTHORED if origin != LEARNED else LEARNED)
        for (source, target), (origin, weight) in merged.items()
    ]
    graph, dropped = PrerequisiteGraph.acyclic(ids, layout_source)
    return GraphData(
        skills=[skill for skill in graph.topological_order()],
        names={skill: name or skill for skill, name in skills},
        edges=[(source, target, origin, weight) for (source, target), (origin, weight) in sorted(merged.items())],
        layout_edges=list(graph.edges),
        dropped=len(dropped),
    )


METRIC_COLUMNS = ("auc", "rmse", "logloss", "accuracy")


def fits_table(*, course: Course, limit: int = 50) -> list[dict[str, Any]]:
    """The course's fits, newest first, with held-out next-step and multi-step metrics side by side."""
    rows = []
    for fit in Fit.objects.filter(course=course).order_by("-created_at")[:limit]:
        next_step = (fit.metrics or {}).get("next_step") or {}
        multi_step = (fit.metrics or {}).get("multi_step") or {}
        rows.append(
            {
                "fit": fit,
                "next_step": [next_step.get(name) for name in METRIC_COLUMNS],
                "multi_step_auc": multi_step.get("auc"),
                "test_learners": (fit.metrics or {}).get("test_learners"),
                "seconds": (fit.timings or {}).get("total_s"),
            }
        )
    best = {}
    for column, name in enumerate(METRIC_COLUMNS):
        values = [row["next_step"][column] for row in rows if row["next_step"][column] is not None]
        if len(values) > 1:
            best[column] = max(values) if name in ("auc", "accuracy") else min(values)
    for row in rows:
        row["cells"] = [
            {"value": value, "best": column in best and value == best[column]}
            for column, value in enumerate(row["next_step"])
        ]
    return rows


def fit_progress(fit: Fit) -> dict[str, Any]:
    """The small JSON the fits page polls while a fit runs."""
    return {
        "id": fit.pk,
        "kind": fit.kind,
        "status": fit.status,
        "stage": fit.stage,
        "progress": fit.progress,
        "active": fit.active,
        "error": fit.error,
        "finished": fit.status in (Fit.SUCCEEDED, Fit.FAILED),
        "metrics": fit.metrics or {},
    }
