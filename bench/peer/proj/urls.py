"""The peer's two routes, at the same paths as pqh's seed routes."""

from django.urls import path

from bench.peer.jobs import views

urlpatterns = [
    path("task", views.SubmitView.as_view()),
    path("result/<uuid:task_id>", views.ResultView.as_view()),
]
