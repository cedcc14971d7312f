from django.contrib import admin

import tutor.api.admin  # noqa: F401  (the API key admin is registered beside the API; this app loads it)
from tutor.lti.models import LtiCourseLink, LtiGradeTarget


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
