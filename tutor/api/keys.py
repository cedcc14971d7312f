"""API keys: issue (shown once) and check. Only a SHA-256 digest of each key is stored."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta

from django.utils import timezone as django_timezone

from tutor.models import ApiKey, Course

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


def api_key_create(*, name: str, course: Course | None) -> tuple[ApiKey, str]:
    """A new key for ``course`` (None: every course, and creating courses); returns (key, raw key)."""
    key = ApiKey(name=name, course=course)
    raw = api_key_issue(key)
    key.save()
    return key, raw


def api_key_check(raw: str) -> ApiKey | None:
    """The active key ``raw`` names, or None. Constant-time digest comparison."""
    parts = raw.split("_")
    if len(parts) < 3 or parts[0] != KEY_MARK:
        return None
    key = ApiKey.objects.select_related("course").filter(prefix=parts[1], is_active=True).first()
    if key is None or not hmac.compare_digest(key.digest, _digest(raw)):
        return None
    now = django_timezone.now()
    if key.last_used_at is None or now - key.last_used_at > LAST_USED_RESOLUTION:
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
    return key
