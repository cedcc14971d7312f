"""manage.py fit --course SLUG --model KIND [--params JSON]: queue a fit (without a broker it runs here,
before the command ends)."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError, CommandParser

from core.errors import ServiceError
from core.sql import queries_unlogged
from core.validation import json_loads
from curriculum.services import course_get
from tracing.estimators import ESTIMATORS
from tutor.actions import fit_start


class Command(BaseCommand):
    help = "Fit a model to a course's interactions; it becomes active only if it succeeds."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--course", required=True)
        parser.add_argument("--model", required=True, choices=sorted(ESTIMATORS))
        parser.add_argument("--params", default="{}", help="hyper-parameters as JSON, e.g. '{\"forgets\": true}'")

    def handle(self, *args, course: str, model: str, params: str, **options) -> None:
        try:
            parsed = json_loads(params)
        except ValueError as error:
            raise CommandError(f"--params is not JSON: {error}") from None
        try:
            # inline: without a broker a background thread would die with this command's process.
            with queries_unlogged():
                fit = fit_start(course=course_get(slug=course), kind=model, params=parsed, inline=True)
        except ServiceError as error:
            raise CommandError(error.message) from None
        self.stdout.write(
            json.dumps(
                {
                    "id": fit.pk,
                    "status": fit.status,
                    "metrics": fit.metrics,
                    "timings": fit.timings,
                    "error": fit.error,
                },
                indent=2,
            )
        )
        if fit.status == "failed":
            raise CommandError(f"fit {fit.pk} failed: {fit.error}")
