"""Which course an LTI launch opens, and where a learner's mastery goes back to the LMS gradebook."""

from __future__ import annotations

from django.db import models


class LtiCourseLink(models.Model):
    """A platform deployment (optionally one context, i.e. one LMS course) mapped to a Course.

    A launch matches the link with its deployment and context id first, then the
    deployment's link with an empty context id (every context of that deployment).
    """

    deployment = models.ForeignKey("lti_tool.LtiDeployment", on_delete=models.CASCADE, related_name="course_links")
    context_id = models.CharField(max_length=255, blank=True,
                                  help_text="The LMS context (course) id from the launch; empty = every context.")
    course = models.ForeignKey("curriculum.Course", on_delete=models.CASCADE, related_name="lti_links")
    learner_prefix = models.CharField(
        max_length=64, blank=True,
        help_text="Prepended to the LTI user id (sub) to form the learner id, e.g. 'moodle:' when several "
                  "platforms share a course.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["deployment", "context_id"], name="lti_link_unique_context")]
        verbose_name = "LTI course link"

    def __str__(self) -> str:
        return f"{self.deployment} / {self.context_id or '*'} -> {self.course}"


class LtiGradeTarget(models.Model):
    """Where one learner's grade is posted: the AGS endpoint of the launch that signed them in."""

    learner = models.ForeignKey("tutor.Learner", on_delete=models.CASCADE, related_name="lti_grade_targets")
    registration = models.ForeignKey("lti_tool.LtiRegistration", on_delete=models.CASCADE, related_name="+")
    user_sub = models.CharField(max_length=255, help_text="The learner's LTI user id on the platform.")
    lineitem_url = models.URLField(max_length=500, blank=True, help_text="The launch's own line item, if any.")
    lineitems_url = models.URLField(max_length=500, blank=True, help_text="The context's line item container.")
    resource_link_id = models.CharField(max_length=255, blank=True)
    scopes = models.JSONField(default=list)
    last_score = models.FloatField(null=True, blank=True, help_text="Last score sent, in [0, 1].")
    last_sent_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["learner", "registration", "lineitem_url", "lineitems_url"],
                                               name="lti_grade_target_unique")]

    def __str__(self) -> str:
        return f"{self.learner} -> {self.lineitem_url or self.lineitems_url}"
