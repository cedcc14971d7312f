"""Learners, their enrolments and answers, and API keys (a course and its items live in curriculum)."""

from __future__ import annotations

import re

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from curriculum.models import Course


class Learner(models.Model):
    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="learners")
    external_id = models.CharField(max_length=200)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="learners"
    )
    goal = models.CharField(
        max_length=200,
        blank=True,
        default="",
        help_text="The skill this learner chose to work towards on the learner page; empty: the course's goals.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["course", "external_id"], name="learner_unique_per_course")]
        ordering = ["course", "external_id"]

    def __str__(self) -> str:
        return f"{self.course.slug}/{self.external_id}"


class Enrolment(models.Model):
    """A user may practise a course, and as which learner: the one explicit tie between an account and a
    learner (made by an LTI launch, by staff, through the API, or by the user opening an open course).

    ``learner`` is empty until the user first opens the course (or is set by whoever enrols them); the
    learner's ``user`` then names the same account.
    """

    LTI, STAFF, API, OPEN = "lti", "staff", "api", "open"
    SOURCES = [(LTI, "LTI launch"), (STAFF, "staff"), (API, "API"), (OPEN, "open course")]

    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="enrolments")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="enrolments")
    learner = models.OneToOneField(
        Learner,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="enrolment",
        help_text="The learner this account practises as; made on the first visit if empty.",
    )
    source = models.CharField(max_length=8, choices=SOURCES, default=STAFF)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["course", "user"], name="enrolment_unique_per_course")]
        ordering = ["course", "user"]

    def __str__(self) -> str:
        return f"{self.user} in {self.course}"


class Interaction(models.Model):
    """One answer. Append-only: never updated after it is stored."""

    # No index of their own on course and learner: every query by course (and the foreign-key checks of
    # a course's delete) is served by the composite indexes below, which begin with it, and every query by
    # learner by interaction_learner_history; a separate index only slowed every insert (issue 18).
    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="interactions", db_index=False)
    learner = models.ForeignKey(Learner, on_delete=models.CASCADE, related_name="interactions", db_index=False)
    item = models.ForeignKey("curriculum.Item", on_delete=models.PROTECT, related_name="interactions")
    correct = models.FloatField(
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="1 = correct, 0 = wrong, or a score in [0, 1].",
    )
    timestamp = models.DateTimeField()
    response_time = models.FloatField(null=True, blank=True, help_text="Seconds taken to answer.")
    client_id = models.CharField(  # noqa: DJ001 - NULL, not "": the unique constraint lets many rows have none
        max_length=200,
        null=True,
        blank=True,
        help_text="The client's id for this answer; a retry with the same id stores nothing new.",
    )
    response = models.TextField(blank=True, help_text="What the learner answered, where the page recorded it.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["course", "client_id"], name="interaction_client_id_unique_per_course"),
            models.CheckConstraint(
                condition=models.Q(correct__gte=0.0) & models.Q(correct__lte=1.0),
                name="interaction_correct_in_unit_interval",
            ),
        ]
        indexes = [
            models.Index(fields=["learner", "timestamp", "id"], name="interaction_learner_history"),
            models.Index(fields=["course", "learner", "timestamp", "id"], name="interaction_course_bulk"),
            models.Index(fields=["course", "timestamp"], name="interaction_course_time"),
        ]
        ordering = ["timestamp", "id"]

    def __str__(self) -> str:
        return f"{self.learner_id}:{self.item_id}={self.correct}"


RATE = re.compile(r"([1-9][0-9]{0,8})/(s|sec|second|m|min|minute|h|hour|d|day)")
"""A request rate as DRF's throttles read it (N/period; only the period's first letter counts)."""


def rate_validate(value: str) -> None:
    """Refuse anything but N/sec, N/min, N/hour or N/day with a whole N from 1 to 999,999,999."""
    if not RATE.fullmatch(value):
        raise ValidationError(
            f"{value!r} is not a rate: write a whole number of requests per sec, min, hour or day, e.g. 6000/min",
            code="invalid_rate",
        )


class ApiKey(models.Model):
    """A secret for one integration: scoped to one course, or to all (a global admin key, course = null).

    Only a SHA-256 digest of the key is stored; ``prefix`` (the key's first characters,
    shown in the admin) finds the row without scanning, and the digest check decides.
    """

    name = models.CharField(max_length=200, help_text="Who uses the key, e.g. 'Moodle production'.")
    course = models.ForeignKey(
        Course,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="api_keys",
        help_text="The one course this key reaches; empty for a global admin key.",
    )
    prefix = models.CharField(max_length=16, unique=True, editable=False)
    digest = models.CharField(max_length=64, editable=False, help_text="SHA-256 of the whole key, hex.")
    is_active = models.BooleanField(default=True, help_text="Untick to revoke the key.")
    rate = models.CharField(
        max_length=24,
        blank=True,
        default="",
        validators=[rate_validate],
        help_text="Requests this key may make per period, e.g. 6000/min or 100/sec (sec, min, hour, day); "
        "empty: the server's TUTOR_API_RATE. One key usually serves a whole LMS: size it from its "
        "learners (README, REST API).",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…, {self.course.slug if self.course_id else 'all courses'})"


