"""manage.py learner_export --course SLUG --learner ID [--out FILE]: everything held about one learner, as JSON."""

from __future__ import annotations

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from core.errors import ServiceError
from curriculum.services import course_get
from tutor.privacy import learner_export


class Command(BaseCommand):
    help = "Export everything held about one learner (an access request) as one JSON document."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--course", required=True, help="the course's slug")
        parser.add_argument("--learner", required=True, help="the learner's id in the course")
        parser.add_argument("--out", type=Path, help="write here instead of standard output")

    def handle(self, *args, course: str, learner: str, out: Path | None, **options) -> None:
        try:
            document = learner_export(course=course_get(slug=course), external_id=learner)
        except ServiceError as error:
            raise CommandError(error.message) from None
        text = json.dumps(document, indent=2, ensure_ascii=False)
        if out is None:
            self.stdout.write(text)
        else:
            out.write_text(text + "\n", encoding="utf-8")
