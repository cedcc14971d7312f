"""Request and response shapes of API v1 (validation of shape; the services check meaning)."""

from __future__ import annotations

from typing import Any

from django.utils import timezone as django_timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from core.errors import ServiceError
from tracing.estimators import ESTIMATORS, estimator_params
from tutor.services import MAX_BATCH, Row, row_validate

MAX_PREDICT_ITEMS = 1000
MAX_STATEMENTS = MAX_BATCH


class Error(serializers.Serializer):
    code = serializers.CharField(
        help_text="Stable machine-readable error code, e.g. `unknown_item`, "
        "`invalid_correct`, `malformed_json`, `not_found`, `throttled`."
    )
    message = serializers.CharField(help_text="What went wrong, for people; names the field at fault.")
    field = serializers.CharField(required=False, help_text="Dotted path of the field at fault, e.g. `items.2`.")
    index = serializers.IntegerField(required=False, help_text="Row of the batch at fault (0-based).")
    detail = serializers.JSONField(required=False, help_text="More about the error (e.g. the unknown ids).")


class StrictText(serializers.CharField):
    """A string field that takes JSON strings only: DRF's CharField turns 12 into "12" and 1.0 into "1.0",
    so an id sent as a number would silently become another id. Mixed into CharField and SlugField."""

    default_error_messages = {"invalid_type": "Must be a JSON string, not a number or another type."}

    def to_internal_value(self, data: Any) -> Any:
        if not isinstance(data, str):
            self.fail("invalid_type")
        return super().to_internal_value(data)


class Text(StrictText):
    pass


class Slug(StrictText, serializers.SlugField):
    pass


class CourseCreate(serializers.Serializer):
    id = Slug(max_length=64, help_text="The course's id (slug): lowercase letters, digits, - and _.")
    name = Text(
        max_length=200, required=False, allow_blank=True, default="", help_text="Display name; defaults to the id."
    )
    description = Text(
        required=False, allow_blank=True, default="", max_length=10_000, help_text="Free text shown to teachers."
    )


class CourseOut(serializers.Serializer):
    id = serializers.CharField(source="slug", help_text="The course's id (slug), used in every course path.")
    name = serializers.CharField(help_text="Display name.")
    description = serializers.CharField(help_text="Free text shown to teachers.")
    created_at = serializers.DateTimeField(help_text="When the course was created.")


class SkillDocument(serializers.Serializer):
    id = serializers.CharField(max_length=200, help_text="The skill's id within the course.")
    name = serializers.CharField(required=False, max_length=300, help_text="Display name.")
    description = serializers.CharField(required=False, help_text="Free text.")


class ItemDocument(serializers.Serializer):
    id = serializers.CharField(max_length=200, help_text="The item's id within the course (used in interactions).")
    skills = serializers.ListField(
        child=serializers.CharField(max_length=200),
        min_length=1,
        help_text="Ids of the skills the item tests (the Q-matrix row).",
    )
    body = serializers.CharField(required=False, help_text="The question text.")
    answer = serializers.CharField(required=False, help_text="The expected answer (never shown by the API).")
    choices = serializers.ListField(
        child=serializers.CharField(),
        required=False,
        allow_null=True,
        help_text="Multiple-choice options, or null for a typed answer.",
    )
    answer_format = serializers.CharField(
        required=False, max_length=32, help_text="How a typed answer is judged, e.g. `simplest`."
    )
    explanation = serializers.CharField(required=False, help_text="Shown after an answer.")
    difficulty = serializers.IntegerField(
        required=False, allow_null=True, min_value=0, max_value=32767, help_text="Authored difficulty, if any."
    )


class PrerequisiteDocument(serializers.Serializer):
    to = serializers.CharField(max_length=200, help_text="The skill that needs the prerequisite.")

    def get_fields(self) -> dict[str, serializers.Field]:
        # "from" is a Python keyword, so it cannot be a class attribute: it is added here.
        return {
            **super().get_fields(),
            "from": serializers.CharField(max_length=200, help_text="The prerequisite skill."),
        }


class CurriculumDocument(serializers.Serializer):
    skills = SkillDocument(many=True, required=False, help_text="Skills to create or update (id is the key).")
    items = ItemDocument(many=True, required=False, help_text="Items to create or update (id is the key).")
    prerequisites = PrerequisiteDocument(
        many=True, required=False, help_text="Authored prerequisite edges; together they must be acyclic."
    )
    policy = serializers.JSONField(
        required=False,
        help_text="Next-item policy settings (threshold, band, goals, review); see the curriculum documentation.",
    )


