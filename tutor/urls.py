from django.contrib import admin
from django.templatetags.static import static
from django.urls import include, path
from django.views.generic import RedirectView

urlpatterns = [
    path("admin/", admin.site.urls),
    path("health/", include("tutor.health")),
    path("api/", include("tutor.api.urls")),
    path("lti/", include("tutor.lti.urls")),
    # Browsers ask for /favicon.ico where a page names no icon (JSON, the API docs): no 404 for it.
    path("favicon.ico", RedirectView.as_view(url=static("web/favicon.svg"), permanent=True)),
    path("", include("tutor.web.urls")),
]
