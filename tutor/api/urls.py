from django.urls import path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from tutor.api import views
from tutor.api.fallback import api_not_found

course = "v1/courses/<str:course>"

urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("redoc/", SpectacularRedocView.as_view(url_name="api-schema"), name="api-redoc"),
    path("v1/courses", views.CoursesView.as_view(), name="api-courses"),
    path(f"{course}/curriculum", views.CurriculumView.as_view(), name="api-curriculum"),
    path(f"{course}/graph", views.GraphView.as_view(), name="api-graph"),
    path(f"{course}/interactions", views.InteractionsView.as_view(), name="api-interactions"),
    path(f"{course}/learners", views.LearnersView.as_view(), name="api-learners"),
    path(f"{course}/learners/<str:learner>", views.LearnerView.as_view(), name="api-learner"),
    path(f"{course}/learners/<str:learner>/export", views.LearnerExportView.as_view(), name="api-learner-export"),
    path(f"{course}/learners/<str:learner>/mastery", views.MasteryView.as_view(), name="api-mastery"),
    path(f"{course}/learners/<str:learner>/next", views.NextView.as_view(), name="api-next"),
    path(f"{course}/learners/<str:learner>/enrolment", views.EnrolmentView.as_view(), name="api-enrolment"),
    path(f"{course}/predict", views.PredictView.as_view(), name="api-predict"),
    path(f"{course}/fits", views.FitsView.as_view(), name="api-fits"),
    path(f"{course}/fits/<int:fit>", views.FitDetailView.as_view(), name="api-fit"),
    path(f"{course}/exports/<str:export>", views.ExportView.as_view(), name="api-export"),
    path(f"{course}/xapi/statements", views.XapiStatementsView.as_view(), name="api-xapi-statements"),
    re_path(r"^.*$", api_not_found),
]
