"""Fits of a model to a course, and the mastery they produce."""

from __future__ import annotations

from django.db import models


class Fit(models.Model):
    QUEUED, RUNNING, SUCCEEDED, FAILED = "queued", "running", "succeeded", "failed"
    STATUSES = [(s, s) for s in (QUEUED, RUNNING, SUCCEEDED, FAILED)]

    course = models.ForeignKey("curriculum.Course", on_delete=models.CASCADE, related_name="fits")
    kind = models.CharField(max_length=32)
    params = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=16, choices=STATUSES, default=QUEUED)
    active = models.BooleanField(default=False)
    stage = models.CharField(max_length=64, blank=True)
    progress = models.FloatField(default=0.0)
    error = models.TextField(blank=True)
    metrics = models.JSONField(default=dict, blank=True, help_text="Held-out metrics (next-step, multi-step).")
    snapshot = models.JSONField(
        default=dict, blank=True, help_text="What the fit saw: counts and the last interaction id."
    )
    timings = models.JSONField(default=dict, blank=True)
    fitted_params = models.JSONField(default=dict, blank=True)
    artifact = models.CharField(
        max_length=500, blank=True, help_text="Name of the saved model in the artifacts storage (settings.STORAGES)."
    )
    task_id = models.CharField(max_length=64, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    time_limit = models.PositiveIntegerField(
        null=True, blank=True, help_text="Seconds one attempt may run; grows with the course's answers."
    )
    erased_learners = models.PositiveIntegerField(
        default=0,
        help_text="Learners whose answers this fit was trained on and who have since been erased; "
        "a refit (the next fit's activation) leaves a model without them.",
    )
    erased_at = models.DateTimeField(null=True, blank=True, help_text="When the last of them was erased.")
    parent = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="absorbs",
        help_text="Set on an absorb: this fit is its parent with the answers since folded in (new learners' and "
        "new answers' traits, the course posterior frozen), not a refit.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["course"], condition=models.Q(active=True), name="fit_one_active_per_course"
            ),
        ]
        indexes = [models.Index(fields=["course", "-created_at"], name="fit_course_recent")]
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.course_id}:{self.kind}#{self.pk} ({self.status})"


class Mastery(models.Model):
    """P(learner knows skill), as the fit that wrote it estimated."""

    learner = models.ForeignKey("tutor.Learner", on_delete=models.CASCADE, related_name="mastery")
    skill = models.ForeignKey("curriculum.Skill", on_delete=models.CASCADE, related_name="mastery")
    probability = models.FloatField()
    updated_at = models.DateTimeField()
    fit = models.ForeignKey(Fit, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["learner", "skill"], name="mastery_unique")]

    def __str__(self) -> str:
        return f"{self.learner_id}:{self.skill_id}={self.probability:.3f}"


class LearnerTrace(models.Model):
    """The active fit's full state for one learner (LearnerState as JSON), so the next answer
    updates it in O(1) instead of replaying the history."""

    learner = models.ForeignKey("tutor.Learner", on_delete=models.CASCADE, related_name="traces")
    fit = models.ForeignKey(Fit, on_delete=models.CASCADE, related_name="traces")
    state = models.JSONField()
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["learner", "fit"], name="trace_unique")]

    def __str__(self) -> str:
        return f"trace of {self.learner_id} under fit {self.fit_id}"


class LearnerTraits(models.Model):
    """A learner's traits re-inferred from their answers under one fit (psikt): the posterior mean and sd
    of each trait in the model's own parameterisation, and how many answers they rest on."""

    learner = models.ForeignKey("tutor.Learner", on_delete=models.CASCADE, related_name="traits")
    fit = models.ForeignKey(Fit, on_delete=models.CASCADE, related_name="learner_traits")
    loc = models.JSONField(help_text="Posterior mean of each raw trait.")
    scale = models.JSONField(help_text="Posterior sd of each raw trait.")
    answers = models.PositiveIntegerField(help_text="The learner's answers the posterior was inferred from.")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["learner", "fit"], name="traits_unique")]

    def __str__(self) -> str:
        return f"traits of {self.learner_id} under fit {self.fit_id} ({self.answers} answers)"
