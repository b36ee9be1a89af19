"""Routes: the original project's /task and /result, and the REST API under /api/."""

from django.urls import include, path
from rest_framework.routers import DefaultRouter

from . import views

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
    path("api/", include(router.urls)),
]
