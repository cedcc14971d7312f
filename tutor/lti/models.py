"""Which course an LTI launch opens, and where a learner's mastery goes back to the LMS gradebook."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class LtiCourseLink(models.Model):
    """A platform deployment (optionally one context, i.e. one LMS course) mapped to a Course.

    A launch matches the link with its deployment and context id first, then the
    deployment's link with an empty context id (every context of that deployment).
    """

    deployment = models.ForeignKey("lti_tool.LtiDeployment", on_delete=models.CASCADE, related_name="course_links")
    context_id = models.CharField(
        max_length=255, blank=True, help_text="The LMS context (course) id from the launch; empty = every context."
    )
    course = models.ForeignKey("curriculum.Course", on_delete=models.CASCADE, related_name="lti_links")
    learner_prefix = models.CharField(
        max_length=64,
        blank=True,
        help_text="Prepended to the LTI user id (sub) to form the learner id, e.g. 'moodle:' when several "
        "platforms share a course.",
    )
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
    activity = models.ForeignKey(
        "PracticeActivity",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="grade_targets",
        help_text="A placed activity: graded from the mastery of its goal skills.",
    )
    scopes = models.JSONField(default=list)
    last_score = models.FloatField(null=True, blank=True, help_text="Last score sent, in [0, 1].")
    last_sent_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["learner", "registration", "lineitem_url", "lineitems_url"], name="lti_grade_target_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.learner} -> {self.lineitem_url or self.lineitems_url}"


class CourseClass(models.Model):
    """A class of a course: the learners of one LMS context (made by the first launch from it, teacher's
    or learner's) or a group that staff make. Teachers see a course's dashboard through a class.

    Kept beside the LTI links because most classes come from an LMS; a staff-made group is the same
    thing without a deployment (its members are added by hand).
    """

    LTI, STAFF = "lti", "staff"
    SOURCES = [(LTI, "LMS context"), (STAFF, "staff group")]

    course = models.ForeignKey("curriculum.Course", on_delete=models.CASCADE, related_name="classes")
    name = models.CharField(max_length=200)
    source = models.CharField(max_length=8, choices=SOURCES, default=STAFF)
    deployment = models.ForeignKey(
        "lti_tool.LtiDeployment", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    context_id = models.CharField(max_length=255, blank=True, help_text="The LMS context id (LMS classes).")
    memberships_url = models.URLField(
        max_length=500,
        blank=True,
        help_text="The context's Names and Role Provisioning Services URL, from the last launch that named it.",
    )
    roster_synced_at = models.DateTimeField(null=True, blank=True)
    roster_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["course", "deployment", "context_id"],
                condition=models.Q(source="lti"),
                name="class_unique_lms_context",
            )
        ]
        ordering = ["course", "name", "id"]
        verbose_name = "class"
        verbose_name_plural = "classes"

    def __str__(self) -> str:
        return f"{self.course.slug}: {self.name}"


class ClassMember(models.Model):
    """One person on a class's roster: from the LMS (NRPS), whether or not they have launched yet, from
    a launch, or added by staff. No e-mail address is kept; ``learner`` is set once they have one."""

    LEARNER, INSTRUCTOR, TEACHING_ASSISTANT, ADMINISTRATOR = "learner", "instructor", "ta", "administrator"
    ROLES = [
        (LEARNER, "learner"),
        (INSTRUCTOR, "instructor"),
        (TEACHING_ASSISTANT, "teaching assistant"),
        (ADMINISTRATOR, "administrator"),
    ]
    ACTIVE, INACTIVE, DELETED = "active", "inactive", "deleted"
    STATUSES = [(ACTIVE, "active"), (INACTIVE, "inactive"), (DELETED, "no longer on the LMS roster")]

    course_class = models.ForeignKey(CourseClass, on_delete=models.CASCADE, related_name="members")
    external_id = models.CharField(
        max_length=200,
        blank=True,
        help_text="The learner id in the course (link prefix + LMS user id); "
        "for a staff group, left empty: the learner's id.",
    )
    lms_user_id = models.CharField(max_length=255, blank=True)
    name = models.CharField(max_length=200, blank=True)
    role = models.CharField(max_length=16, choices=ROLES, default=LEARNER)
    status = models.CharField(max_length=16, choices=STATUSES, default=ACTIVE)
    learner = models.ForeignKey(
        "tutor.Learner", null=True, blank=True, on_delete=models.SET_NULL, related_name="class_memberships"
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["course_class", "external_id"], name="class_member_unique")]
        ordering = ["course_class", "name", "external_id"]

    def __str__(self) -> str:
        return f"{self.name or self.external_id} in {self.course_class}"


class TeachingGrant(models.Model):
    """``user`` may open the dashboard of the class's course, seeing this class's learners only: made by
    an instructor's, teaching assistant's or administrator's LTI launch from the class's context, or by
    staff. It gives no site-staff rights."""

    course_class = models.ForeignKey(CourseClass, on_delete=models.CASCADE, related_name="grants")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="teaching_grants")
    role = models.CharField(max_length=16, choices=ClassMember.ROLES, default=ClassMember.INSTRUCTOR)
    created_at = models.DateTimeField(auto_now_add=True)
    last_launch_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["course_class", "user"], name="teaching_grant_unique")]

    def __str__(self) -> str:
        return f"{self.user} teaches {self.course_class}"


class PracticeActivity(models.Model):
    """A practice activity an instructor placed in the LMS by Deep Linking: the course and the goal skills.
    Its launches practise towards those goals, and its own AGS line item gets the mean mastery of them."""

    course = models.ForeignKey("curriculum.Course", on_delete=models.CASCADE, related_name="lti_activities")
    deployment = models.ForeignKey("lti_tool.LtiDeployment", on_delete=models.CASCADE, related_name="+")
    context_id = models.CharField(max_length=255, blank=True)
    title = models.CharField(max_length=200)
    goals = models.JSONField(default=list, help_text="Skill ids of the course the activity practises towards.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "practice activities"

    def __str__(self) -> str:
        return f"{self.course.slug}: {self.title}"
