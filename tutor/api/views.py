"""API v1 views: validate with a serializer, call one service, return its result."""

from __future__ import annotations

import base64
import functools
import json
import operator
import re
from datetime import datetime
from typing import Any

from django.db import models
from django.db.models import Q, QuerySet
from django.http import StreamingHttpResponse
from django.utils.dateparse import parse_datetime
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, PolymorphicProxySerializer, extend_schema
from rest_framework import generics, status
from rest_framework.authentication import SessionAuthentication
from rest_framework.pagination import BasePagination
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.utils.urls import replace_query_param
from rest_framework.views import APIView

from core.errors import NotFound, ServiceError
from curriculum import selectors as curriculum_selectors
from curriculum.services import course_create, curriculum_import, graph_for_course
from tracing.models import Fit
from tracing.practice import learner_view
from tracing.services import (
    fits_for_course,
    learner_outlook,
    mastery_get,
    predict_items,
)
from tutor import selectors
from tutor.actions import answers_record, fit_start, next_item_choose
from tutor.activity import activity_mastery_pending
from tutor.api import serializers as shapes
from tutor.api.auth import ApiKeyAuthentication, CourseClient, GlobalClient, course_for_request, courses_for_request
from tutor.api.parsers import BoundedJSONParser
from tutor.api.throttling import ApiKeyRateThrottle
from tutor.api.xapi import statements_map
from tutor.enrolments import enrolment_delete, enrolment_get, enrolment_put
from tutor.exports import EXPORTS, export_response
from tutor.models import Erasure
from tutor.privacy import learner_erase, learner_export
from tutor.services import RecordResult, learner_get, learner_get_or_new

COURSE = OpenApiParameter("course", str, OpenApiParameter.PATH, description="The course id (slug).")
LEARNER = OpenApiParameter("learner", str, OpenApiParameter.PATH, description="The learner's id in your system.")
FIT = OpenApiParameter("fit", int, OpenApiParameter.PATH, description="The fit number.")
EXPORT = OpenApiParameter(
    "export",
    str,
    OpenApiParameter.PATH,
    enum=sorted(EXPORTS),
    description="Which export: interactions.csv, mastery.csv, parameters.csv (the active fit's, "
    "or ?fit=N) or statements.jsonl (xAPI, one statement a line).",
)


def errors(*codes: int) -> dict[int, OpenApiResponse]:
    meaning = {
        400: "Bad input: `code` says what, `field` (and `index` for a batch row) where.",
        401: "No or unknown API key (`Authorization: Token <key>`).",
        403: "The caller may not do this (a course key creating a course; a non-staff session).",
        404: "No such course (or not the key's course), learner or fit.",
        409: "The course already has as many fits queued or running as it may; `detail.fits` names them.",
        413: "The body is larger than the server accepts (TUTOR_API_MAX_BODY_BYTES).",
        415: "The body is not JSON.",
        429: "Too many requests for this key; see Retry-After.",
        503: "A dependency (the task queue) is down; retry later.",
    }
    return {code: OpenApiResponse(shapes.Error, description=meaning[code]) for code in (401, 403, 429, *codes)}