class ImportCounts(serializers.Serializer):
    created = serializers.IntegerField(help_text="Entries created.")
    updated = serializers.IntegerField(required=False, help_text="Entries whose text changed.")
    unchanged = serializers.IntegerField(help_text="Entries already as given.")


class CurriculumSummary(serializers.Serializer):
    skills = ImportCounts(help_text="What happened to the skills.")
    items = ImportCounts(help_text="What happened to the items.")
    prerequisites = ImportCounts(help_text="What happened to the authored edges.")
    policy = serializers.CharField(required=False, help_text="`updated` when the policy settings changed.")


class GraphQuery(serializers.Serializer):
    include_learned = serializers.BooleanField(default=True, help_text="Include edges learned by a fit.")
    min_weight = serializers.FloatField(
        default=0.5, min_value=0.0, max_value=1.0, help_text="Leave out learned edges weaker than this."
    )


class GraphSkill(serializers.Serializer):
    id = serializers.CharField(help_text="Skill id.")
    name = serializers.CharField(help_text="Display name (may be empty).")


class GraphEdge(serializers.Serializer):
    to = serializers.CharField(help_text="The skill that needs the prerequisite.")
    origin = serializers.ChoiceField(
        choices=["authored", "learned"], help_text="`authored` (from the curriculum) or `learned` (inferred by a fit)."
    )
    weight = serializers.FloatField(help_text="1 for authored edges; the edge's probability for learned ones.")

    def get_fields(self) -> dict[str, serializers.Field]:
        # "from" is a Python keyword, so it cannot be a class attribute: it is added here.
        return {**super().get_fields(), "from": serializers.CharField(help_text="The prerequisite skill.")}


class Graph(serializers.Serializer):
    skills = GraphSkill(many=True, help_text="Every skill of the course, in a topological order.")
    edges = GraphEdge(
        many=True,
        help_text="Prerequisite edges, kept acyclic (a learned edge that would close "
        "a cycle with stronger ones is left out).",
    )


class InteractionIn(serializers.Serializer):
    """One answer. Fields are checked by the recording service, which names the row and field at fault."""

    id = serializers.CharField(
        required=False,
        max_length=200,
        help_text="Your id for this answer: a retry with the same id stores nothing new. Strongly recommended.",
    )
    learner = serializers.CharField(max_length=200, help_text="The learner's id in your system (created if new).")
    item = serializers.CharField(max_length=200, help_text="An item id of the course's curriculum.")
    correct = serializers.FloatField(
        min_value=0.0, max_value=1.0, help_text="1 correct, 0 wrong, or a partial score in [0, 1]."
    )
    timestamp = serializers.DateTimeField(
        required=False,
        help_text="When the learner answered (ISO 8601, or unix "
        "seconds); default: now. In UTC it must lie "
        "between TUTOR_EARLIEST_TIMESTAMP (1970-01-01) "
        "and now plus TUTOR_CLOCK_SKEW (one day).",
    )
    response_time = serializers.FloatField(
        required=False, allow_null=True, min_value=0.0, help_text="Seconds the learner took."
    )
    response = serializers.CharField(
        required=False, allow_blank=True, max_length=2000, help_text="What the learner answered."
    )


class InteractionBatch(serializers.Serializer):
    """The body of POST interactions: one object or a list of up to 10,000, validated into Rows."""

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        if isinstance(data, dict):
            raw = [data]
        elif isinstance(data, list):
            raw = data
        else:
            raise serializers.ValidationError(
                {
                    "non_field_errors": [
                        serializers.ErrorDetail(
                            "the body must be one interaction object or a list of them", code="invalid_type"
                        )
                    ]
                }
            )
        if not raw:
            raise ServiceError("the batch is empty", code="empty_batch")
        if len(raw) > MAX_BATCH:
            raise ServiceError(
                f"a batch holds at most {MAX_BATCH} interactions, got {len(raw)}", code="batch_too_large"
            )
        now = django_timezone.now()
        return {"rows": [row_validate(row, index, now=now) for index, row in enumerate(raw)]}


