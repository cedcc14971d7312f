"""manage.py import_curriculum FILE.json [--course SLUG]"""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from core.errors import ServiceError
from core.validation import json_loads
from curriculum.services import course_from_document, curriculum_import


class Command(BaseCommand):
    help = (
        "Import a curriculum document (skills, items, prerequisites) into a course, created from the "
        'document\'s "course" field when missing. All or nothing; re-importing adds nothing.'
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path)
        parser.add_argument("--course", default=None, help="course slug (default: the document's course.id)")

    def handle(self, *args, file: Path, course: str | None, **options) -> None:
        try:
            document = json_loads(file.read_text(encoding="utf-8"))
        except OSError as error:
            raise CommandError(f"{file}: {error.strerror or error}") from None
        except ValueError as error:  # not UTF-8, not JSON, or JSON the API would refuse too (NaN, a lone surrogate)
            raise CommandError(f"{file}: not valid JSON: {error}") from None
        try:
            with transaction.atomic():
                target, created = course_from_document(document=document, slug=course)
                summary = curriculum_import(course=target, document=document)
        except ServiceError as error:
            raise CommandError(f"{file}: {error.message} (nothing was imported)") from None
        parts = [
            f"{kind}: " + ", ".join(f"{count} {what}" for what, count in counts.items())
            for kind, counts in summary.items()
            if isinstance(counts, dict)
        ]
        self.stdout.write(f"course {target.slug}{' (created)' if created else ''}; " + "; ".join(parts))