class Pages(BasePagination):
    """Keyset pages: ``?limit=`` 1 to 1000 (default 100), and ``?after=`` the cursor a page's ``next`` URL
    carries. A page is read from where the last one ended, over the list's index (no OFFSET, which
    reads and drops every row before the page: on a course of millions of answers the last pages cost
    seconds). The cursor holds the last row's ordering values; anything else in ``after`` is a 400."""

    default_limit = 100
    max_limit = 1000

    def _limit(self, request: Request) -> int:
        text = request.query_params.get("limit")
        if text is None:
            return self.default_limit
        if not re.fullmatch(r"[0-9]{1,13}", text) or not 1 <= int(text) <= self.max_limit:
            raise ServiceError(
                f"limit must be an integer from 1 to {self.max_limit}, got {text[:32]!r}",
                code="invalid_limit",
                field="limit",
            )
        return int(text)

    @staticmethod
    def _keys(queryset: QuerySet) -> list[str]:
        keys = [str(key) for key in (queryset.query.order_by or queryset.model._meta.ordering)]
        if keys[-1].lstrip("-") not in ("id", "pk"):
            keys.append("pk")  # ties end on the primary key, so every row has one place
        return keys

    @staticmethod
    def _field(model: Any, key: str) -> Any:
        name = key.lstrip("-")
        return model._meta.pk if name == "pk" else model._meta.get_field(name)

    def _decode(self, text: str, model: Any, keys: list[str]) -> list[Any]:
        invalid = ServiceError("after must be the cursor of a page's next URL", code="invalid_after", field="after")
        try:
            values = json.loads(base64.urlsafe_b64decode(text.encode("ascii") + b"=" * (-len(text) % 4)))
        except (ValueError, UnicodeError):
            raise invalid from None
        if not isinstance(values, list) or len(values) != len(keys):
            raise invalid
        decoded = []
        for key, value in zip(keys, values):
            field = self._field(model, key)
            if isinstance(field, models.DateTimeField):
                moment = parse_datetime(value) if isinstance(value, str) else None
                if moment is None or moment.tzinfo is None:
                    raise invalid
                decoded.append(moment)
            elif isinstance(field, (models.AutoField, models.BigAutoField, models.IntegerField)):
                if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**63:
                    raise invalid
                decoded.append(value)
            elif isinstance(value, str) and len(value) <= 1000:
                decoded.append(value)
            else:
                raise invalid
        return decoded

    @staticmethod
    def _encode(values: list[Any]) -> str:
        plain = [value.isoformat() if isinstance(value, datetime) else value for value in values]
        return base64.urlsafe_b64encode(json.dumps(plain, separators=(",", ":")).encode()).decode().rstrip("=")

    def paginate_queryset(self, queryset: QuerySet, request: Request, view: Any = None) -> list[Any]:
        if "offset" in request.query_params:
            raise ServiceError(
                "offset is not accepted: follow each page's next URL (keyset pages, ?after=)",
                code="invalid_offset",
                field="offset",
            )
        self.request, self.limit, keys = request, self._limit(request), self._keys(queryset)
        queryset = queryset.order_by(*keys)
        after = request.query_params.get("after")
        if after is not None:
            values = self._decode(after, queryset.model, keys)
            # (a, b) after (x, y): a > x, or a = x and b > y (< for a descending key).
            clauses: list[Q] = []
            equal: dict[str, Any] = {}
            for key, value in zip(keys, values):
                name = key.lstrip("-")
                clauses.append(Q(**equal, **{f"{name}__{'lt' if key.startswith('-') else 'gt'}": value}))
                equal[name] = value
            queryset = queryset.filter(functools.reduce(operator.or_, clauses))
        rows = list(queryset[: self.limit + 1])
        self.next_cursor = None
        if len(rows) > self.limit:
            rows = rows[: self.limit]
            last = rows[-1]
            self.next_cursor = self._encode([getattr(last, key.lstrip("-")) for key in keys])
        return rows

    def get_paginated_response(self, data: Any) -> Response:
        next_url = None
        if self.next_cursor is not None:
            next_url = replace_query_param(self.request.build_absolute_uri(), "after", self.next_cursor)
        return Response({"next": next_url, "results": data})

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        return [
            {
                "name": "limit",
                "required": False,
                "in": "query",
                "description": f"Rows per page, an integer from 1 to {self.max_limit}; anything else is a 400.",
                "schema": {"type": "integer", "minimum": 1, "maximum": self.max_limit, "default": self.default_limit},
            },
            {
                "name": "after",
                "required": False,
                "in": "query",
                "description": "The cursor of the previous page's `next` URL; anything else is a 400.",
                "schema": {"type": "string"},
            },
        ]

    def get_paginated_response_schema(self, schema: dict) -> dict:
        return {
            "type": "object",
            "required": ["results"],
            "properties": {
                "next": {
                    "type": "string",
                    "nullable": True,
                    "format": "uri",
                    "description": "URL of the next page (the same query with its cursor), or null after the last.",
                },
                "results": {**schema, "description": "This page's rows."},
            },
        }


