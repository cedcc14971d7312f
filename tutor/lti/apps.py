from django.apps import AppConfig


class LtiConfig(AppConfig):
    """LTI 1.3 tool: course links for platform deployments, and grade passback targets."""

    name = "tutor.lti"
    label = "tutor_lti"
    verbose_name = "LTI integration"
    default_auto_field = "django.db.models.BigAutoField"