class RowResult(serializers.Serializer):
    index = serializers.IntegerField(help_text="Position in the request (0-based).")
    id = serializers.CharField(allow_null=True, help_text="The client id given, or null.")
    status = serializers.ChoiceField(
        choices=["created", "duplicate"],
        help_text="`created` now, or `duplicate` of an interaction stored before "
        "(or earlier in this batch) with the same id.",
    )
    interaction = serializers.IntegerField(help_text="Number of the stored interaction.")
    learner = serializers.CharField(help_text="Learner id.")
    item = serializers.CharField(help_text="Item id.")


@extend_schema_field(
    {
        "type": "object",
        "additionalProperties": {
            "type": "object",
            "additionalProperties": {"type": "number", "minimum": 0, "maximum": 1},
        },
        "description": "learner id -> skill id -> P(the learner knows the skill) after these answers.",
    }
)
class MasteryMap(serializers.JSONField):
    pass


class RecordOut(serializers.Serializer):
    created = serializers.IntegerField(help_text="Interactions stored by this request.")
    duplicates = serializers.IntegerField(
        help_text="Rows whose id was already stored, or repeated an id earlier in "
        "this batch (nothing new stored for them)."
    )
    learners_created = serializers.IntegerField(help_text="Learners seen for the first time.")
    results = RowResult(many=True, help_text="One entry per row, in request order.")
    mastery = MasteryMap(help_text="Mastery of every learner in the batch after it.")


class InteractionQuery(serializers.Serializer):
    learner = serializers.CharField(required=False, max_length=200, help_text="Only this learner's answers.")
    skill = serializers.CharField(required=False, max_length=200, help_text="Only answers to items of this skill.")
    item = serializers.CharField(required=False, max_length=200, help_text="Only answers to this item.")
    since = serializers.DateTimeField(required=False, help_text="Answers at or after this time (ISO 8601).")
    until = serializers.DateTimeField(required=False, help_text="Answers before this time (ISO 8601).")


class InteractionOut(serializers.Serializer):
    interaction = serializers.IntegerField(source="pk", help_text="Number of the stored interaction.")
    id = serializers.CharField(source="client_id", allow_null=True, help_text="The client id given, or null.")
    learner = serializers.CharField(source="learner.external_id", help_text="Learner id.")
    item = serializers.CharField(source="item.external_id", help_text="Item id.")
    correct = serializers.FloatField(help_text="1 correct, 0 wrong, or a score in [0, 1].")
    timestamp = serializers.DateTimeField(help_text="When the learner answered.")
    response_time = serializers.FloatField(allow_null=True, help_text="Seconds taken, if known.")
    created_at = serializers.DateTimeField(help_text="When it was stored.")


class LearnerOut(serializers.Serializer):
    id = serializers.CharField(source="external_id", help_text="The learner's id in your system.")
    created_at = serializers.DateTimeField(help_text="When the learner was first seen.")
    signed_in = serializers.SerializerMethodField(
        help_text="True when the learner has an account here (e.g. came through an LTI launch)."
    )

    def get_signed_in(self, learner) -> bool:
        return learner.user_id is not None


class SkillMastery(serializers.Serializer):
    skill = serializers.CharField(source="skill.external_id", help_text="Skill id.")
    name = serializers.CharField(source="skill.name", help_text="Skill name.")
    probability = serializers.FloatField(help_text="P(the learner knows the skill), after their last answer.")
    updated_at = serializers.DateTimeField(help_text="When it last changed.")
    fit = serializers.IntegerField(
        source="fit_id", allow_null=True, help_text="The fit whose model computed it (null: the untrained default)."
    )
    answers = serializers.IntegerField(help_text="The learner's answers on items of the skill.")
    mastered = serializers.BooleanField(
        help_text="Mastered by the course's rule, now: P(known) >= the policy's "
        "threshold on at least `min_answers` answers, one of them above "
        "the skill's easiest level where its items differ."
    )


class MasteryQuery(serializers.Serializer):
    at = serializers.DateTimeField(
        required=False, help_text="Also forecast mastery at this moment (ISO 8601), assuming no practice until then."
    )


class NextQuery(serializers.Serializer):
    goal = Text(
        max_length=200,
        required=False,
        help_text="A skill id of the course: work towards that skill (and "
        "what it builds on) instead of the course's goals.",
    )


