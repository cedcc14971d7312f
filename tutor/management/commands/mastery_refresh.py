"""manage.py mastery_refresh [--course SLUG]: finish the mastery refresh of learners a file import left
marked pending (an import refreshes its learners once it has committed; this catches one whose process
ended first). celery beat does it every TUTOR_PENDING_SWEEP_EVERY seconds where a broker runs; this command
is the way without one, e.g. from cron."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandParser

from core.sql import queries_unlogged
from curriculum.management.options import courses_option
from tutor.actions import mastery_pending_sweep


class Command(BaseCommand):
    help = "Refresh the mastery of every learner whose imported answers it does not include yet."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--course", help="only this course (default: every course with such learners)")

    def handle(self, *args, course: str | None, **options) -> None:
        courses = courses_option(course)
        with queries_unlogged():
            refreshed = mastery_pending_sweep(courses=courses)
        self.stdout.write(json.dumps({"mastery_updated": refreshed}, indent=2))
