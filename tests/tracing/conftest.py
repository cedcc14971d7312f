"""Fixtures shared by the tracing tests."""

import pytest

from curriculum.services import course_from_document, curriculum_import
from tutor.demo import demo_document, demo_history_simulate


@pytest.fixture
def demo(settings, tmp_path):
    """The demo course with 20 simulated learners x 25 answers, artifacts under the test's own folder."""
    settings.ARTIFACT_ROOT = tmp_path
    document = demo_document()
    course, _ = course_from_document(document=document)
    curriculum_import(course=course, document=document)
    demo_history_simulate(course=course, document=document, learners=20, answers=25)
    return course