class MasteryOut(serializers.Serializer):
    learner = serializers.CharField(help_text="Learner id.")
    mean = serializers.FloatField(
        allow_null=True, help_text="Mean over the course's skills (skills not yet estimated count as 0); the LTI grade."
    )
    mastery = SkillMastery(
        many=True, help_text="One entry per skill the model estimates; empty before the learner's first answer."
    )
    at = serializers.DateTimeField(allow_null=True, help_text="The moment asked for with `?at=`, or null.")
    forecast = serializers.DictField(
        child=serializers.FloatField(),
        allow_null=True,
        help_text="Skill id -> P(known) at `at` with no practice until then: "
        "forgetting for models that have it (psikt), the current "
        "mastery for the others; null without `?at=`.",
    )
    traits = serializers.DictField(
        help_text="The learner's latent traits with uncertainty under the active "
        'model, e.g. psikt\'s {"alpha": {"mean": .., "sd": ..}}; '
        "{} for models without traits."
    )
    traits_words = serializers.ListField(
        child=serializers.CharField(),
        help_text='The traits a teacher can act on in plain words, with how sure the model is, e.g. "learns fast '
        '(likely: 80%)"; [] for models without traits.',
    )
    traits_source = serializers.ChoiceField(
        choices=["learner", "fit", "population"],
        allow_null=True,
        help_text="`learner`: re-inferred from the learner's own answers (`traits_answers` of them) after each "
        "burst of answers; `fit`: the active fit's estimate from the answers it was fitted on or absorbed; "
        "`population`: the class's typical traits, for a learner the model has no answers of yet; null for "
        "models whose traits are not re-inferred (hbkt) or that have none.",
    )
    traits_answers = serializers.IntegerField(help_text="Answers the learner's re-inferred traits rest on (0 if none).")
    mastery_pending = serializers.BooleanField(
        help_text="true while answers of this learner that a file import stored are not in `mastery` yet: the "
        "import refreshes its learners' mastery in batches once it has committed (and a periodic sweep finishes "
        "what an interrupted one left); answers recorded through the API are always in it."
    )


class NextOut(serializers.Serializer):
    learner = serializers.CharField(help_text="Learner id.")
    item = serializers.CharField(allow_null=True, help_text="The item to present next; null when done.")
    skill = serializers.CharField(allow_null=True, help_text="The skill it was chosen for.")
    why = serializers.CharField(
        help_text="`frontier` (next skill whose prerequisites are mastered), `review` "
        "(forgotten), `remediation` (a struggling skill's prerequisite), "
        "`confirm` (P(known) high on fewer answers than the course's "
        "`min_answers`, or none above the easiest level) or `done`."
    )
    p_correct = serializers.FloatField(allow_null=True, help_text="P(the learner answers it correctly).")
    expected_gain = serializers.FloatField(allow_null=True, help_text="Expected mastery gain from answering it.")
    mastery = serializers.FloatField(allow_null=True, help_text="P(known) of the skill now.")
    struggling = serializers.CharField(allow_null=True, help_text="The skill that prompted a remediation.")
    done = serializers.BooleanField(help_text="True when every goal skill is mastered.")
    goals_mastered = serializers.IntegerField(help_text="Goal skills mastered.")
    goals_total = serializers.IntegerField(help_text="Goal skills in all.")
    body = serializers.CharField(allow_null=True, help_text="The item's question text, if authored.")
    choices = serializers.ListField(
        child=serializers.CharField(), allow_null=True, help_text="The item's options, or null for a typed answer."
    )


class PredictIn(serializers.Serializer):
    learner = Text(max_length=200, help_text="Learner id; one with no answers yet is scored from the model's prior.")
    items = serializers.ListField(
        child=Text(max_length=200),
        min_length=1,
        max_length=MAX_PREDICT_ITEMS,
        help_text="Item ids to score (at most 1000).",
    )
    at = serializers.DateTimeField(
        required=False, help_text="Predict as of this time (default now); matters for models with forgetting."
    )


class Prediction(serializers.Serializer):
    item = serializers.CharField(help_text="Item id.")
    p_correct = serializers.FloatField(
        allow_null=True, help_text="P(correct) if answered next; null when the active model does not know the item yet."
    )


class PredictOut(serializers.Serializer):
    learner = serializers.CharField(help_text="Learner id.")
    predictions = Prediction(many=True, help_text="One entry per requested item, in request order.")


class FitCreate(serializers.Serializer):
    """The body of POST fits, as parsed; the model's parameters are checked by ``fit_params_check``."""

    model = Text(
        max_length=32,
        help_text="Model kind: " + ", ".join(sorted(ESTIMATORS)) + " (the kinds installed when the schema was built).",
    )
    params = serializers.DictField(
        required=False, default=dict, help_text="Hyper-parameters for the model (its constructor's keywords)."
    )


