"""manage.py apikey_create --course SLUG --name NAME [--rate 6000/min]  (or --global for an admin key)."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError, CommandParser

from core.errors import ServiceError
from curriculum.services import course_get
from tutor.keys import api_key_create


class Command(BaseCommand):
    help = (
        "Create an API key for one course (or, with --global, for every course and for creating courses). "
        "The key is printed once; only its hash is stored."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        scope = parser.add_mutually_exclusive_group(required=True)
        scope.add_argument("--course", help="slug of the one course the key reaches")
        scope.add_argument("--global", dest="is_global", action="store_true", help="a key for all courses")
        parser.add_argument("--name", required=True, help="who uses the key, e.g. 'Moodle production'")
        parser.add_argument("--rate", default="", help="this key's rate, e.g. 6000/min (default: TUTOR_API_RATE)")

    def handle(self, *args, course: str | None, is_global: bool, name: str, rate: str, **options) -> None:
        try:
            course_object = None if is_global else course_get(slug=course or "")
            key, raw = api_key_create(name=name, course=course_object, rate=rate)
        except ServiceError as error:  # NotFound is one
            raise CommandError(error.message) from None
        self.stderr.write(
            f"API key {key.prefix} for {course_object.slug if course_object else 'all courses'} "
            f"({name}); copy it now, it is not shown again:"
        )
        self.stdout.write(raw)
