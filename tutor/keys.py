"""API keys: issue (shown once) and check. Only a SHA-256 digest of each key is stored."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils import timezone as django_timezone

from core.errors import ServiceError
from core.recheck import Recent
from curriculum.models import Course
from tutor.models import ApiKey, rate_validate

KEY_MARK = "kt"
LAST_USED_RESOLUTION = timedelta(minutes=1)
"""last_used_at is written at most this often per key, so reads stay free of writes."""


def _digest(raw: str) -> str:
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


def api_key_issue(key: ApiKey) -> str:
    """Give an unsaved ApiKey a fresh secret; returns the raw key (its only appearance)."""
    prefix = secrets.token_hex(6)
    raw = f"{KEY_MARK}_{prefix}_{secrets.token_urlsafe(32)}"
    key.prefix, key.digest = prefix, _digest(raw)
    return raw


def api_key_create(*, name: str, course: Course | None, rate: str = "") -> tuple[ApiKey, str]:
    """A new key for ``course`` (None: every course, and creating courses) with its own ``rate``
    (e.g. "6000/min"; empty: TUTOR_API_RATE); returns (key, raw key). ServiceError on a bad rate."""
    try:
        if rate:
            rate_validate(rate)
    except ValidationError as error:
        raise ServiceError(error.messages[0], code="invalid_rate", field="rate") from None
    key = ApiKey(name=name, course=course, rate=rate)
    raw = api_key_issue(key)
    key.save()
    return key, raw


_checked: Recent[ApiKey] = Recent(size=1024)
"""digest -> the key found active: this process's recently checked keys."""


def api_key_check(raw: str) -> ApiKey | None:
    """The active key ``raw`` names, or None. Constant-time digest comparison.

    A key found active is trusted for ``TUTOR_API_KEY_RECHECK`` seconds (default 5) before the
    database is asked again, which saves a query on every request; revoking a key therefore takes
    up to that long to reach every server process. 0 checks every request.
    """
    parts = raw.split("_")
    if len(parts) < 3 or parts[0] != KEY_MARK:
        return None
    digest = _digest(raw)
    recheck = settings.TUTOR_API_KEY_RECHECK
    trusted = _checked.get(digest, within=recheck)
    if trusted is not None:
        return trusted
    key = ApiKey.objects.select_related("course").filter(prefix=parts[1], is_active=True).first()
    if key is None or not hmac.compare_digest(key.digest, digest):
        _checked.forget(digest)
        return None
    now = django_timezone.now()
    if key.last_used_at is None or now - key.last_used_at > LAST_USED_RESOLUTION:
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
    _checked.put(digest, key, within=recheck)
    return key
