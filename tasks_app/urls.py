"""Routes: the original project's /task and /result, the REST API under /api/, health, metrics."""

from django.urls import include, path
from rest_framework.routers import DefaultRouter

from .api import views

# No `.json` suffix routes: `?format=json` or an Accept header choose the rendering.
router = DefaultRouter()
router.include_format_suffixes = False
router.APIRootView = views.APIRootView
router.register("tasks", views.TaskViewSet, basename="api-task")

# The trailing-slash twins answer alike; the schema lists each route once (schema=None).
urlpatterns = [
    path("task", views.SeedTaskView.as_view(), name="task"),
    path("task/", views.SeedTaskView.as_view(schema=None)),
    path("result/<str:task_id>", views.SeedResultView.as_view(), name="result"),
    path("result/<str:task_id>/", views.SeedResultView.as_view(schema=None)),
    path("api/usage/", views.UsageView.as_view(), name="api-usage"),
    path("healthz", views.healthz, name="healthz"),
    path("healthz/", views.healthz),
    path("readyz", views.readyz, name="readyz"),
    path("readyz/", views.readyz),
    path("metrics", views.MetricsView.as_view(), name="metrics"),
    path("metrics/", views.MetricsView.as_view()),
    # Streamed by the wait server (tasks_app.waits); here a 307 there, outside the schema.
    path("api/tasks/<str:task_id>/events", views.TaskEventsView.as_view(schema=None)),
    path("api/", include(router.urls)),
]