def _fit_request_shape(kind: str) -> type[serializers.Serializer]:
    """For the schema only: the body of POST fits for one model kind, its parameters with their bounds."""
    declared = estimator_params(kind)
    params = extend_schema_field(declared.schema())(type(f"FitParams{kind.capitalize()}", (serializers.JSONField,), {}))
    return type(
        f"FitCreate{kind.capitalize()}",
        (serializers.Serializer,),
        {
            "__doc__": f"A fit of a `{kind}` model.",
            "model": serializers.ChoiceField(choices=[kind], help_text="Model kind."),
            "params": params(
                required=False,
                help_text=f"Hyper-parameters of `{kind}`, each within its bounds "
                "(others are refused with 400); absent ones take their default.",
            ),
        },
    )


FIT_REQUEST_SHAPES = {kind: _fit_request_shape(kind) for kind in sorted(ESTIMATORS)}


class FitOut(serializers.Serializer):
    id = serializers.IntegerField(help_text="Fit number.")
    model = serializers.CharField(source="kind", help_text="Model kind.")
    params = serializers.JSONField(help_text="Hyper-parameters requested.")
    status = serializers.ChoiceField(choices=["queued", "running", "succeeded", "failed"], help_text="Where it is.")
    active = serializers.BooleanField(help_text="True for the fit that now serves mastery and predictions.")
    stage = serializers.CharField(help_text="What it is doing now (loading, fitting, evaluating, activating, done).")
    progress = serializers.FloatField(help_text="Fraction done, 0 to 1.")
    metrics = serializers.JSONField(
        help_text="Held-out metrics: next-step (AUC, RMSE, log-loss, accuracy) and "
        "multi-step; empty with fewer than 5 learners."
    )
    snapshot = serializers.JSONField(help_text="What the fit saw: interactions, learners, items, skills.")
    timings = serializers.JSONField(help_text="Seconds per phase and peak memory.")
    error = serializers.CharField(help_text="Why it failed (empty otherwise).")
    time_limit = serializers.IntegerField(
        allow_null=True,
        help_text="Seconds one attempt may run: grows with the course's answers; past it the fit fails.",
    )
    created_at = serializers.DateTimeField(help_text="When it was requested.")
    started_at = serializers.DateTimeField(allow_null=True, help_text="When a worker started it.")
    finished_at = serializers.DateTimeField(allow_null=True, help_text="When it ended.")
    erased_learners = serializers.IntegerField(
        help_text="Learners this fit was trained on who have since been erased (0: none). The model may still "
        "carry what it learned from their answers; a new fit, once active, does not."
    )
    erased_at = serializers.DateTimeField(allow_null=True, help_text="When the last of them was erased.")
    parent = serializers.IntegerField(
        source="parent_id",
        allow_null=True,
        help_text="Set on an absorb (continual learning): the fit whose model this one extends with the answers "
        "since, without a refit; its metrics say what was absorbed and carry the parent's held-out metrics.",
    )


class XapiStatements(serializers.Serializer):
    """The body of POST xapi/statements: one statement or a list (mapped by tutor.api.xapi)."""

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        if isinstance(data, dict):
            return {"statements": [data]}
        if isinstance(data, list) and data:
            if len(data) > MAX_STATEMENTS:
                raise ServiceError(
                    f"at most {MAX_STATEMENTS} statements per request, got {len(data)}", code="batch_too_large"
                )
            return {"statements": data}
        raise serializers.ValidationError(
            {
                "non_field_errors": [
                    serializers.ErrorDetail(
                        "the body must be one xAPI statement or a non-empty list of them", code="invalid_type"
                    )
                ]
            }
        )


class XapiResult(serializers.Serializer):
    index = serializers.IntegerField(help_text="Position of the statement in the request.")
    id = serializers.CharField(allow_null=True, help_text="The statement id, or null.")
    status = serializers.ChoiceField(
        choices=["created", "duplicate", "ignored"], help_text="`ignored` for verbs other than answered."
    )
    interaction = serializers.IntegerField(allow_null=True, help_text="The stored interaction (null if ignored).")
    reason = serializers.CharField(required=False, help_text="Why it was ignored.")


class XapiOut(serializers.Serializer):
    created = serializers.IntegerField(help_text="Interactions stored by this request.")
    duplicates = serializers.IntegerField(help_text="Statements already stored (same statement id).")
    ignored = serializers.IntegerField(help_text="Statements with another verb than answered.")
    results = XapiResult(many=True, help_text="One entry per statement, in request order.")
    mastery = MasteryMap(help_text="Mastery of every learner named after these answers.")


