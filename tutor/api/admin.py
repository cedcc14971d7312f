from django.contrib import admin, messages

from tutor.keys import api_key_issue
from tutor.models import ApiKey


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ("name", "course", "prefix", "is_active", "rate", "created_at", "last_used_at")
    list_filter = ("is_active", "course")
    search_fields = ("name", "prefix")
    readonly_fields = ("prefix", "created_at", "last_used_at")
    fields = ("name", "course", "is_active", "rate", "prefix", "created_at", "last_used_at")

    def save_model(self, request, obj, form, change) -> None:
        raw = None if change else api_key_issue(obj)
        super().save_model(request, obj, form, change)
        if raw is not None:
            messages.warning(
                request,
                f"The key for {obj.name!r} is {raw} — copy it now: it is stored hashed and will not be shown again.",
            )
