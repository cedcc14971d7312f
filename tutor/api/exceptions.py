"""One error shape for the whole API: {"code", "message", "field"?, "index"?, "detail"?}.

``code`` is stable and machine-readable; ``message`` is for people and names the
field at fault; ``field`` is a dotted path into the request ("items.2" is the
third entry of "items"); ``index`` is the row of a batch.
"""

from __future__ import annotations

from typing import Any

from rest_framework import status
from rest_framework.exceptions import APIException, ErrorDetail, ParseError, ValidationError
from rest_framework.response import Response
from rest_framework.views import exception_handler

from core.errors import ServiceError, Unavailable


class PayloadTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "the request body is too large"
    default_code = "payload_too_large"


def _first_error(detail: Any, path: tuple[str, ...] = ()) -> tuple[tuple[str, ...], ErrorDetail | str] | None:
    """The first leaf of a DRF error tree and its path, depth first (the order a reader scans)."""
    if isinstance(detail, dict):
        for key, value in detail.items():
            found = _first_error(value, path if key == "non_field_errors" else (*path, str(key)))
            if found:
                return found
        return None
    if isinstance(detail, list):
        for position, value in enumerate(detail):
            # A list of messages for one field: the path stays the field's; a list of objects: add the index.
            found = _first_error(value, path if isinstance(value, (str, ErrorDetail)) else (*path, str(position)))
            if found:
                return found
        return None
    return path, detail


def _validation_payload(exc: ValidationError) -> dict[str, Any]:
    found = _first_error(exc.detail)
    if found is None:
        return {"code": "invalid", "message": "invalid request"}
    path, message = found
    code = getattr(message, "code", None) or "invalid"
    field = ".".join(path)
    payload: dict[str, Any] = {"code": code, "message": f"{field}: {message}" if field else str(message)}
    if field:
        payload["field"] = field
    if isinstance(exc.detail, (dict, list)) and (len(exc.detail) > 1 or field.count(".") > 0):
        payload["detail"] = exc.detail
    return payload


def api_exception_handler(exc: Exception, context: dict) -> Response | None:
    if isinstance(exc, ServiceError):
        response = Response(exc.as_dict(), status=exc.status)
        if isinstance(exc, Unavailable):
            response["Retry-After"] = "30"
        return response
    response = exception_handler(exc, context)
    if response is None:
        return None  # not an API error: a bug, which must surface as one
    if isinstance(exc, ValidationError):
        response.data = _validation_payload(exc)
    elif isinstance(exc, ParseError):
        code = getattr(exc.detail, "code", None) or "parse_error"
        if code == "parse_error":  # DRF's own: the body is not JSON at all
            response.data = {"code": "malformed_json", "message": f"the request body is not valid JSON: {exc.detail}"}
        else:
            response.data = {"code": code, "message": str(exc.detail)}
    elif isinstance(exc, APIException):
        detail = exc.detail
        code = getattr(detail, "code", None) or exc.default_code
        response.data = {"code": code, "message": str(detail)}
    return response
