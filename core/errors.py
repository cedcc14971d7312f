"""Errors the services raise for bad input; the API turns them into 4xx JSON."""

from __future__ import annotations

from typing import Any


class ServiceError(Exception):
    """Bad input: ``code`` is stable and machine-readable, ``message`` says what and where."""

    status = 400

    def __init__(
        self,
        message: str,
        *,
        code: str = "invalid",
        field: str | None = None,
        index: int | None = None,
        detail: Any = None,
    ) -> None:
        super().__init__(message)
        self.message, self.code, self.field, self.index, self.detail = message, code, field, index, detail

    def as_dict(self) -> dict[str, Any]:
        payload: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.field is not None:
            payload["field"] = self.field
        if self.index is not None:
            payload["index"] = self.index
        if self.detail is not None:
            payload["detail"] = self.detail
        return payload


class NotFound(ServiceError):
    status = 404

    def __init__(self, message: str, *, code: str = "not_found", **kwargs: Any) -> None:
        super().__init__(message, code=code, **kwargs)


class Unavailable(ServiceError):
    """A dependency (the broker) is down; the request may be retried later."""

    status = 503

    def __init__(self, message: str, *, code: str = "unavailable", **kwargs: Any) -> None:
        super().__init__(message, code=code, **kwargs)


class Conflict(ServiceError):
    """The request is valid but the resource's state refuses it now (a course's fit places are taken)."""

    status = 409

    def __init__(self, message: str, *, code: str = "conflict", **kwargs: Any) -> None:
        super().__init__(message, code=code, **kwargs)