class Erasure(models.Model):
    """One learner erased (tutor.privacy.learner_erase): who asked, when, and how many rows went from each
    table. It names the learner only by the number their row had and a keyed hash of their id in the
    course (HMAC with the server's secret), never by the id itself: the point is to forget them, while
    someone who knows the id can still check whether it was erased (``tutor.privacy.learner_digest``)."""

    API, DASHBOARD, COMMAND = "api", "dashboard", "command"
    VIA = [(API, "API"), (DASHBOARD, "dashboard"), (COMMAND, "management command")]

    course = models.ForeignKey(Course, null=True, blank=True, on_delete=models.SET_NULL, related_name="erasures")
    course_slug = models.CharField(max_length=64, help_text="The course's id when the erasure ran.")
    learner_number = models.BigIntegerField(help_text="The erased learner's row number (no longer in use).")
    learner_digest = models.CharField(
        max_length=64, db_index=True, help_text="HMAC-SHA256 of the course and the learner's id, hex."
    )
    erased_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The staff member who erased, if one did.",
    )
    actor = models.CharField(
        max_length=200,
        help_text="Who erased: a staff username, an API key's prefix and name, or the management command.",
    )
    via = models.CharField(max_length=16, choices=VIA)
    account_deleted = models.BooleanField(
        default=False, help_text="The learner's account went too (it belonged to no other course)."
    )
    counts = models.JSONField(default=dict, help_text="Rows deleted per table (app_label.Model -> count).")
    erased_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-erased_at"]

    def __str__(self) -> str:
        return f"{self.course_slug}: learner #{self.learner_number} erased by {self.actor}"


class LearnerActivity(models.Model):
    """A learner's answers summed (``tutor.activity`` keeps it with every answer stored or erased): how
    many, their correct total, and the latest answer's time and storing time. The dashboard reads these
    instead of counting a course's answers (issue 18: millions of them)."""

    learner = models.OneToOneField(Learner, primary_key=True, on_delete=models.CASCADE, related_name="activity")
    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="+")
    answers = models.BigIntegerField(default=0)
    correct = models.FloatField(default=0.0, help_text="The sum of the answers' correct (a share is correct/answers).")
    last_timestamp = models.DateTimeField(help_text="The latest answer's timestamp.")
    last_stored = models.DateTimeField(help_text="When the latest answer was stored.")
    mastery_pending = models.BooleanField(
        default=False,
        db_default=False,
        help_text="A file import stored answers of this learner whose mastery refresh has not run yet: the stored "
        "mastery leaves them out until it does (tracing.services.mastery_refresh_pending).",
    )

    class Meta:
        indexes = [
            models.Index(fields=["course", "-answers", "learner"], name="learner_activity_most"),
            models.Index(
                fields=["course", "learner"], condition=models.Q(mastery_pending=True), name="learner_activity_pending"
            ),
        ]

    def __str__(self) -> str:
        return f"learner {self.learner_id}: {self.answers} answers"


class ItemActivity(models.Model):
    """An item's answers summed: how many and their correct total, in parts that add up. Answers recorded
    one request at a time go to part 0; a file import writes a part of its own (no row a live answer
    waits on is held for the import's minutes) and folds it into part 0 after it commits."""

    item = models.ForeignKey("curriculum.Item", on_delete=models.CASCADE, related_name="+")
    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="+")
    part = models.BigIntegerField(default=0)
    answers = models.BigIntegerField(default=0)
    correct = models.FloatField(default=0.0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["item", "part"], name="item_activity_unique")]
        indexes = [models.Index(fields=["course", "item"], name="item_activity_course")]

    def __str__(self) -> str:
        return f"item {self.item_id} part {self.part}: {self.answers} answers"


class DayActivity(models.Model):
    """A course's answers per day, summed in parts as ``ItemActivity`` is. ``clock``: the day of the
    answers' timestamps (True) or of their storing (False: courses whose timestamps are step numbers);
    every answer counts once under each."""

    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="+")
    clock = models.BooleanField()
    day = models.DateField()
    part = models.BigIntegerField(default=0)
    answers = models.BigIntegerField(default=0)
    correct = models.FloatField(default=0.0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["course", "clock", "day", "part"], name="day_activity_unique")]

    def __str__(self) -> str:
        return f"course {self.course_id} {self.day} ({'answered' if self.clock else 'stored'}): {self.answers} answers"
