from django.contrib import admin

from tracing.models import Fit, Mastery


@admin.register(Fit)
class FitAdmin(admin.ModelAdmin):
    list_display = ("id", "course", "kind", "status", "active", "progress", "created_at", "finished_at")
    list_filter = ("status", "kind", "active")
    readonly_fields = ("metrics", "timings", "snapshot", "fitted_params", "error", "artifact", "task_id")


@admin.register(Mastery)
class MasteryAdmin(admin.ModelAdmin):
    list_display = ("learner", "skill", "probability", "updated_at", "fit")
    list_select_related = ("learner", "skill", "fit")
    search_fields = ("learner__external_id", "skill__external_id")
