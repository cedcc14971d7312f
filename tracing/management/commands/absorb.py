"""manage.py absorb [--course SLUG]: fold the answers stored since each course's active psikt fit into it
without a refit (continual learning; celery beat does this every TRACING_ABSORB_EVERY seconds where a broker
runs, and this command is the way without one, e.g. from cron)."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandParser

from core.sql import queries_unlogged
from curriculum.management.options import courses_option
from tracing.tasks import fits_absorb


class Command(BaseCommand):
    help = "Absorb new learners and answers into each course's active psikt fit, as a new fit; no refit."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--course", help="only this course (default: every course with an active fit)")

    def handle(self, *args, course: str | None, **options) -> None:
        courses = courses_option(course)
        # inline: without a broker a background thread would die with this command's process.
        with queries_unlogged():
            fits = fits_absorb(courses=courses, inline=True)
        self.stdout.write(
            json.dumps(
                [{"id": fit.pk, "status": fit.status, "metrics": fit.metrics, "error": fit.error} for fit in fits],
                indent=2,
            )
        )
