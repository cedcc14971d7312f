from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("health/", include("tutor.health")),
    path("api/", include("tutor.api.urls")),
    path("lti/", include("tutor.lti.urls")),
    path("", include("tutor.web.urls")),
]