class ApiView(APIView):
    authentication_classes = [ApiKeyAuthentication, SessionAuthentication]
    permission_classes = [CourseClient]
    throttle_classes = [ApiKeyRateThrottle]
    parser_classes = [BoundedJSONParser]
    renderer_classes = [JSONRenderer]

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        # PostgreSQL cannot compare text holding NUL: refuse it before any query sees it.
        for name, value in [*kwargs.items(), *request.query_params.items()]:
            if isinstance(value, str) and "\x00" in value:
                raise ServiceError(f"{name}: NUL characters are not accepted", code="invalid_character", field=name)
        super().initial(request, *args, **kwargs)


class ApiListView(ApiView, generics.ListAPIView):
    pagination_class = Pages


def _record_response(result: RecordResult) -> Response:
    body = {
        "created": result.created_count,
        "duplicates": result.duplicate_count,
        "learners_created": result.learners_created,
        "results": result.results,
        "mastery": result.mastery,
    }
    return Response(body, status=status.HTTP_201_CREATED if result.created_count else status.HTTP_200_OK)


class CoursesView(ApiListView):
    serializer_class = shapes.CourseOut

    def get_permissions(self):
        return [GlobalClient()] if self.request.method == "POST" else [CourseClient()]

    def get_queryset(self):
        return courses_for_request(self.request).order_by("slug")

    @extend_schema(
        summary="List the courses the caller can reach",
        tags=["courses"],
        responses={200: shapes.CourseOut(many=True), **errors(400)},
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(
        summary="Create a course",
        tags=["courses"],
        description="Needs a global admin key (one not scoped to a course) or a staff session.",
        request=shapes.CourseCreate,
        responses={201: shapes.CourseOut, **errors(400, 413, 415)},
    )
    def post(self, request: Request) -> Response:
        form = shapes.CourseCreate(data=request.data)
        form.is_valid(raise_exception=True)
        course = course_create(
            slug=form.validated_data["id"],
            name=form.validated_data["name"],
            description=form.validated_data["description"],
        )
        return Response(shapes.CourseOut(course).data, status=status.HTTP_201_CREATED)


class CurriculumView(ApiView):
    @extend_schema(
        summary="Create or update skills, items and prerequisites",
        tags=["curriculum"],
        parameters=[COURSE],
        description="Validated whole before anything is written, then written in one transaction. Ids are "
        "the keys: importing the same document again changes nothing; entries absent from the "
        "document are left alone. The prerequisites (with those stored) must be acyclic.",
        request=shapes.CurriculumDocument,
        responses={200: shapes.CurriculumSummary, **errors(400, 404, 413, 415)},
    )
    def post(self, request: Request, course: str) -> Response:
        course_object = course_for_request(request, course)
        return Response(curriculum_import(course=course_object, document=request.data))


class GraphView(ApiView):
    @extend_schema(
        summary="The prerequisite graph: skills and edges, authored and learned",
        tags=["curriculum"],
        parameters=[COURSE, shapes.GraphQuery],
        responses={200: shapes.Graph, **errors(400, 404)},
    )
    def get(self, request: Request, course: str) -> Response:
        query = shapes.GraphQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        course_object = course_for_request(request, course)
        graph = graph_for_course(course=course_object, **query.validated_data)
        names = curriculum_selectors.skill_names(course=course_object)
        return Response(
            {
                "skills": [{"id": skill, "name": names.get(skill, "")} for skill in graph.topological_order()],
                "edges": [
                    {"from": edge.source, "to": edge.target, "origin": edge.origin, "weight": edge.weight}
                    for edge in graph.edges.values()
                ],
            }
        )


class InteractionsView(ApiListView):
    serializer_class = shapes.InteractionOut

    def get_queryset(self):
        query = shapes.InteractionQuery(data=self.request.query_params)
        query.is_valid(raise_exception=True)
        return selectors.interactions_query(
            course=course_for_request(self.request, self.kwargs["course"]), **query.validated_data
        )

    @extend_schema(
        summary="List stored interactions",
        tags=["interactions"],
        parameters=[COURSE, shapes.InteractionQuery],
        responses={200: shapes.InteractionOut(many=True), **errors(400, 404)},
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(
        summary="Record answers: one object or a list of up to 10,000",
        tags=["interactions"],
        parameters=[COURSE],
        description="Atomic (all rows or none) and idempotent on `id`: a row whose id is already stored is a "
        "`duplicate`, so a retried batch stores nothing twice and returns the same rows and "
        "mastery. 201 when something was stored, 200 when every row was a duplicate. Unknown "
        "learners are created; an unknown item fails the batch.",
        request=PolymorphicProxySerializer(
            component_name="InteractionOneOrMany",
            serializers=[shapes.InteractionIn, shapes.InteractionIn(many=True)],
            resource_type_field_name=None,
            many=False,
        ),
        responses={201: shapes.RecordOut, 200: shapes.RecordOut, **errors(400, 404, 413, 415)},
    )
    def post(self, request: Request, course: str) -> Response:
        course_object = course_for_request(request, course)
        batch = shapes.InteractionBatch(data=request.data)
        batch.is_valid(raise_exception=True)
        return _record_response(answers_record(course=course_object, rows=shapes.rows_of(batch.validated_data)))


class LearnersView(ApiListView):
    serializer_class = shapes.LearnerOut

    def get_queryset(self):
        return selectors.learners_query(course=course_for_request(self.request, self.kwargs["course"]))

    @extend_schema(
        summary="List the course's learners",
        tags=["learners"],
        parameters=[COURSE],
        responses={200: shapes.LearnerOut(many=True), **errors(400, 404)},
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)


class MasteryView(ApiView):
    @extend_schema(
        summary="A learner's mastery per skill, its forecast and the learner's traits",
        tags=["learners"],
        parameters=[COURSE, LEARNER, shapes.MasteryQuery],
        responses={200: shapes.MasteryOut, **errors(400, 404)},
    )
    def get(self, request: Request, course: str, learner: str) -> Response:
        course_object = course_for_request(request, course)
        learner_object = learner_get(course=course_object, external_id=learner)
        query = shapes.MasteryQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        at = query.validated_data.get("at")
        rows = mastery_get(learner=learner_object)
        view = learner_view(course=course_object, learner=learner_object)
        for row in rows:
            evidence = view.evidence.get(row.skill.external_id)
            row.answers = evidence.answers if evidence else 0
            row.mastered = view.mastered(row.skill.external_id)
        total = course_object.skills.count()
        mean = round(sum(row.probability for row in rows) / total, 6) if total and rows else None
        return Response(
            {
                "learner": learner,
                "mean": mean,
                "mastery": shapes.SkillMastery(rows, many=True).data,
                "at": at.isoformat() if at else None,
                **learner_outlook(learner=learner_object, at=at, model=view.model, state=view.state),
                "mastery_pending": activity_mastery_pending(learner_pk=learner_object.pk),
            }
        )


class NextView(ApiView):
    @extend_schema(
        summary="The next item for a learner, and why",
        tags=["learners"],
        parameters=[COURSE, LEARNER, shapes.NextQuery],
        description="Read from the learner's mastery, the prerequisite graph and the course's policy. "
        "A learner with no answers yet gets a first item from the model's prior.",
        responses={200: shapes.NextOut, **errors(400, 404)},
    )
    def get(self, request: Request, course: str, learner: str) -> Response:
        course_object = course_for_request(request, course)
        query = shapes.NextQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        goal = query.validated_data.get("goal")
        # A learner with no answers yet gets a first item from the model's prior (an LMS asks before any answer).
        choice = next_item_choose(
            course=course_object,
            learner=learner_get_or_new(course=course_object, external_id=learner),
            goals=(goal,) if goal is not None else None,
        )
        item = (
            curriculum_selectors.item_shown(course_pk=course_object.pk, external_id=choice.item)
            if choice.item
            else None
        )
        return Response(
            {
                "learner": learner,
                "item": choice.item,
                "skill": choice.skill,
                "why": choice.why,
                "p_correct": choice.p_correct,
                "expected_gain": choice.expected_gain,
                "mastery": choice.mastery,
                "struggling": choice.struggling,
                "done": choice.done,
                "goals_mastered": choice.goals_mastered,
                "goals_total": choice.goals_total,
                "body": item["body"] if item else None,
                "choices": item["choices"] if item else None,
            }
        )


def _learner_path(learner: str) -> str:
    path = shapes.LearnerPath(data={"learner": learner})
    path.is_valid(raise_exception=True)
    return path.validated_data["learner"]


class EnrolmentView(ApiView):
    """Which account on this server practises the course as this learner (the learner pages are open only
    to accounts enrolled in a course, or to everyone for a course open to all)."""

    @extend_schema(
        summary="Enrol an account as this learner",
        tags=["learners"],
        parameters=[COURSE, LEARNER],
        description="The account named `user` may then practise the course on the learner pages, as "
        "this learner (created if new). 201 when the enrolment is new, 200 when the account "
        "was enrolled already (it now practises as this learner). 409 `learner_taken` when "
        "another account has this learner: DELETE that enrolment first. LTI launches enrol "
        "their learners by themselves.",
        request=shapes.EnrolmentIn,
        responses={201: shapes.EnrolmentOut, 200: shapes.EnrolmentOut, 409: shapes.Error, **errors(400, 404, 413, 415)},
    )
    def put(self, request: Request, course: str, learner: str) -> Response:
        course_object = course_for_request(request, course)
        external_id = _learner_path(learner)
        form = shapes.EnrolmentIn(data=request.data)
        form.is_valid(raise_exception=True)
        enrolment, created = enrolment_put(
            course=course_object, external_id=external_id, username=form.validated_data["user"]
        )
        return Response(
            shapes.EnrolmentOut(enrolment).data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK
        )

    @extend_schema(
        summary="The account enrolled as this learner",
        tags=["learners"],
        parameters=[COURSE, LEARNER],
        responses={200: shapes.EnrolmentOut, **errors(400, 404)},
    )
    def get(self, request: Request, course: str, learner: str) -> Response:
        course_object = course_for_request(request, course)
        learner_object = learner_get(course=course_object, external_id=_learner_path(learner))
        return Response(shapes.EnrolmentOut(enrolment_get(course=course_object, learner=learner_object)).data)

    @extend_schema(
        summary="End the enrolment: the account no longer practises as this learner",
        tags=["learners"],
        parameters=[COURSE, LEARNER],
        description="The learner and its answers stay.",
        responses={204: None, **errors(400, 404)},
    )
    def delete(self, request: Request, course: str, learner: str) -> Response:
        course_object = course_for_request(request, course)
        learner_object = learner_get(course=course_object, external_id=_learner_path(learner))
        enrolment_delete(enrolment=enrolment_get(course=course_object, learner=learner_object))
        return Response(status=status.HTTP_204_NO_CONTENT)


class LearnerView(ApiView):
    @extend_schema(
        summary="Erase a learner and everything held about them",
        tags=["privacy"],
        parameters=[COURSE, LEARNER, shapes.EraseQuery],
        description="Deletes the learner's answers, mastery, model traces, LMS grade targets and enrolment, and "
        "their account where it belongs to no other course (with its LTI identities, sessions and "
        "sign-in records); marks the course's fits trained on their answers (`erased_learners` in "
        "the fit's body) until a new fit is active. All or nothing. `?confirm=` must repeat the "
        "learner's id. Answers the audit record, which names the learner only by a keyed hash.",
        responses={200: shapes.ErasureOut, **errors(400, 404)},
    )
    def delete(self, request: Request, course: str, learner: str) -> Response:
        course_object = course_for_request(request, course)
        query = shapes.EraseQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        erasure = learner_erase(
            course=course_object,
            external_id=_learner_path(learner),
            by=request.auth if request.auth is not None else request.user,
            via=Erasure.API,
            confirm=query.validated_data["confirm"],
        )
        return Response(shapes.ErasureOut(erasure).data)


class LearnerExportView(ApiView):
    @extend_schema(
        summary="Everything held about one learner (an access request)",
        tags=["privacy"],
        parameters=[COURSE, LEARNER],
        description="One JSON document: the learner, their answers, mastery and model traces, the "
        "accounts that practise as them with their enrolments, and their LMS identities "
        "and grade targets.",
        responses={200: shapes.LearnerExport, **errors(400, 404)},
    )
    def get(self, request: Request, course: str, learner: str) -> Response:
        course_object = course_for_request(request, course)
        return Response(learner_export(course=course_object, external_id=_learner_path(learner)))


class ExportView(ApiView):
    def perform_content_negotiation(self, request: Request, force: bool = False) -> Any:
        # The export is CSV or JSON lines whatever Accept says; only an error answers JSON.
        return super().perform_content_negotiation(request, force=True)

    @extend_schema(
        summary="Export the course's data, streamed",
        tags=["exports"],
        parameters=[COURSE, EXPORT, shapes.ExportQuery],
        description="Streamed as it is read, so any size of course downloads in constant memory. "
        "interactions.csv: id, learner, item, correct, timestamp, response_time, client_id, response, "
        "stored_at. mastery.csv: learner, skill, probability, updated_at, fit. parameters.csv: fit, "
        "model, parameter, skill, item, value (404 while the course has no active fit). "
        "statements.jsonl: one xAPI 'answered' statement a line, which POST xapi/statements maps back "
        "to the same answers (statement id = the answer's id where that is a UUID).",
        responses={
            (200, "text/csv"): OpenApiTypes.STR,
            (200, "application/x-ndjson"): OpenApiTypes.STR,
            **errors(400, 404),
        },
    )
    def get(self, request: Request, course: str, export: str) -> StreamingHttpResponse:
        course_object = course_for_request(request, course)
        query = shapes.ExportQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        return export_response(course=course_object, name=export, fit=query.validated_data.get("fit"))


class PredictView(ApiView):
    @extend_schema(
        summary="P(correct) for items if the learner answered them next",
        tags=["learners"],
        parameters=[COURSE],
        request=shapes.PredictIn,
        responses={200: shapes.PredictOut, **errors(400, 404, 413, 415)},
    )
    def post(self, request: Request, course: str) -> Response:
        course_object = course_for_request(request, course)
        form = shapes.PredictIn(data=request.data)
        form.is_valid(raise_exception=True)
        items = list(dict.fromkeys(form.validated_data["items"]))
        missing = sorted(set(items) - curriculum_selectors.items_existing(course=course_object, ids=items))
        if missing:
            raise ServiceError(
                f"unknown item(s) in course {course!r}: {', '.join(map(repr, missing[:10]))}",
                code="unknown_item",
                field="items",
                detail={"unknown_items": missing[:100]},
            )
        learner = learner_get_or_new(course=course_object, external_id=form.validated_data["learner"])
        probabilities = predict_items(learner=learner, items=items, at=form.validated_data.get("at"))
        return Response(
            {
                "learner": learner.external_id,
                "predictions": [
                    {"item": item, "p_correct": probabilities[item]} for item in form.validated_data["items"]
                ],
            }
        )


def _fit_body(fit: Fit) -> dict[str, Any]:
    return shapes.FitOut(fit).data


class FitsView(ApiListView):
    serializer_class = shapes.FitOut

    def get_queryset(self):
        return fits_for_course(course=course_for_request(self.request, self.kwargs["course"]))

    @extend_schema(
        summary="List the course's fits, newest first",
        tags=["fits"],
        parameters=[COURSE],
        responses={200: shapes.FitOut(many=True), **errors(400, 404)},
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(
        summary="Fit a model to the course's interactions",
        tags=["fits"],
        parameters=[COURSE],
        description="Queues the fit and answers 202 with its number at once; poll GET fits/{fit}. A fit that "
        "succeeds becomes the active model; one that fails, or runs past its time limit (which grows "
        "with the course's answers), leaves the previous one active. Every parameter has bounds "
        "(below, per model); a course may have a few fits queued or running at once "
        "(TRACING_FITS_PER_COURSE, default 2): one more answers 409 naming them.",
        request=PolymorphicProxySerializer(
            component_name="FitCreate", serializers=shapes.FIT_REQUEST_SHAPES, resource_type_field_name="model"
        ),
        responses={202: shapes.FitOut, **errors(400, 404, 409, 413, 415, 503)},
    )
    def post(self, request: Request, course: str) -> Response:
        course_object = course_for_request(request, course)
        form = shapes.FitCreate(data=request.data)
        form.is_valid(raise_exception=True)
        fit = fit_start(course=course_object, kind=form.validated_data["model"], params=form.validated_data["params"])
        response = Response(_fit_body(fit), status=status.HTTP_202_ACCEPTED)
        response["Location"] = f"/api/v1/courses/{course_object.slug}/fits/{fit.pk}"
        return response


class FitDetailView(ApiView):
    @extend_schema(
        summary="A fit's status, progress, metrics and timings",
        tags=["fits"],
        parameters=[COURSE, FIT],
        responses={200: shapes.FitOut, **errors(400, 404)},
    )
    def get(self, request: Request, course: str, fit: int) -> Response:
        course_object = course_for_request(request, course)
        found = fits_for_course(course=course_object).filter(pk=fit).first()
        if found is None:
            raise NotFound(f"fit {fit} not found in course {course_object.slug!r}", field="fit")
        return Response(_fit_body(found))


class XapiStatementsView(ApiView):
    @extend_schema(
        summary="Record xAPI 'answered' statements as interactions",
        tags=["interactions"],
        parameters=[COURSE],
        description="One statement or a list. Only the verb http://adlnet.gov/expapi/verbs/answered is recorded "
        "(others are reported as ignored). actor -> learner: account.name, else mbox without "
        "mailto:, else mbox_sha1sum or openid. object.id -> item: the full IRI if it is an item id, "
        "else its fragment or last path segment. result.score.scaled (negative counts as 0), else "
        "result.success -> correct. The statement id is the idempotency key.",
        request=PolymorphicProxySerializer(
            component_name="XapiOneOrMany",
            serializers=[shapes.XapiStatementDoc, shapes.XapiStatementDoc(many=True)],
            resource_type_field_name=None,
            many=False,
        ),
        responses={201: shapes.XapiOut, 200: shapes.XapiOut, **errors(400, 404, 413, 415)},
    )
    def post(self, request: Request, course: str) -> Response:
        course_object = course_for_request(request, course)
        form = shapes.XapiStatements(data=request.data)
        form.is_valid(raise_exception=True)
        statements = form.validated_data["statements"]
        mapped = statements_map(
            statements, existing_items=lambda ids: curriculum_selectors.items_existing(course=course_object, ids=ids)
        )
        batch = shapes.InteractionBatch(data=mapped.rows) if mapped.rows else None
        results: list[dict[str, Any]] = [
            {
                "index": index,
                "id": _statement_id(statements[index]),
                "status": "ignored",
                "interaction": None,
                "reason": reason,
            }
            for index, reason in mapped.ignored
        ]
        body: dict[str, Any] = {"created": 0, "duplicates": 0, "ignored": len(mapped.ignored), "mastery": {}}
        created = False
        if batch is not None:
            try:
                batch.is_valid(raise_exception=True)
            except ServiceError as error:
                raise _per_statement(error, mapped.positions) from None
            outcome = answers_record(course=course_object, rows=shapes.rows_of(batch.validated_data))
            created = outcome.created_count > 0
            body.update(created=outcome.created_count, duplicates=outcome.duplicate_count, mastery=outcome.mastery)
            results += [
                {"index": position, "id": row["id"], "status": row["status"], "interaction": row["interaction"]}
                for position, row in zip(mapped.positions, outcome.results)
            ]
        body["results"] = sorted(results, key=lambda row: row["index"])
        return Response(body, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


def _statement_id(statement: Any) -> str | None:
    value = statement.get("id") if isinstance(statement, dict) else None
    return value if isinstance(value, str) else None


def _per_statement(error: ServiceError, positions: list[int]) -> ServiceError:
    """A row error of the mapped batch, renamed to the statement it came from."""
    if error.index is None:
        return error
    position = positions[error.index]
    message = error.message.split(": ", 1)[-1]
    return ServiceError(
        f"statement {position}: {message}", code=error.code, field=error.field, index=position, detail=error.detail
    )
