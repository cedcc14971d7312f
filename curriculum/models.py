"""Courses, their skills, items (the Q-matrix) and prerequisite graph: the floor every other app stands on."""

from __future__ import annotations

from django.db import models


class Course(models.Model):
    """The tenant unit: skills, items, learners, fits and API keys all belong to one course."""

    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    has_clock = models.BooleanField(
        default=True, help_text="False when timestamps are synthetic step numbers (e.g. DKVMN files)."
    )
    policy = models.JSONField(
        default=dict, blank=True, help_text="Next-item policy settings (threshold, band, goals, review)."
    )
    open_to_all = models.BooleanField(
        default=False,
        help_text="Any signed-in user may practise it (the demo course is); otherwise only the "
        "users enrolled in it (by an LTI launch, staff or the API).",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        # The table kept its name when the model moved here from tutor (migration curriculum 0003).
        db_table = "tutor_course"
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.slug


class Skill(models.Model):
    """A knowledge component."""

    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="skills")
    external_id = models.CharField(max_length=200)
    name = models.CharField(max_length=300, blank=True)
    description = models.TextField(blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["course", "external_id"], name="skill_unique_per_course")]
        ordering = ["course", "id"]

    def __str__(self) -> str:
        return self.name or self.external_id


class Item(models.Model):
    """A question; tests one or more skills."""

    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="items")
    external_id = models.CharField(max_length=200)
    skills = models.ManyToManyField(Skill, related_name="items")
    body = models.TextField(blank=True)
    choices = models.JSONField(null=True, blank=True, help_text="Multiple-choice options, or null for a typed answer.")
    answer = models.TextField(blank=True)
    answer_format = models.CharField(
        max_length=32, blank=True, help_text="e.g. 'simplest' when only lowest terms count."
    )
    explanation = models.TextField(blank=True)
    difficulty = models.PositiveSmallIntegerField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["course", "external_id"], name="item_unique_per_course")]
        ordering = ["course", "id"]

    def __str__(self) -> str:
        return self.external_id


class Prerequisite(models.Model):
    """Edge source -> target: ``source`` is a prerequisite of ``target``."""

    AUTHORED = "authored"
    LEARNED = "learned"
    ORIGINS = [(AUTHORED, "authored"), (LEARNED, "learned")]

    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="prerequisites")
    source = models.ForeignKey(Skill, on_delete=models.CASCADE, related_name="required_by")
    target = models.ForeignKey(Skill, on_delete=models.CASCADE, related_name="requires")
    origin = models.CharField(max_length=16, choices=ORIGINS, default=AUTHORED)
    weight = models.FloatField(default=1.0, help_text="1 for authored edges; the edge probability for learned ones.")
    fit = models.ForeignKey("tracing.Fit", null=True, blank=True, on_delete=models.SET_NULL, related_name="edges")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["source", "target", "origin"], name="prerequisite_unique_edge"),
            models.CheckConstraint(condition=~models.Q(source=models.F("target")), name="prerequisite_no_self_loop"),
        ]

    def __str__(self) -> str:
        return f"{self.source} -> {self.target} ({self.origin})"
