"""manage.py learner_erase --course SLUG --learner ID [--yes]: erase one learner (tutor.privacy.learner_erase)."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError, CommandParser

from core.errors import ServiceError
from curriculum.services import course_get
from tutor.models import Erasure
from tutor.privacy import learner_erase, learner_erase_preview


class Command(BaseCommand):
    help = (
        "Erase a learner: their answers, mastery, traces, LMS grade targets, enrolment, and their account "
        "where it belongs to no other course; leaves an audit record. Asks for the learner's id again "
        "unless --yes."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--course", required=True, help="the course's slug")
        parser.add_argument("--learner", required=True, help="the learner's id in the course")
        parser.add_argument("--yes", action="store_true", help="do not ask for confirmation")
        parser.add_argument("--by", default="", help="who asked, for the audit record (default: the command)")

    def handle(self, *args, course: str, learner: str, yes: bool, by: str, **options) -> None:
        try:
            course_object = course_get(slug=course)
            preview = learner_erase_preview(course=course_object, external_id=learner)
            self.stderr.write(
                f"Erasing learner {learner!r} of {course!r} deletes {preview['interactions']} answers, "
                f"{preview['mastery']} mastery rows, {preview['traces']} traces, "
                f"{preview['grade_targets']} LMS grade targets; accounts: "
                + (
                    ", ".join(f"{a['username']} ({'deleted' if a['deleted'] else 'kept'})" for a in preview["accounts"])
                    or "none"
                )
            )
            confirm = learner if yes else input("Type the learner's id to confirm: ").strip()
            erasure = learner_erase(
                course=course_object,
                external_id=learner,
                via=Erasure.COMMAND,
                by=f"management command{f' ({by})' if by else ''}",
                confirm=confirm,
            )
        except ServiceError as error:
            raise CommandError(error.message) from None
        self.stdout.write(
            json.dumps(
                {
                    "erasure": erasure.pk,
                    "learner_digest": erasure.learner_digest,
                    "account_deleted": erasure.account_deleted,
                    "counts": erasure.counts,
                }
            )
        )
