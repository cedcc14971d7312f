"""What several management commands read the same way."""

from __future__ import annotations

from django.core.management.base import CommandError

from core.errors import ServiceError
from curriculum.models import Course
from curriculum.services import course_get


def courses_option(slug: str | None) -> list[Course] | None:
    """The courses an optional ``--course SLUG`` names: that one, or None for every course the command
    finds work in; an unknown slug is a CommandError naming it."""
    if not slug:
        return None
    try:
        return [course_get(slug=slug)]
    except ServiceError as error:
        raise CommandError(error.message) from None
