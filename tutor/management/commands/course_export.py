"""manage.py course_export --course SLUG --export NAME [--out FILE]
   manage.py course_export --course SLUG --lrs URL [--lrs-user U --lrs-password P]

A course's interactions, mastery or fitted parameters as CSV, or its interactions as xAPI statements
(JSON lines), to a file or standard output; or its statements posted to a learning record store."""

from __future__ import annotations

import os
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from core.errors import ServiceError
from curriculum.services import course_get
from tutor.exports import EXPORTS, export_stream, statements_post


class Command(BaseCommand):
    help = (
        "Export a course's data (streamed): interactions.csv, mastery.csv, parameters.csv or statements.jsonl "
        "to a file, or its xAPI statements to a learning record store (--lrs)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--course", required=True, help="the course's slug")
        target = parser.add_mutually_exclusive_group(required=True)
        target.add_argument("--export", choices=sorted(EXPORTS), help="which export to write")
        target.add_argument(
            "--lrs", metavar="URL", help="an LRS's statements resource, e.g. https://lrs.example/xapi/statements"
        )
        parser.add_argument("--out", type=Path, help="with --export: write here instead of standard output")
        parser.add_argument("--fit", type=int, help="with parameters.csv: this fit instead of the active one")
        parser.add_argument(
            "--lrs-user",
            default=os.environ.get("TUTOR_LRS_USER", ""),
            help="the LRS's basic-auth user (default: $TUTOR_LRS_USER)",
        )
        parser.add_argument(
            "--lrs-password",
            default=os.environ.get("TUTOR_LRS_PASSWORD", ""),
            help="its password (default: $TUTOR_LRS_PASSWORD; prefer it to the command line)",
        )

    def handle(
        self,
        *args,
        course: str,
        export: str | None,
        lrs: str | None,
        out: Path | None,
        fit: int | None,
        lrs_user: str,
        lrs_password: str,
        **options,
    ) -> None:
        try:
            course_object = course_get(slug=course)
            if lrs:
                sent = statements_post(course=course_object, endpoint=lrs, username=lrs_user, password=lrs_password)
                self.stderr.write(f"{sent} statements sent to {lrs}")
                return
            chunks = export_stream(course=course_object, name=export or "", fit=fit)
            if out is None:
                for chunk in chunks:
                    self.stdout.write(chunk, ending="")
                return
            with out.open("w", encoding="utf-8", newline="") as handle:
                for chunk in chunks:
                    handle.write(chunk)
        except ServiceError as error:
            raise CommandError(error.message) from None
