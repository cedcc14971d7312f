"""The curriculum's services: courses, importing a course's skills, items and prerequisites, its graph
(authored and learned edges) and its policy settings."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction
from django.utils.text import slugify

from core.errors import NotFound, ServiceError
from core.validation import clean_text, text_problem
from curriculum.graph import AUTHORED, LEARNED, CycleError, Edge, PrerequisiteGraph, find_cycle
from curriculum.models import Course, Item, Prerequisite, Skill
from curriculum.policies.base import PolicyConfig

DOCUMENT_KEYS = {"course", "skills", "items", "prerequisites", "policy"}
COURSE_KEYS = {"id", "name", "description"}


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


def _entries(document: Mapping[str, Any], key: str) -> list[Mapping[str, Any]]:
    entries = document.get(key) or []
    if not isinstance(entries, list):
        raise CurriculumError(f"{key} must be a list, got {type(entries).__name__}")
    for position, entry in enumerate(entries):
        if not isinstance(entry, Mapping):
            raise CurriculumError(f"{key}[{position}] must be an object, got {type(entry).__name__}")
    # Fields an entry has beyond those read are the author's metadata (a source link, a tag): kept out
    # of the tables but not an error, unlike an unknown top-level key, which is usually a typo.
    return entries


def _unique(ids: Sequence[str], what: str) -> None:
    duplicates = sorted(identifier for identifier, count in Counter(ids).items() if count > 1)
    if duplicates:
        raise CurriculumError(f"duplicate {what} id(s): {', '.join(duplicates)}", code="duplicate_id")


def document_validate(
    document: Any, *, known_skills: Iterable[str] = (), authored_edges: Iterable[tuple[str, str]] = ()
) -> tuple[list[_SkillRow], list[_ItemRow], list[tuple[str, str]], PolicyConfig | None]:
    """Check a whole curriculum document before anything is written.

    ``known_skills`` are the course's skills already stored (items and edges may
    name them); ``authored_edges`` its authored edges already stored, which
    together with the document's must stay acyclic. Raises CurriculumError.
    """
    if not isinstance(document, Mapping):
        raise CurriculumError(f"the curriculum must be a JSON object, got {type(document).__name__}")
    unknown = sorted(set(document) - DOCUMENT_KEYS)
    if unknown:
        raise CurriculumError(
            f"unknown top-level key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(DOCUMENT_KEYS))}"
        )
    if "course" in document and document["course"] is not None:
        course = document["course"]
        if not isinstance(course, Mapping) or set(course) - COURSE_KEYS:
            raise CurriculumError(f"course must be an object with fields {', '.join(sorted(COURSE_KEYS))}")

    skills = []
    for position, entry in enumerate(_entries(document, "skills")):
        where = f"skills[{position}]"
        skills.append(
            _SkillRow(
                id=_identifier(entry.get("id"), f"{where}.id"),
                name=_text(entry.get("name"), f"{where}.name", limit=300),
                description=_text(entry.get("description"), f"{where}.description"),
            )
        )
    _unique([skill.id for skill in skills], "skill")
    known = set(known_skills) | {skill.id for skill in skills}

    items = []
    for position, entry in enumerate(_entries(document, "items")):
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
        if difficulty is not None and (
            isinstance(difficulty, bool) or not isinstance(difficulty, int) or not 0 <= difficulty <= 32767
        ):
            raise CurriculumError(f"{where}: difficulty must be null or a non-negative integer, got {difficulty!r}")
        items.append(
            _ItemRow(
                id=item_id,
                skills=tuple(dict.fromkeys(item_skills)),
                body=_text(entry.get("body"), f"{where}: body"),
                answer=_text(entry.get("answer"), f"{where}: answer"),
                choices=choices,
                answer_format=_text(entry.get("answer_format"), f"{where}: answer_format", limit=32),
                explanation=_text(entry.get("explanation"), f"{where}: explanation"),
                difficulty=difficulty,
            )
        )
    _unique([item.id for item in items], "item")

    edges: list[tuple[str, str]] = []
    for position, entry in enumerate(_entries(document, "prerequisites")):
        where = f"prerequisites[{position}]"
        source = _identifier(entry.get("from"), f"{where}.from")
        target = _identifier(entry.get("to"), f"{where}.to")
        for end in (source, target):
            if end not in known:
                raise CurriculumError(
                    f"{where} ({source} -> {target}) names unknown skill {end!r}", code="unknown_skill"
                )
        if source == target:
            raise CurriculumError(f"{where}: skill {source!r} cannot be its own prerequisite", code="cycle")
        if (source, target) in edges:
            raise CurriculumError(f"{where}: duplicate prerequisite {source} -> {target}", code="duplicate_id")
        edges.append((source, target))
    ordered_skills = [skill.id for skill in skills] + sorted(known - {skill.id for skill in skills})
    cycle = find_cycle(ordered_skills, list(dict.fromkeys([*authored_edges, *edges])))
    if cycle is not None:
        raise CurriculumError(f"the prerequisites contain a {CycleError(cycle)}", code="cycle", detail={"cycle": cycle})

    policy = None
    if document.get("policy") is not None:
        try:
            policy = PolicyConfig.from_json(document["policy"])
        except ValueError as error:
            raise CurriculumError(f"policy: {error}", code="invalid_policy") from None
        unknown_goals = [goal for goal in policy.goals if goal not in known]
        if unknown_goals:
            raise CurriculumError(
                f"policy goals name unknown skill(s) {', '.join(unknown_goals)}", code="unknown_skill"
            )
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
        stored_edges = set(
            Prerequisite.objects.filter(course=course, origin=AUTHORED).values_list(
                "source__external_id", "target__external_id"
            )
        )
        skills, items, edges, policy = document_validate(
            document, known_skills=stored_skills, authored_edges=stored_edges
        )
        summary: dict[str, Any] = {
            "skills": {"created": 0, "updated": 0, "unchanged": 0},
            "items": {"created": 0, "updated": 0, "unchanged": 0},
            "prerequisites": {"created": 0, "unchanged": 0},
        }
        for row in skills:
            skill = stored_skills.get(row.id)
            if skill is None:
                stored_skills[row.id] = Skill.objects.create(
                    course=course, external_id=row.id, name=row.name, description=row.description
                )
                summary["skills"]["created"] += 1
            elif (skill.name, skill.description) != (row.name, row.description):
                skill.name, skill.description = row.name, row.description
                skill.save(update_fields=["name", "description"])
                summary["skills"]["updated"] += 1
            else:
                summary["skills"]["unchanged"] += 1

        stored_items = {
            item.external_id: item for item in Item.objects.filter(course=course).prefetch_related("skills")
        }
        fields = ("body", "answer", "choices", "answer_format", "explanation", "difficulty")
        for entry in items:
            item = stored_items.get(entry.id)
            wanted_skills = {stored_skills[skill].pk for skill in entry.skills}
            if item is None:
                item = Item.objects.create(
                    course=course, external_id=entry.id, **{name: getattr(entry, name) for name in fields}
                )
                item.skills.set(wanted_skills)
                summary["items"]["created"] += 1
                continue
            changed = [name for name in fields if getattr(item, name) != getattr(entry, name)]
            for name in changed:
                setattr(item, name, getattr(entry, name))
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
            Prerequisite.objects.create(
                course=course, source=stored_skills[source], target=stored_skills[target], origin=AUTHORED, weight=1.0
            )
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
        raise ServiceError(
            f"course id {slug!r} must be a slug (lowercase letters, digits, - and _)", code="invalid_slug", field="id"
        )
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
        raise CurriculumError('no course given: pass one or set "course": {"id": ...} in the document', field="course")
    course = Course.objects.filter(slug=slug).first()
    if course is not None:
        return course, False
    name, description = header.get("name"), header.get("description")
    name = name if isinstance(name, str) else ""
    description = description if isinstance(description, str) else ""
    return course_create(slug=slug, name=name, description=description), True


def learned_edges_store(*, course: Course, fit_pk: int | None, edges: Iterable[Edge | Sequence[Any]]) -> int:
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
        source, target, weight = (
            (edge.source, edge.target, edge.weight)
            if isinstance(edge, Edge)
            else (edge[0], edge[1], edge[2] if len(edge) > 2 else 1.0)
        )
        weight = float(weight)
        source_pk, target_pk = skill_pk.get(source), skill_pk.get(target)
        if source_pk is None or target_pk is None:
            continue
        pair = (source_pk, target_pk)
        if source_pk == target_pk or pair in authored or not 0.0 < weight <= 1.0:
            continue
        best[pair] = max(weight, best.get(pair, 0.0))
    with transaction.atomic():
        Prerequisite.objects.filter(course=course, origin=LEARNED).delete()
        Prerequisite.objects.bulk_create(
            [
                Prerequisite(
                    course=course, source_id=source, target_id=target, origin=LEARNED, weight=weight, fit_id=fit_pk
                )
                for (source, target), weight in sorted(best.items())
            ]
        )
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
    edges = [
        Edge(source, target, weight, origin)
        for source, target, weight, origin in rows.values_list(
            "source__external_id", "target__external_id", "weight", "origin"
        )
    ]
    graph, _ = PrerequisiteGraph.acyclic(skills, edges)
    return graph


def course_policy(*, course: Course) -> PolicyConfig:
    """The course's policy settings (defaults where unset)."""
    try:
        return PolicyConfig.from_json(course.policy)
    except ValueError as error:
        raise ServiceError(f"course {course.slug!r} has bad policy settings: {error}", code="invalid_policy") from None
