"""The Django edge of the curriculum: import a course's skills and items, its graph, and the next item."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
from django.db import IntegrityError, transaction
from django.utils.text import slugify
from django.utils import timezone as django_timezone

from curriculum.graph import AUTHORED, LEARNED, CycleError, Edge, PrerequisiteGraph, find_cycle
from curriculum.models import Item, Prerequisite, Skill, Course
from curriculum.policy import (Answer, Choice, Evidence, ItemSpec, PolicyConfig, ReviewDue, Seen, candidate_skills,
                               catalog, next_item, review_schedule, skill_evidence, skill_mastered)
from tracing.models import Fit
from core.errors import NotFound, ServiceError
from tutor.hot_queries import learner_exposure
from tutor.models import Learner
from core.validation import clean_text, text_problem

DOCUMENT_KEYS = {"course", "skills", "items", "prerequisites", "policy"}
COURSE_KEYS = {"id", "name", "description"}
SKILL_KEYS = {"id", "name", "description"}
ITEM_KEYS = {"id", "skills", "body", "answer", "choices", "answer_format", "explanation", "difficulty"}
EDGE_KEYS = {"from", "to"}
HISTORY_LENGTH = 50
"""Answers read back for the policy's struggle and repetition checks."""


class CurriculumError(ServiceError):
    """A curriculum document that cannot be imported; the message names the entry at fault."""

    def __init__(self, message: str, *, code: str = "invalid_curriculum", **kwargs: Any) -> None:
        super().__init__(message, code=code, **kwargs)


@dataclass(frozen=True)
class _SkillRow:
    id: str
    name: str
    description: str


@dataclass(frozen=True)
class _ItemRow:
    id: str
    skills: tuple[str, ...]
    body: str
    answer: str
    choices: list[str] | None
    answer_format: str
    explanation: str
    difficulty: int | None


def _text(value: Any, where: str, *, limit: int | None = None, required: bool = False) -> str:
    if value is None:
        if required:
            raise CurriculumError(f"{where} is required")
        return ""
    try:
        return clean_text(value, limit=limit, strip=False, allow_empty=not required)
    except ValueError as error:
        raise CurriculumError(f"{where} {error}") from None


