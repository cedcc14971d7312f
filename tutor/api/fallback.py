"""Unknown paths under /api/ answer in the API's JSON error shape, not an HTML page."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse


def api_not_found(request: HttpRequest) -> JsonResponse:
    return JsonResponse(
        {"code": "not_found", "message": f"no API endpoint at {request.path}; see /api/docs/"}, status=404
    )
