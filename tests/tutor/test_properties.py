"""Property-based: arbitrary JSON, and arbitrary values in every known field, sent to every write endpoint.

Whatever arrives, the answer is never a 5xx, and after any 4xx nothing is stored (rows of every table a
write can touch, and the course's policy, are counted before and after). Accepted fits are queued but
not run: the test's transaction never commits, so the on-commit enqueue never fires.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta, timezone

import pytest
from django.urls import reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from curriculum.models import Course, Item, Prerequisite, Skill
from tests.tutor.api_support import client_for, course_with_curriculum, key_for
from tracing.models import Fit, Mastery
from tutor.api.xapi import ANSWERED
from tutor.keys import api_key_create
from tutor.models import Interaction, Learner

pytestmark = pytest.mark.django_db
EXAMPLES = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)

# Text with what broke the hand-written validators: lone surrogates, NUL, long strings.
characters = st.one_of(st.characters(), st.characters(categories=["Cs"]), st.just("\x00"))
text = st.text(characters, max_size=40) | st.sampled_from(["", " ", "q1", "u1", "x" * 201, "x" * 2001])
numbers = st.one_of(
    st.integers(),
    st.integers(min_value=10**18, max_value=10**400),
    st.integers(max_value=-(10**18)),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, 1, 0.5, -1, 1e20, 1e300, -0.0]),
)
scalars = st.one_of(st.none(), st.booleans(), numbers, text)
any_json = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4), max_leaves=12
)
moments = st.one_of(
    st.datetimes(
        min_value=datetime(1, 1, 2),
        max_value=datetime(9999, 12, 30),
        timezones=st.sampled_from(
            [
                UTC,
                timezone(timedelta(hours=-5)),
                timezone(timedelta(hours=14)),
                timezone(timedelta(hours=-23, minutes=59)),
            ]
        ),
    ).map(datetime.isoformat),
    st.sampled_from(
        [
            "9999-12-31T23:00:00-05:00",
            "0001-01-01T00:30:00+01:00",
            "2026-11-25T10:00:00Z",
            "2026-11-25",
            "1970-01-01T00:00:00Z",
            "now",
        ]
    ),
    numbers,
)


def hostile(*special) -> st.SearchStrategy:
    """Anything at all for one field, with the values that once got a 500 weighted in."""
    return st.one_of(any_json, *(st.sampled_from(values) for values in special if values))


def mutated(valid: dict, fields: dict[str, st.SearchStrategy]) -> st.SearchStrategy:
    """``valid`` with one to three of its fields (dotted paths reach nested ones) replaced or removed: every
    other field stays well-formed, so a request gets as far as the validator of the field at hand."""

    @st.composite
    def build(draw):
        body = json.loads(json.dumps(valid))
        for path in draw(st.lists(st.sampled_from(sorted(fields)), min_size=1, max_size=3, unique=True)):
            *parents, name = path.split(".")
            holder = body
            try:
                for parent in parents:
                    holder = holder[int(parent)] if isinstance(holder, list) else holder[parent]
            except (KeyError, IndexError, TypeError, ValueError):
                continue  # a parent was already replaced by something else
            if not isinstance(holder, dict):
                continue
            if draw(st.integers(0, 9)) == 0:
                holder.pop(name, None)
            else:
                holder[name] = draw(fields[path])
        return body

    return build()


SURROGATE, HUNDREDS = "\ud800", 10**300
texts = ["u1\ud800", "\udfff", "x\x00", "x" * 201, 12, 12.0, True, None, ""]
interaction = mutated(
    {
        "id": "a",
        "learner": "u1",
        "item": "q1",
        "correct": 1,
        "timestamp": "2026-11-25T10:00:00Z",
        "response_time": 3.5,
        "response": "4",
    },
    {
        "id": hostile(texts),
        "learner": hostile(texts),
        "item": hostile(texts, ["q2", "nope"]),
        "correct": hostile([HUNDREDS, 1e300, -0.0, 0.5, 2]),
        "timestamp": moments,
        "response_time": hostile([HUNDREDS, 1e300, -1]),
        "response": hostile(texts, ["x" * 2001]),
    },
)
statement = mutated(
    {
        "id": "s1",
        "actor": {"account": {"name": "u1"}, "mbox": "mailto:u@x.org"},
        "verb": {"id": ANSWERED},
        "object": {"id": "http://x.org/q1"},
        "result": {"score": {"scaled": 0.5}, "success": True, "duration": "PT1M", "response": "4"},
        "timestamp": "2026-11-25T10:00:00Z",
    },
    {
        "id": hostile(texts),
        "actor": hostile(),
        "actor.account.name": hostile(texts),
        "actor.mbox": hostile(texts),
        "verb": hostile(),
        "verb.id": hostile([ANSWERED + "x"]),
        "object.id": hostile(["http://x.org/a%00b", "%ED%A0%80", "http://x.org/nope", "#"]),
        "result": hostile(),
        "result.score.scaled": hostile([HUNDREDS, 1e300, -2, 1]),
        "result.duration": hostile(["P99999999999999D", "PT", "PT1e400S"]),
        "result.response": hostile(texts),
        "timestamp": moments,
    },
)
curriculum = mutated(
    {
        "skills": [{"id": "new", "name": "New", "description": "d"}],
        "items": [
            {
                "id": "q9",
                "skills": ["new", "add"],
                "body": "b",
                "answer": "a",
                "choices": ["a", "b"],
                "answer_format": "simplest",
                "explanation": "e",
                "difficulty": 3,
            }
        ],
        "prerequisites": [{"from": "add", "to": "new"}],
        "policy": {
            "threshold": 0.9,
            "band": [0.5, 0.8],
            "goals": ["add"],
            "review": True,
            "struggle_window": 5,
            "struggle_errors": 3,
            "avoid_recent": 2,
            "review_after_days": 1.5,
        },
    },
    {
        "skills": hostile(),
        "items": hostile(),
        "prerequisites": hostile(),
        "policy": hostile(),
        "skills.0.id": hostile(texts),
        "skills.0.name": hostile(texts),
        "items.0.id": hostile(texts),
        "items.0.skills": hostile([["nope"], [SURROGATE]]),
        "items.0.body": hostile(texts),
        "items.0.choices": hostile([[SURROGATE], [1, 2], []]),
        "items.0.difficulty": hostile([HUNDREDS, 1e300, -1]),
        "items.0.answer_format": hostile(texts),
        "prerequisites.0.from": hostile(texts, ["new"]),
        **{
            f"policy.{name}": hostile([HUNDREDS, 1e300, -1, 10**12, "0.9", [1, 2]])
            for name in (
                "threshold",
                "band",
                "goals",
                "struggle_window",
                "struggle_errors",
                "avoid_recent",
                "review_after_days",
                "review",
            )
        },
    },
)
fit = mutated(
    {"model": "rate", "params": {}},
    {
        "model": hostile(["bkt", "nope", SURROGATE]),
        "params": hostile([{SURROGATE: 1}, {"x" * 100: 1}]),
        "params.seed": hostile([HUNDREDS, 1e300]),
        "params.restarts": hostile([HUNDREDS, 1e300]),
        "params.forgets": hostile(),
    },
)
predict = mutated(
    {"learner": "u1", "items": ["q1", "q2"], "at": "2026-11-25T10:00:00Z"},
    {
        "learner": hostile(texts, ["nobody"]),
        "items": hostile([[SURROGATE], [12]]),
        "items.0": hostile(texts),
        "at": moments,
    },
)
course = mutated(
    {"id": "c-one", "name": "One", "description": "d"},
    {"id": hostile(texts, ["c-two", "Bad Slug"]), "name": hostile(texts), "description": hostile(texts)},
)


def bodies(shaped: st.SearchStrategy) -> st.SearchStrategy:
    """What a client may send: the shaped object, a list of them, any JSON at all, or bytes that are not JSON."""
    return st.one_of(
        shaped,
        shaped,
        shaped,
        st.lists(shaped, max_size=4),
        any_json,
        st.binary(max_size=30),
        st.sampled_from([b"", b"{", b"[]", b"\xff\xfe", b"1e999999"]),
    )


def encoded(body) -> bytes:
    # allow_nan and ensure_ascii: NaN/Infinity and lone surrogates (as \ud800 escapes) reach the server.
    return body if isinstance(body, bytes) else json.dumps(body, allow_nan=True).encode()


def stored(course_pk: int | None = None) -> tuple:
    tables = (Course, Skill, Item, Prerequisite, Learner, Interaction, Fit, Mastery, Item.skills.through)
    policies = tuple(Course.objects.order_by("pk").values_list("policy", flat=True))
    return (*(table.objects.count() for table in tables), policies)


@pytest.fixture
def target(settings):
    settings.TUTOR_API_RATE = "100000/min"  # the throttle is not under test here
    course = course_with_curriculum("props")
    client = client_for(key_for(course))
    client.post(
        "/api/v1/courses/props/interactions",
        [{"id": "seed", "learner": "u1", "item": "q1", "correct": 1}],
        format="json",
    )
    return client


def check(client, path: str, body) -> None:
    before = stored()
    response = client.generic("POST", path, encoded(body), content_type="application/json")
    assert response.status_code < 500, (path, body, response.content[:300])
    if response.status_code >= 400:
        assert response["Content-Type"].startswith("application/json"), response.content[:300]
        payload = response.json()
        assert isinstance(payload.get("code"), str) and isinstance(payload.get("message"), str), payload
        assert stored() == before, (path, body, response.content[:300])


@EXAMPLES
@given(body=bodies(interaction))
def test_interactions(target, body):
    check(target, "/api/v1/courses/props/interactions", body)


@EXAMPLES
@given(body=bodies(statement))
def test_xapi_statements(target, body):
    check(target, "/api/v1/courses/props/xapi/statements", body)


@EXAMPLES
@given(body=bodies(curriculum))
def test_curriculum(target, body):
    check(target, "/api/v1/courses/props/curriculum", body)


@EXAMPLES
@given(body=bodies(fit))
def test_fits(target, body):
    check(target, "/api/v1/courses/props/fits", body)


@EXAMPLES
@given(body=bodies(predict))
def test_predict(target, body):
    check(target, "/api/v1/courses/props/predict", body)


@EXAMPLES
@given(body=bodies(course))
def test_courses(target, body):
    admin = client_for(api_key_create(name="admin", course=None)[1])
    check(admin, "/api/v1/courses", body)


form_text = st.text(st.characters(exclude_categories=["Cs"]), max_size=60) | st.sampled_from(
    [
        "",
        "{}",
        '{"restarts": Infinity}',
        '{"restarts": NaN}',
        '{"\\ud800": 1}',
        "[1]",
        '{"restarts": 1e999}',
        '{"restarts": ' + "9" * 400 + "}",
        '{"seed": -1}',
    ]
)


@EXAMPLES
@given(model=st.sampled_from(["rate", "bkt", "nope", ""]), params=form_text | any_json.map(json.dumps))
def test_dashboard_fit_form(client, staff_user, target, model, params):
    client.force_login(staff_user)
    before = stored()
    response = client.post(reverse("dashboard_fits", args=["props"]), {"model": model, "params": params})
    assert response.status_code < 500, (model, params)
    if response.status_code >= 400:
        assert stored() == before


@settings(
    max_examples=100,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(response=form_text, forged=st.booleans())
def test_learner_answer_form(client, learner_user, target, response, forged):
    client.force_login(learner_user)
    page = client.get(reverse("learn", args=["props"])).content.decode()
    shown = re.search(r'name="token" value="([^"]+)"', page)
    token = shown.group(1) if shown else "none"  # a learner who mastered the small course gets no question
    before = Interaction.objects.count()
    answered = client.post(
        reverse("learn_answer", args=["props"]), {"token": token[::-1] if forged else token, "response": response}
    )
    assert answered.status_code < 500, response
    if answered.status_code >= 400:
        assert Interaction.objects.count() == before
    else:
        assert Interaction.objects.count() <= before + 1
