from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ActionForm
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin

from core.errors import ServiceError
from curriculum.models import Course
from tutor.enrolments import enrolment_delete, enrolment_set
from tutor.models import Enrolment, Erasure, Interaction, Learner


@admin.register(Course)
class CourseAdmin(admin.ModelAdmin):
    list_display = ("slug", "name", "open_to_all", "has_clock", "created_at")
    list_filter = ("open_to_all",)
    search_fields = ("slug", "name")
    actions = ["open_to_all_signed_in", "enrolled_only"]

    @admin.action(description="Open to every signed-in user")
    def open_to_all_signed_in(self, request, queryset) -> None:
        self.message_user(request, f"{queryset.update(open_to_all=True)} course(s) open to every signed-in user.")

    @admin.action(description="Only for enrolled users")
    def enrolled_only(self, request, queryset) -> None:
        self.message_user(request, f"{queryset.update(open_to_all=False)} course(s) now only for enrolled users.")


@admin.register(Learner)
class LearnerAdmin(admin.ModelAdmin):
    list_display = ("external_id", "course", "user", "created_at")
    list_filter = ("course",)
    search_fields = ("external_id",)
    # The tie to an account is made by an enrolment (below), an LTI launch or the API, in one place.
    readonly_fields = ("user",)

    def has_delete_permission(self, request, obj=None) -> bool:
        # Deleting a learner here would skip the erasure's audit record, the account and the fits marked
        # as trained on erased data: a learner is erased from the dashboard's Data tab, the API or
        # manage.py learner_erase (tutor.privacy.learner_erase), never deleted row by row.
        return False


class EnrolmentForm(forms.ModelForm):
    class Meta:
        model = Enrolment
        fields = ["course", "user", "learner"]

    def clean(self):
        data = super().clean()
        course, learner = data.get("course"), data.get("learner")
        user = data.get("user") or getattr(self.instance, "user", None)
        if course is not None and learner is not None and learner.course_id != course.pk:
            self.add_error("learner", "This learner belongs to another course.")
        elif (
            learner is not None
            and user is not None
            and (
                learner.user_id not in (None, user.pk)
                or Enrolment.objects.filter(learner=learner).exclude(user=user).exists()
            )
        ):
            self.add_error("learner", "This learner is tied to another account: end that enrolment first.")
        return data


@admin.register(Enrolment)
class EnrolmentAdmin(admin.ModelAdmin):
    """Staff enrol an account in a course, optionally as a given learner (e.g. one imported from a file)."""

    form = EnrolmentForm
    list_display = ("user", "course", "learner", "source", "created_at")
    list_filter = ("course", "source")
    list_select_related = ("user", "course", "learner")
    search_fields = ("user__username", "learner__external_id", "course__slug")
    autocomplete_fields = ("course", "user", "learner")

    def get_readonly_fields(self, request, obj=None):
        return ("course", "user", "source") if obj is not None else ()

    def save_model(self, request, obj, form, change) -> None:
        try:
            enrolment, _ = enrolment_set(
                course=obj.course, user=obj.user, learner=obj.learner, source=obj.source if change else Enrolment.STAFF
            )
        except ServiceError as error:
            self.message_user(request, error.message, level=messages.ERROR)
            return
        obj.pk = enrolment.pk

    def delete_model(self, request, obj) -> None:
        enrolment_delete(enrolment=obj)

    def delete_queryset(self, request, queryset) -> None:
        for enrolment in queryset:  # each unties its learner too; learners and answers stay
            enrolment_delete(enrolment=enrolment)


class EnrolActionForm(ActionForm):
    course = forms.ModelChoiceField(queryset=Course.objects.order_by("slug"), required=False, label="Course")


User = get_user_model()
admin.site.unregister(User)


@admin.register(User)
class TutorUserAdmin(UserAdmin):
    """Django's user admin plus an action: enrol the selected accounts in the course chosen beside it."""

    action_form = EnrolActionForm
    actions = ["enrol_in_course"]

    @admin.action(description="Enrol the selected users in the course chosen beside")
    def enrol_in_course(self, request, queryset) -> None:
        # The action form's own validation (its action choices) is the admin's; read the course alone.
        field = EnrolActionForm.base_fields["course"]
        try:
            course = field.clean(request.POST.get("course"))
        except forms.ValidationError:
            course = None
        if course is None:
            self.message_user(request, "Choose a course beside the action first.", level=messages.ERROR)
            return
        created = sum(enrolment_set(course=course, user=user, source=Enrolment.STAFF)[1] for user in queryset)
        self.message_user(
            request, f"{created} user(s) enrolled in {course.slug} ({queryset.count() - created} already were)."
        )


@admin.register(Interaction)
class InteractionAdmin(admin.ModelAdmin):
    list_display = ("id", "course", "learner", "item", "correct", "timestamp", "client_id")
    list_filter = ("course",)
    list_select_related = ("course", "learner", "item")
    search_fields = ("client_id", "learner__external_id", "item__external_id")
    raw_id_fields = ("learner", "item")

    def has_change_permission(self, request, obj=None) -> bool:
        return False  # append-only


@admin.register(Erasure)
class ErasureAdmin(admin.ModelAdmin):
    """The audit log of erasures: read only (an erasure is made by tutor.privacy.learner_erase, and its
    record is evidence that must not be edited)."""

    list_display = ("erased_at", "course_slug", "learner_number", "actor", "via", "account_deleted")
    list_filter = ("via", "account_deleted")
    search_fields = ("course_slug", "learner_digest", "actor")
    readonly_fields = [field.name for field in Erasure._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
