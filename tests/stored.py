"""What a course's learners have stored, for tests that compare two ways of writing it."""

from __future__ import annotations

from tracing.models import LearnerTrace, Mastery


def mastery_and_traces(course) -> tuple[list, list]:
    """Every (learner, skill, probability, fit) mastery row and (learner, fit, state) trace of the course,
    sorted."""
    mastery = Mastery.objects.filter(learner__course=course).values_list(
        "learner_id", "skill_id", "probability", "fit_id"
    )
    traces = LearnerTrace.objects.filter(learner__course=course).values_list("learner_id", "fit_id", "state")
    return sorted(mastery), sorted(traces)
