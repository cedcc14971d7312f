"""JSON parsing that refuses what would otherwise crash further in: huge bodies, deep nesting, NUL."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

from tutor.api.exceptions import PayloadTooLarge


def _has_nul(document: Any) -> bool:
    # PostgreSQL text cannot hold NUL: refuse it here rather than fail at the database.
    stack = [document]
    while stack:
        value = stack.pop()
        if isinstance(value, str):
            if "\x00" in value:
                return True
        elif isinstance(value, dict):
            stack.extend(value.keys())
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
    return False


class BoundedJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None) -> Any:
        request = (parser_context or {}).get("request")
        limit = settings.TUTOR_API_MAX_BODY_BYTES
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0) if request is not None else 0
        except ValueError:
            length = 0
        if length > limit:
            raise PayloadTooLarge(f"the request body has {length} bytes; at most {limit} are accepted "
                                  f"(send a large batch as several requests)")
        try:
            document = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError("the JSON is nested too deeply", code="malformed_json") from None
        if _has_nul(document):
            raise ParseError("NUL characters (\\u0000) are not accepted in strings", code="invalid_character")
        return document
