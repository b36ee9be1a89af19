"""Top-level routes."""

from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

urlpatterns = [
    path("", RedirectView.as_view(url="/api/", permanent=False)),
    path("admin/", admin.site.urls),
    path("api-auth/", include("rest_framework.urls")),
    path("", include("tasks_app.urls")),
]

handler404 = "tasks_app.views.json_not_found"
handler500 = "tasks_app.views.json_server_error"