class XapiStatementDoc(serializers.Serializer):
    """For the schema only: the parts of an xAPI statement the mapping reads."""

    id = serializers.CharField(required=False, help_text="Statement id (UUID): the idempotency key.")
    actor = serializers.JSONField(help_text="Agent: account.name, else mbox, mbox_sha1sum or openid names the learner.")
    verb = serializers.JSONField(help_text="Only id http://adlnet.gov/expapi/verbs/answered is recorded.")
    object = serializers.JSONField(
        help_text="Activity: its id (IRI) is matched to an item by full IRI, then by fragment or last path segment."
    )
    result = serializers.JSONField(
        required=False, help_text="score.scaled (negative counts as 0) or success; optional duration and response."
    )
    timestamp = serializers.DateTimeField(required=False, help_text="When it happened (default now).")


def rows_of(validated: dict[str, Any]) -> list[Row]:
    return validated["rows"]


class LearnerPath(serializers.Serializer):
    learner = serializers.CharField(max_length=200, help_text="The learner's id in your system.")


class EnrolmentIn(serializers.Serializer):
    user = serializers.CharField(
        max_length=150,
        help_text="The username of an account on this server (e.g. one "
        "staff created); it practises the course as this learner.",
    )


class EnrolmentOut(serializers.Serializer):
    course = serializers.CharField(source="course.slug", help_text="The course id.")
    learner = serializers.CharField(source="learner.external_id", help_text="The learner the account practises as.")
    user = serializers.CharField(source="user.get_username", help_text="The account's username.")
    source = serializers.ChoiceField(
        choices=["lti", "staff", "api", "open"],
        help_text="How the enrolment was made: an LTI launch, staff, the API, or the "
        "user opening a course open to all.",
    )
    created_at = serializers.DateTimeField(help_text="When the account was enrolled.")


class EraseQuery(serializers.Serializer):
    confirm = serializers.CharField(
        max_length=200,
        required=False,
        default=None,
        help_text="The learner's id again: an erasure without it is refused (400 `confirmation_required`).",
    )


class ErasureOut(serializers.Serializer):
    course = serializers.CharField(source="course_slug", help_text="The course id.")
    learner_number = serializers.IntegerField(help_text="The erased learner's former row number.")
    learner_digest = serializers.CharField(
        help_text="HMAC-SHA256 (keyed by the server's secret) of the course and "
        "the learner's id: the audit record's only trace of who it was."
    )
    actor = serializers.CharField(help_text="Who erased: the API key's prefix and name, or a staff username.")
    via = serializers.CharField(help_text="api, dashboard or command.")
    account_deleted = serializers.BooleanField(
        help_text="The learner's account was deleted too (it belonged to no other course and had no staff rights)."
    )
    counts = serializers.DictField(
        child=serializers.IntegerField(), help_text="Rows deleted per table (app_label.Model), and fits marked."
    )
    erased_at = serializers.DateTimeField(help_text="When.")


class ExportQuery(serializers.Serializer):
    fit = serializers.IntegerField(
        min_value=1, required=False, help_text="parameters.csv only: this fit's parameters instead of the active fit's."
    )


class LearnerExport(serializers.Serializer):
    """The access-request document (tutor.privacy.learner_export)."""

    course = serializers.CharField(help_text="The course id.")
    learner = serializers.CharField(help_text="The learner's id in the course.")
    created_at = serializers.DateTimeField(help_text="When the learner was first stored.")
    goal = serializers.CharField(help_text="The skill they chose to work towards (empty: the course's goals).")
    accounts = serializers.ListField(
        child=serializers.DictField(),
        help_text="The accounts that practise as this learner: username, names, email, dates.",
    )
    enrolments = serializers.ListField(child=serializers.DictField(), help_text="Their enrolments, in every course.")
    interactions = serializers.ListField(child=serializers.DictField(), help_text="Every answer, oldest first.")
    mastery = serializers.ListField(child=serializers.DictField(), help_text="P(known) per skill.")
    traces = serializers.ListField(child=serializers.DictField(), help_text="The models' stored state per fit.")
    lti = serializers.DictField(help_text="LMS identities (users) and grade targets.")
    exported_at = serializers.DateTimeField(help_text="When this document was made.")
