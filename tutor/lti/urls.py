from django.urls import path

from tutor.lti import views

urlpatterns = [
    path("jwks/", views.jwks, name="lti-jwks"),
    path("login/", views.LoginView.as_view(), name="lti-login"),
    path("login/<uuid:registration_uuid>/", views.LoginView.as_view(), name="lti-login-registration"),
    path("launch/", views.LaunchView.as_view(), name="lti-launch"),
    path("deep-link/", views.DeepLinkView.as_view(), name="lti-deep-link"),
]
