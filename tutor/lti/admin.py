from django import forms
from django.contrib import admin

import tutor.api.admin  # noqa: F401  (the API key admin is registered beside the API; this app loads it)
from tutor.lti.models import ClassMember, CourseClass, LtiCourseLink, LtiGradeTarget, PracticeActivity, TeachingGrant


@admin.register(LtiCourseLink)
class LtiCourseLinkAdmin(admin.ModelAdmin):
    list_display = ("deployment", "context_id", "course", "learner_prefix", "created_at")
    list_filter = ("course",)
    autocomplete_fields = ("course",)
    raw_id_fields = ("deployment",)

    def save_model(self, request, obj, form, change) -> None:
        super().save_model(request, obj, form, change)
        if not obj.deployment.is_active:  # linking a placement to a course is the act of enabling it
            obj.deployment.is_active = True
            obj.deployment.save(update_fields=["is_active"])


@admin.register(LtiGradeTarget)
class LtiGradeTargetAdmin(admin.ModelAdmin):
    list_display = ("learner", "lineitem_url", "last_score", "last_sent_at", "last_error")
    list_select_related = ("learner__course",)
    readonly_fields = [field.name for field in LtiGradeTarget._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False  # created by launches


class ClassMemberForm(forms.ModelForm):
    class Meta:
        model = ClassMember
        fields = ("learner", "external_id", "name", "role", "status", "lms_user_id")

    def clean(self) -> dict:
        data = super().clean()
        learner = data.get("learner")
        if learner is not None and not data.get("external_id"):
            # A staff group names its learners by learner: the id follows the chosen learner.
            data["external_id"] = self.instance.external_id = learner.external_id
        if not data.get("external_id"):
            raise forms.ValidationError("Choose a learner or give a learner id.")
        course_class = getattr(self.instance, "course_class", None)  # the inline's parent, saved or not
        if learner is not None and course_class is not None and course_class.course_id not in (None, learner.course_id):
            raise forms.ValidationError("That learner is in another course.")
        return data


class ClassMemberInline(admin.TabularInline):
    model = ClassMember
    form = ClassMemberForm
    extra = 0
    fields = ("learner", "external_id", "name", "role", "status", "lms_user_id")
    raw_id_fields = ("learner",)


class TeachingGrantInline(admin.TabularInline):
    model = TeachingGrant
    extra = 0
    fields = ("user", "role", "last_launch_at")
    readonly_fields = ("last_launch_at",)
    raw_id_fields = ("user",)


@admin.register(CourseClass)
class CourseClassAdmin(admin.ModelAdmin):
    """LMS classes are made by launches and filled by the LMS roster; staff make groups here: a name, the
    learners (members with their learner), and the teachers who may see them (grants)."""

    list_display = ("name", "course", "source", "context_id", "roster_synced_at")
    list_filter = ("course", "source")
    search_fields = ("name", "context_id")
    autocomplete_fields = ("course",)
    raw_id_fields = ("deployment",)
    readonly_fields = ("roster_synced_at", "roster_error")
    inlines = [ClassMemberInline, TeachingGrantInline]


@admin.register(PracticeActivity)
class PracticeActivityAdmin(admin.ModelAdmin):
    """Placed by instructors through their LMS (Deep Linking); staff may correct a title or the goals."""

    list_display = ("title", "course", "context_id", "created_by", "created_at")
    list_filter = ("course",)
    readonly_fields = ("course", "deployment", "context_id", "created_by", "created_at")

    def has_add_permission(self, request) -> bool:
        return False
