"""Course, keys and clients for the API, LTI and xAPI tests, built through the services."""

from __future__ import annotations

from rest_framework.test import APIClient

from curriculum.services import course_create, curriculum_import
from tutor.keys import api_key_create

CURRICULUM = {
    "skills": [
        {"id": "count", "name": "Counting"},
        {"id": "add", "name": "Adding"},
        {"id": "frac-add", "name": "Adding fractions"},
    ],
    "items": [
        {"id": "q1", "skills": ["count"], "body": "3 + 0 = ?", "answer": "3"},
        {"id": "q2", "skills": ["add"], "body": "2 + 2 = ?", "answer": "4"},
        {"id": "q3", "skills": ["add"], "body": "5 + 3 = ?", "answer": "8", "choices": ["7", "8", "9"]},
        {"id": "q17", "skills": ["frac-add", "add"], "body": "1/2 + 1/3 = ?", "answer": "5/6"},
    ],
    "prerequisites": [{"from": "count", "to": "add"}, {"from": "add", "to": "frac-add"}],
}


def course_with_curriculum(slug: str):
    course = course_create(slug=slug, name=slug.title())
    curriculum_import(course=course, document=CURRICULUM)
    return course


def client_for(raw_key: str | None) -> APIClient:
    client = APIClient()
    if raw_key is not None:
        client.credentials(HTTP_AUTHORIZATION=f"Token {raw_key}")
    return client


def key_for(course, name: str = "test") -> str:
    return api_key_create(name=name, course=course)[1]
