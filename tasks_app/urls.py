"""Routes: the original project's /task and /result, the REST API under /api/, health, metrics."""

from django.urls import include, path, re_path
from rest_framework.routers import DefaultRouter

from . import views

router = DefaultRouter()
router.register("tasks", views.TaskViewSet, basename="api-task")

urlpatterns = [
    path("task", views.SeedTaskView.as_view(), name="task"),
    path("task/", views.SeedTaskView.as_view()),
    re_path(r"^result/(?P<task_id>[^/]+)/?$", views.SeedResultView.as_view(), name="result"),
    path("api/usage/", views.UsageView.as_view(), name="api-usage"),
    re_path(r"^healthz/?$", views.healthz, name="healthz"),
    re_path(r"^readyz/?$", views.readyz, name="readyz"),
    re_path(r"^metrics/?$", views.MetricsView.as_view(), name="metrics"),
    path("api/", include(router.urls)),
]
