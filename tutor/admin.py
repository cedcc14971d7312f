from django.contrib import admin

from tutor.models import Course, Interaction, Learner


@admin.register(Course)
class CourseAdmin(admin.ModelAdmin):
    list_display = ("slug", "name", "has_clock", "created_at")
    search_fields = ("slug", "name")


@admin.register(Learner)
class LearnerAdmin(admin.ModelAdmin):
    list_display = ("external_id", "course", "user", "created_at")
    list_filter = ("course",)
    search_fields = ("external_id",)


@admin.register(Interaction)
class InteractionAdmin(admin.ModelAdmin):
    list_display = ("id", "course", "learner", "item", "correct", "timestamp", "client_id")
    list_filter = ("course",)
    list_select_related = ("course", "learner", "item")
    search_fields = ("client_id", "learner__external_id", "item__external_id")
    raw_id_fields = ("learner", "item")

    def has_change_permission(self, request, obj=None) -> bool:
        return False  # append-only
