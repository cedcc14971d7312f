"""manage.py import_interactions --course SLUG --format {dkvmn,pybkt,csv,dbe} FILE..."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from core.errors import ServiceError
from core.sql import queries_unlogged
from tracing.formats import FORMATS, FormatError
from tutor.actions import answers_import


class Command(BaseCommand):
    help = (
        "Import interaction files into a course (created if missing), with the skills and items they name. "
        "Each file is all or nothing; re-importing a file adds nothing."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("files", nargs="+", type=Path)
        parser.add_argument("--course", required=True, help="course slug (created when missing)")
        parser.add_argument("--format", required=True, choices=FORMATS)
        parser.add_argument("--name", default="", help="course name when the course is created")
        parser.add_argument("--no-progress", action="store_true", help="no progress bar")

    def handle(
        self, *args, files: list[Path], course: str, format: str, name: str, no_progress: bool, **options
    ) -> None:
        for path in files:
            if not path.is_file():
                raise CommandError(f"{path}: no such file")
        for path in files:
            with tqdm(desc=path.name, unit=" rows", disable=no_progress or None, file=self.stderr._out) as bar:
                try:
                    with queries_unlogged():
                        summary = answers_import(
                            course_slug=course, course_name=name, path=path, format=format, on_rows=bar.update
                        )
                except FormatError as error:
                    raise CommandError(f"{error} (nothing of {path.name} was imported)") from None
                except ServiceError as error:
                    raise CommandError(f"{path}: {error.message} (nothing of {path.name} was imported)") from None
            self.stdout.write(
                f"{path.name}: {summary['created']} interactions added, {summary['duplicates']} already present, "
                f"{summary['learners_created']} new learners, {summary['items_created']} new items, "
                f"{summary['skills_created']} new skills, mastery updated for {summary['mastery_updated']} learners"
            )
