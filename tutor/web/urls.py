"""Learner pages (/learn/...), the staff dashboard (/dashboard/...) and sign-in."""

from django.contrib.auth import views as auth_views
from django.urls import path

from tutor.web import privacy_views, teaching, views

urlpatterns = [
    path("", views.home, name="home"),
    path("accounts/login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("learn/<slug:slug>/", views.learn, name="learn"),
    path("learn/<slug:slug>/question/", views.learn_question, name="learn_question"),
    path("learn/<slug:slug>/answer/", views.learn_answer, name="learn_answer"),
    path("learn/<slug:slug>/mastery/", views.learn_mastery, name="learn_mastery"),
    path("learn/<slug:slug>/summary/", views.learn_summary, name="learn_summary"),
    path("learn/<slug:slug>/goal/", views.learn_goal, name="learn_goal"),
    path("dashboard/", views.dashboard_index, name="dashboard"),
    path("dashboard/<slug:slug>/", views.dashboard_course, name="dashboard_course"),
    path("dashboard/<slug:slug>/learners/", teaching.dashboard_learners, name="dashboard_learners"),
    path("dashboard/<slug:slug>/learners/<int:learner_id>/", teaching.dashboard_learner, name="dashboard_learner"),
    path(
        "dashboard/<slug:slug>/classes/<int:class_id>/roster/",
        teaching.dashboard_roster_refresh,
        name="dashboard_roster_refresh",
    ),
    path("dashboard/<slug:slug>/items/", views.dashboard_items, name="dashboard_items"),
    path("dashboard/<slug:slug>/graph/", views.dashboard_graph, name="dashboard_graph"),
    path("dashboard/<slug:slug>/fits/", views.dashboard_fits, name="dashboard_fits"),
    path("dashboard/<slug:slug>/fits/table/", views.dashboard_fits_table, name="dashboard_fits_table"),
    path("dashboard/<slug:slug>/data/", privacy_views.dashboard_data, name="dashboard_data"),
    path("dashboard/<slug:slug>/exports/<str:export>", privacy_views.dashboard_export, name="dashboard_export"),
    path("dashboard/<slug:slug>/erase/", privacy_views.dashboard_erase, name="dashboard_erase"),
    path(
        "dashboard/<slug:slug>/learner-export/", privacy_views.dashboard_learner_export, name="dashboard_learner_export"
    ),
    path("dashboard/<slug:slug>/fits/<int:fit_id>.json", views.dashboard_fit_status, name="dashboard_fit_status"),
]