def _identifier(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise CurriculumError(f"{where} must be a non-empty string, got {value!r}"[:300])
    if len(value) > 200 or value != value.strip():
        raise CurriculumError(f"{where} {value[:200]!r} must be at most 200 characters with no surrounding spaces")
    problem = text_problem(value)
    if problem:
        raise CurriculumError(f"{where}: {problem}")
    return value


def _choice(value: Any, where: str) -> str:
    try:
        return clean_text(value, limit=2000, strip=False, allow_empty=True)
    except ValueError as error:
        raise CurriculumError(f"{where} {error}") from None


def _entries(document: Mapping[str, Any], key: str, allowed: set[str]) -> list[Mapping[str, Any]]:
    entries = document.get(key) or []
    if not isinstance(entries, list):
        raise CurriculumError(f"{key} must be a list, got {type(entries).__name__}")
    for position, entry in enumerate(entries):
        if not isinstance(entry, Mapping):
            raise CurriculumError(f"{key}[{position}] must be an object, got {type(entry).__name__}")
    # Fields beyond ``allowed`` are the author's metadata (a source link, a tag): kept out of the
    # tables but not an error, unlike an unknown top-level key, which is usually a typo.
    return entries


def _unique(ids: Sequence[str], what: str) -> None:
    seen: set[str] = set()
    duplicates = sorted({i for i in ids if i in seen or seen.add(i)})
    if duplicates:
        raise CurriculumError(f"duplicate {what} id(s): {', '.join(duplicates)}", code="duplicate_id")


def document_validate(document: Any, *, known_skills: Iterable[str] = (),
                      authored_edges: Iterable[tuple[str, str]] = ()) -> tuple[
                          list[_SkillRow], list[_ItemRow], list[tuple[str, str]], PolicyConfig | None]:
    """Check a whole curriculum document before anything is written.

    ``known_skills`` are the course's skills already stored (items and edges may
    name them); ``authored_edges`` its authored edges already stored, which
    together with the document's must stay acyclic. Raises CurriculumError.
    """
    if not isinstance(document, Mapping):
        raise CurriculumError(f"the curriculum must be a JSON object, got {type(document).__name__}")
    unknown = sorted(set(document) - DOCUMENT_KEYS)
    if unknown:
        raise CurriculumError(f"unknown top-level key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(DOCUMENT_KEYS))}")
    if "course" in document and document["course"] is not None:
        course = document["course"]
        if not isinstance(course, Mapping) or set(course) - COURSE_KEYS:
            raise CurriculumError(f"course must be an object with fields {', '.join(sorted(COURSE_KEYS))}")

    skills = []
    for position, entry in enumerate(_entries(document, "skills", SKILL_KEYS)):
        where = f"skills[{position}]"
        skills.append(_SkillRow(id=_identifier(entry.get("id"), f"{where}.id"),
                                name=_text(entry.get("name"), f"{where}.name", limit=300),
                                description=_text(entry.get("description"), f"{where}.description")))
    _unique([skill.id for skill in skills], "skill")
    known = set(known_skills) | {skill.id for skill in skills}

    items = []
    for position, entry in enumerate(_entries(document, "items", ITEM_KEYS)):
        where = f"items[{position}]"
        item_id = _identifier(entry.get("id"), f"{where}.id")
        where = f"item {item_id!r}"
        item_skills = entry.get("skills")
        if not isinstance(item_skills, list) or not item_skills:
            raise CurriculumError(f"{where}: skills must be a non-empty list of skill ids")
        item_skills = [_identifier(skill, f"{where}: skill") for skill in item_skills]
        missing = [skill for skill in item_skills if skill not in known]
        if missing:
            raise CurriculumError(f"{where} names unknown skill(s) {', '.join(missing)}", code="unknown_skill")
        choices = entry.get("choices")
        if choices is not None:
            if not isinstance(choices, list) or not choices:
                raise CurriculumError(f"{where}: choices must be null or a non-empty list of strings")
            choices = [_choice(choice, f"{where}: choices[{number}]") for number, choice in enumerate(choices)]
        difficulty = entry.get("difficulty")
        if difficulty is not None and (isinstance(difficulty, bool) or not isinstance(difficulty, int)
                                       or not 0 <= difficulty <= 32767):
            raise CurriculumError(f"{where}: difficulty must be null or a non-negative integer, got {difficulty!r}")
        items.append(_ItemRow(
            id=item_id, skills=tuple(dict.fromkeys(item_skills)), body=_text(entry.get("body"), f"{where}: body"),
            answer=_text(entry.get("answer"), f"{where}: answer"), choices=choices,
            answer_format=_text(entry.get("answer_format"), f"{where}: answer_format", limit=32),
            explanation=_text(entry.get("explanation"), f"{where}: explanation"), difficulty=difficulty,
        ))
    _unique([item.id for item in items], "item")

    edges: list[tuple[str, str]] = []
    for position, entry in enumerate(_entries(document, "prerequisites", EDGE_KEYS)):
        where = f"prerequisites[{position}]"
        source = _identifier(entry.get("from"), f"{where}.from")
        target = _identifier(entry.get("to"), f"{where}.to")
        for end in (source, target):
            if end not in known:
                raise CurriculumError(f"{where} ({source} -> {target}) names unknown skill {end!r}",
                                      code="unknown_skill")
        if source == target:
            raise CurriculumError(f"{where}: skill {source!r} cannot be its own prerequisite", code="cycle")
        if (source, target) in edges:
            raise CurriculumError(f"{where}: duplicate prerequisite {source} -> {target}", code="duplicate_id")
        edges.append((source, target))
    ordered_skills = [skill.id for skill in skills] + sorted(known - {skill.id for skill in skills})
    cycle = find_cycle(ordered_skills, list(dict.fromkeys([*authored_edges, *edges])))
    if cycle is not None:
        raise CurriculumError(f"the prerequisites contain a {CycleError(cycle)}", code="cycle",
                              detail={"cycle": cycle})

    policy = None
    if document.get("policy") is not None:
        try:
            policy = PolicyConfig.from_json(document["policy"])
        except ValueError as error:
            raise CurriculumError(f"policy: {error}", code="invalid_policy") from None
        unknown_goals = [goal for goal in policy.goals if goal not in known]
        if unknown_goals:
            raise CurriculumError(f"policy goals name unknown skill(s) {', '.join(unknown_goals)}",
                                  code="unknown_skill")
    return skills, items, edges, policy


def curriculum_import(*, course: Course, document: Mapping[str, Any]) -> dict[str, Any]:
    """Create or update a course's skills, items and authored prerequisites from one document.

    The whole document is validated first (CurriculumError, nothing written);
    then everything is written in one transaction. Importing the same document
    again creates nothing and reports every entry unchanged; changed text is
    updated in place (ids are the keys). Entries absent from the document are
    left alone. Returns counts: {"skills": {"created", "updated", "unchanged"},
    "items": {...}, "prerequisites": {"created", "unchanged"}}.
    """
    with transaction.atomic():
        # One import of a course at a time: two at once would both create the same new skills (a unique
        # violation), and each would check its edges for cycles without seeing the other's.
        Course.objects.select_for_update().filter(pk=course.pk).values_list("pk").first()
        stored_skills = {skill.external_id: skill for skill in Skill.objects.select_for_update().filter(course=course)}
        stored_edges = set(Prerequisite.objects.filter(course=course, origin=AUTHORED)
                           .values_list("source__external_id", "target__external_id"))
        skills, items, edges, policy = document_validate(document, known_skills=stored_skills,
                                                         authored_edges=stored_edges)
        summary: dict[str, Any] = {
            "skills": {"created": 0, "updated": 0, "unchanged": 0},
            "items": {"created": 0, "updated": 0, "unchanged": 0},
            "prerequisites": {"created": 0, "unchanged": 0},
        }
        for row in skills:
            skill = stored_skills.get(row.id)
            if skill is None:
                stored_skills[row.id] = Skill.objects.create(course=course, external_id=row.id, name=row.name,
                                                             description=row.description)
                summary["skills"]["created"] += 1
            elif (skill.name, skill.description) != (row.name, row.description):
                skill.name, skill.description = row.name, row.description
                skill.save(update_fields=["name", "description"])
                summary["skills"]["updated"] += 1
            else:
                summary["skills"]["unchanged"] += 1

        stored_items = {item.external_id: item for item in Item.objects.filter(course=course)
                        .prefetch_related("skills")}
        fields = ("body", "answer", "choices", "answer_format", "explanation", "difficulty")
        for row in items:
            item = stored_items.get(row.id)
            wanted_skills = {stored_skills[skill].pk for skill in row.skills}
            if item is None:
                item = Item.objects.create(course=course, external_id=row.id,
                                           **{name: getattr(row, name) for name in fields})
                item.skills.set(wanted_skills)
                summary["items"]["created"] += 1
                continue
            changed = [name for name in fields if getattr(item, name) != getattr(row, name)]
            for name in changed:
                setattr(item, name, getattr(row, name))
            if changed:
                item.save(update_fields=changed)
            if {skill.pk for skill in item.skills.all()} != wanted_skills:
                item.skills.set(wanted_skills)
                changed.append("skills")
            summary["items"]["updated" if changed else "unchanged"] += 1

        for source, target in edges:
            if (source, target) in stored_edges:
                summary["prerequisites"]["unchanged"] += 1
                continue
            Prerequisite.objects.create(course=course, source=stored_skills[source], target=stored_skills[target],
                                        origin=AUTHORED, weight=1.0)
            summary["prerequisites"]["created"] += 1

        if policy is not None and course.policy != policy.to_json():
            course.policy = policy.to_json()
            course.save(update_fields=["policy"])
            summary["policy"] = "updated"
    return summary


def course_create(*, slug: str, name: str = "", description: str = "") -> Course:
    """A new course; its id must be a slug not taken yet."""
    slug = slug.strip()
    if not slug or slugify(slug) != slug:
        raise ServiceError(f"course id {slug!r} must be a slug (lowercase letters, digits, - and _)",
                           code="invalid_slug", field="id")
    if Course.objects.filter(slug=slug).exists():
        raise ServiceError(f"course {slug!r} already exists", code="exists", field="id")
    try:
        with transaction.atomic():
            return Course.objects.create(slug=slug, name=name or slug, description=description)
    except IntegrityError:
        # Another request created it between our check and our insert.
        raise ServiceError(f"course {slug!r} already exists", code="exists", field="id") from None


def course_get(*, slug: str) -> Course:
    """The course ``slug``, or NotFound."""
    try:
        return Course.objects.get(slug=slug)
    except Course.DoesNotExist:
        raise NotFound(f"course {slug!r} not found") from None


def course_from_document(*, document: Mapping[str, Any], slug: str | None = None) -> tuple[Course, bool]:
    """The course a document names (``slug`` overrides its "course.id"), created when missing."""
    header = document.get("course") if isinstance(document, Mapping) else None
    header = header if isinstance(header, Mapping) else {}
    slug = slug or header.get("id")
    if not isinstance(slug, str) or not slug:
        raise CurriculumError("no course given: pass one or set \"course\": {\"id\": ...} in the document",
                              field="course")
    course = Course.objects.filter(slug=slug).first()
    if course is not None:
        return course, False
    name = header.get("name") if isinstance(header.get("name"), str) else ""
    description = header.get("description") if isinstance(header.get("description"), str) else ""
    return course_create(slug=slug, name=name, description=description), True


def learned_edges_store(*, course: Course, fit: Fit | None, edges: Iterable[Edge | Sequence[Any]]) -> int:
    """Replace the course's learned prerequisites with ``edges``; returns how many were stored.

    ``edges`` are (prerequisite skill id, skill id, probability) triples or
    Edges. An edge whose pair already has an authored edge is not stored (the
    authored one stands); unknown skills, self-loops and probabilities outside
    (0, 1] are skipped; a pair listed twice keeps its highest probability.
    """
    skill_pk = dict(Skill.objects.filter(course=course).values_list("external_id", "id"))
    authored = set(Prerequisite.objects.filter(course=course, origin=AUTHORED).values_list("source_id", "target_id"))
    best: dict[tuple[int, int], float] = {}
    for edge in edges:
        source, target, weight = (edge.source, edge.target, edge.weight) if isinstance(edge, Edge) else (
            edge[0], edge[1], edge[2] if len(edge) > 2 else 1.0)
        weight = float(weight)
        pair = (skill_pk.get(source), skill_pk.get(target))
        if None in pair or pair[0] == pair[1] or pair in authored or not 0.0 < weight <= 1.0:
            continue
        best[pair] = max(weight, best.get(pair, 0.0))
    with transaction.atomic():
        Prerequisite.objects.filter(course=course, origin=LEARNED).delete()
        Prerequisite.objects.bulk_create([
            Prerequisite(course=course, source_id=source, target_id=target, origin=LEARNED, weight=weight, fit=fit)
            for (source, target), weight in sorted(best.items())
        ])
    return len(best)


def graph_for_course(*, course: Course, include_learned: bool = True, min_weight: float = 0.5) -> PrerequisiteGraph:
    """The course's prerequisite graph: authored edges, plus learned ones of weight >= ``min_weight``.

    Learned edges that would close a cycle (with authored edges or stronger
    learned ones) are left out, so the result is always acyclic.
    """
    skills = list(Skill.objects.filter(course=course).order_by("id").values_list("external_id", flat=True))
    rows = Prerequisite.objects.filter(course=course)
    if include_learned:
        rows = rows.exclude(origin=LEARNED, weight__lt=min_weight)
    else:
        rows = rows.filter(origin=AUTHORED)
    edges = [Edge(source, target, weight, origin) for source, target, weight, origin
             in rows.values_list("source__external_id", "target__external_id", "weight", "origin")]
    graph, _ = PrerequisiteGraph.acyclic(skills, edges)
    return graph


def policy_graph(*, course: Course, model: Any) -> PrerequisiteGraph:
    """The graph the policy reads (``graph_for_course`` with its defaults), built once per course model:
    the model's cache key covers the prerequisite edges, so a changed edge gives a fresh graph."""
    return model.memo("policy_graph", lambda: graph_for_course(course=course))


def course_policy(*, course: Course) -> PolicyConfig:
    """The course's policy settings (defaults where unset)."""
    try:
        return PolicyConfig.from_json(course.policy)
    except ValueError as error:
        raise ServiceError(f"course {course.slug!r} has bad policy settings: {error}", code="invalid_policy") from None


@dataclass
class LearnerView:
    """What the policy, the learner page and the API read of one learner at one moment.

    ``mastery`` P(known) per skill now (after forgetting), ``mastery_before`` at the last answer,
    ``seen`` the learner's record per item, ``history`` the last answers (oldest first),
    ``last_practice`` per skill when last answered (epoch seconds), ``evidence`` per skill.
    """

    model: Any
    state: Any
    moment: float
    now_mastery: np.ndarray
    mastery: dict[str, float]
    mastery_before: dict[str, float]
    items: list[ItemSpec]
    seen: dict[str, Seen]
    history: list[Answer]
    last_practice: dict[str, float]
    evidence: dict[str, Evidence]
    graph: PrerequisiteGraph
    config: PolicyConfig

    def mastered(self, skill: str) -> bool:
        """The one mastery rule (``curriculum.policy.skill_mastered``) for ``skill`` now."""
        return skill_mastered(self.mastery.get(skill, 0.0), self.evidence.get(skill), self.config)


def learner_view(*, course: Course, learner: Learner, now: datetime | None = None) -> LearnerView:
    """Read ``learner``'s state under the course's active model, and their practice, once.

    ``learner`` may be unsaved (no answers yet): the model's prior then stands for them.
    """
    from tracing.services import course_model, learner_state  # keeps model code out of import time

    model = course_model(course)
    estimator = model.estimator
    state = learner_state(learner=learner, model=model)
    moment = (now or django_timezone.now()).timestamp()
    now_mastery = np.asarray(estimator.mastery_at(state, moment), dtype=np.float64)
    mastery = {skill: float(now_mastery[index]) for skill, index in model.skill_index.items()}
    mastery_before = {skill: float(state.mastery[index]) for skill, index in model.skill_index.items()}
    items, _, _ = model.memo("policy_items", lambda: _policy_items(model, course))
    # Item primary keys, no joins: the model's vocabulary names the items and their skills.
    item_of_pk, skills_of_pk = model.memo("item_of_pk", lambda: _items_by_pk(model, items))
    recent, record = learner_exposure(learner_pk=learner.pk, limit=HISTORY_LENGTH)
    history = [Answer(item_of_pk[pk], correct) for pk, correct in recent if pk in item_of_pk]
    seen = {item_of_pk[pk]: Seen(count, last, wrong) for pk, (count, last, wrong) in record.items() if pk in item_of_pk}
    last_practice: dict[str, float] = {}
    for pk, (_, last, _) in record.items():
        for skill in skills_of_pk.get(pk, ()):
            last_practice[skill] = max(last_practice.get(skill, 0.0), last)
    return LearnerView(model=model, state=state, moment=moment, now_mastery=now_mastery, mastery=mastery,
                       mastery_before=mastery_before, items=items, seen=seen, history=history,
                       last_practice=last_practice, evidence=skill_evidence(items, seen),
                       graph=policy_graph(course=course, model=model), config=course_policy(course=course))


FADE_PROBES = (1 / 24, 3 / 24, 6 / 24, 12 / 24, 1, 2, 3, 5, 7, 10, 14, 21, 30, 45, 60)
"""Days ahead at which a model's forgetting is read to find when a skill fades (then refined by bisection)."""


def learner_reviews(*, course: Course, view: LearnerView) -> list[ReviewDue]:
    """The reviews the policy schedules for the learner of ``view`` (``curriculum.policy.review_schedule``),
    soonest first: when each skill mastered at its last practice fades below the threshold under the
    model's forgetting (looked for up to 60 days ahead, to the minute) or is due its recheck."""
    estimator, config = view.model.estimator, view.config
    index = view.model.skill_index
    watched = [skill for skill, value in view.mastery_before.items() if value >= config.threshold and skill in index]
    fade_at: dict[str, float | None] = {}
    if watched and config.review:
        columns = np.array([index[skill] for skill in watched], dtype=np.int64)

        def below(at: float) -> np.ndarray:
            return np.asarray(estimator.mastery_at(view.state, at), dtype=np.float64)[columns] < config.threshold

        # Without practice P(known) only falls, so the first probe below the threshold brackets the moment.
        probes = [view.moment] + [view.moment + days * 86_400.0 for days in FADE_PROBES]
        crossed = np.array([below(at) for at in probes])  # (probes, watched skills)
        for position, skill in enumerate(watched):
            hits = np.flatnonzero(crossed[:, position])
            if not len(hits):
                fade_at[skill] = None
                continue
            if hits[0] == 0:
                fade_at[skill] = view.moment  # faded already: due now
                continue
            start, end = probes[hits[0] - 1], probes[hits[0]]
            while end - start > 60.0:
                middle = (start + end) / 2
                start, end = (start, middle) if below(middle)[position] else (middle, end)
            fade_at[skill] = end
    return review_schedule(mastery_before=view.mastery_before, graph=view.graph, items=view.items, config=config,
                           last_practice=view.last_practice, fade_at=fade_at)


def next_item_choose(*, course: Course, learner: Learner, now: datetime | None = None,
                     goals: Sequence[str] | None = None) -> Choice:
    """The next item for ``learner``, read from the course's model, graph and policy settings.

    Mastery now (after forgetting), mastery at the last answer, P(correct) of
    every item and, for the items of the skills the policy may pick, the
    expected mastery gain from a one-step look-ahead of the model all come
    from the tracing layer's active model for the course. ``learner`` may be
    unsaved (a learner with no answers yet: the model's prior). ``goals``
    (skill ids of the course) replace the course's goals for this choice; one
    that is not a skill of the course is a ServiceError naming ``goal``.
    """
    view = learner_view(course=course, learner=learner, now=now)
    unknown = [goal for goal in goals or () if goal not in view.graph]
    if unknown:
        raise ServiceError(f"goal {unknown[0]!r} is not a skill of course {course.slug!r}", code="unknown_skill",
                           field="goal")
    model, estimator, state, moment = view.model, view.model.estimator, view.state, view.moment
    _, known, indices = model.memo("policy_items", lambda: _policy_items(model, course))
    probabilities = estimator.predict_next(state, indices, at=moment) if len(indices) else np.zeros(0)
    p_correct = dict(zip(known, map(float, probabilities)))
    config = view.config
    if goals is not None:
        config = dataclasses.replace(config, goals=tuple(goals))
    candidates = candidate_skills(mastery=view.mastery, graph=view.graph, items=view.items, config=config,
                                  mastery_before=view.mastery_before, history=view.history, seen=view.seen,
                                  evidence=view.evidence)
    gain = _expected_gain(estimator, state, model.item_index, model.skill_index,
                          catalog(view.graph, view.items, tuple(config.goals))[1], candidates, p_correct,
                          view.now_mastery, moment)
    return next_item(mastery=view.mastery, graph=view.graph, items=view.items, config=config, p_correct=p_correct,
                     gain=gain, mastery_before=view.mastery_before, history=view.history,
                     last_practice=view.last_practice, now=moment, seen=view.seen, evidence=view.evidence)


def _policy_items(model: Any, course: Course) -> tuple[list[ItemSpec], list[str], np.ndarray]:
    """The course's items as the policy sees them, and those the model knows with their model indices."""
    vocabulary = model.vocabulary
    difficulty = dict(Item.objects.filter(course=course).values_list("id", "difficulty"))
    items = [ItemSpec(item_id, tuple(vocabulary.skill_ids[column] for column in np.flatnonzero(row)),
                      difficulty.get(pk))
             for item_id, pk, row in zip(vocabulary.item_ids, vocabulary.item_pk, vocabulary.q_matrix)]
    known = [item for item in vocabulary.item_ids if item in model.item_index]
    return items, known, np.array([model.item_index[item] for item in known], dtype=np.int64)


def _items_by_pk(model: Any, items: Sequence[ItemSpec]) -> tuple[dict[int, str], dict[int, tuple[str, ...]]]:
    """Item primary key -> external id, and -> the item's skills."""
    pks = model.vocabulary.item_pk
    return ({pk: item.id for pk, item in zip(pks, items)}, {pk: item.skills for pk, item in zip(pks, items)})


def _expected_gain(estimator: Any, state: Any, item_index: Mapping[str, int], skill_index: Mapping[str, int],
                   items_of_skill: Mapping[str, Sequence[ItemSpec]], candidates: Mapping[str, str],
                   p_correct: Mapping[str, float], now_mastery: np.ndarray, moment: float) -> dict[str, float]:
    """Per item of a candidate skill: E[mastery of its skills after answering it] - mastery now
    (one-step look-ahead)."""
    chosen: dict[str, list[int]] = {}
    for skill in candidates:
        for item in items_of_skill.get(skill, ()):
            if item.id in chosen or item.id not in item_index:
                continue
            columns = [skill_index[other] for other in item.skills if other in skill_index]
            if columns:
                chosen[item.id] = columns
    if not chosen:
        return {}
    indices = np.array([item_index[item] for item in chosen], dtype=np.int64)
    after_correct = estimator.update_each(state, indices, correct=1.0, at=moment)
    after_wrong = estimator.update_each(state, indices, correct=0.0, at=moment)
    # One array expression over every (item, skill) pair, summed per item: a loop of small numpy
    # operations per item cost more than the look-ahead itself.
    rows = np.repeat(np.arange(len(chosen)), [len(columns) for columns in chosen.values()])
    columns = np.fromiter((column for each in chosen.values() for column in each), dtype=np.int64, count=len(rows))
    probability = np.array([p_correct[item] for item in chosen], dtype=np.float64)[rows]
    expected = probability * after_correct[rows, columns] + (1.0 - probability) * after_wrong[rows, columns]
    gain = np.bincount(rows, weights=expected - now_mastery[columns], minlength=len(chosen))
    return dict(zip(chosen, gain.tolist()))
