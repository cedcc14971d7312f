"""JSON parsing that refuses what would otherwise crash further in: huge bodies, deep nesting, NUL, lone
surrogates, NaN/Infinity and numbers no field can hold."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import BaseParser
from rest_framework.renderers import JSONRenderer

from core.validation import JSONRefused, json_loads
from tutor.api.exceptions import PayloadTooLarge


def _too_large(size: str, limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"the request body has {size} bytes; at most {limit} are accepted (send a large batch as several requests)"
    )


class BoundedJSONParser(BaseParser):
    """application/json, read from the stream at most TUTOR_API_MAX_BODY_BYTES at a time.

    Not a subclass of DRF's JSONParser on purpose: DRF hands that class ``request.body``, which Django
    reads whole and refuses beyond DATA_UPLOAD_MAX_MEMORY_SIZE with an HTML 400 before any parser runs.
    """

    media_type = "application/json"
    renderer_class = JSONRenderer

    def parse(self, stream, media_type=None, parser_context=None) -> Any:
        parser_context = parser_context or {}
        request = parser_context.get("request")
        limit = settings.TUTOR_API_MAX_BODY_BYTES
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0) if request is not None else 0
        except ValueError:
            length = 0
        if length > limit:
            raise _too_large(str(length), limit)
        # Content-Length may be absent or wrong: count what actually arrives, and stop one byte past the limit.
        body = stream.read(limit + 1) if stream is not None else b""
        if len(body) > limit:
            raise _too_large(f"more than {limit}", limit)
        encoding = parser_context.get("encoding", settings.DEFAULT_CHARSET)
        try:
            return json_loads(body.decode(encoding))
        except JSONRefused as error:
            raise ParseError(str(error), code=error.code) from None
        except (ValueError, LookupError) as error:  # not JSON, not in its charset, or an unknown charset
            raise ParseError(f"JSON parse error - {error}") from None
