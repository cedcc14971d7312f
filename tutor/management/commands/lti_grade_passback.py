"""manage.py lti_grade_passback --course SLUG [--learner ID]: send mastery grades to the LMS now."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError, CommandParser

from core.errors import NotFound
from curriculum.services import course_get
from tutor.lti.models import LtiGradeTarget
from tutor.lti.services import lti_grade_passback
from tutor.models import Learner


class Command(BaseCommand):
    help = "Post every LTI learner's mean mastery of a course to their LMS gradebook (e.g. after a new fit)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--course", required=True, help="course slug")
        parser.add_argument("--learner", help="only this learner id")

    def handle(self, *args, course: str, learner: str | None, **options) -> None:
        try:
            course_object = course_get(slug=course)
        except NotFound as error:
            raise CommandError(error.message) from None
        ids = LtiGradeTarget.objects.filter(learner__course=course_object).values_list("learner_id", flat=True)
        learners = Learner.objects.select_related("course").filter(pk__in=ids).order_by("external_id")
        if learner is not None:
            learners = learners.filter(external_id=learner)
        sent = failed = 0
        for each in learners:
            for outcome in lti_grade_passback(learner=each):
                sent += outcome.ok
                failed += not outcome.ok
                if not outcome.ok:
                    self.stderr.write(f"{each.external_id}: {outcome.error}")
        self.stdout.write(f"{sent} grades sent, {failed} failed")
        if failed:
            raise CommandError(f"{failed} grade(s) could not be sent")
