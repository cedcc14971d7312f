"""Admin pages for skills, items and prerequisites."""

from __future__ import annotations

from django.contrib import admin

from curriculum.models import Item, Prerequisite, Skill


@admin.register(Skill)
class SkillAdmin(admin.ModelAdmin):
    list_display = ("external_id", "name", "course")
    list_filter = ("course",)
    search_fields = ("external_id", "name", "description")


@admin.register(Item)
class ItemAdmin(admin.ModelAdmin):
    list_display = ("external_id", "course", "difficulty", "answer_format")
    list_filter = ("course",)
    search_fields = ("external_id", "body", "answer")
    filter_horizontal = ("skills",)


@admin.register(Prerequisite)
class PrerequisiteAdmin(admin.ModelAdmin):
    list_display = ("source", "target", "origin", "weight", "course", "fit")
    list_filter = ("course", "origin")
    search_fields = ("source__external_id", "target__external_id")
    raw_id_fields = ("source", "target", "fit")
