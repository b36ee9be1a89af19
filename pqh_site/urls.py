"""Top-level routes."""

from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

urlpatterns = [
    path("", RedirectView.as_view(url="/api/", permanent=False)),
    path("admin/", admin.site.urls),
    path("api-auth/", include("rest_framework.urls")),
    # Public: the API's shape is no secret, and a newcomer reads it before having a token.
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("", include("tasks_app.urls")),
]

handler400 = "pqh_site.errors.bad_request"
handler403 = "pqh_site.errors.permission_denied"
handler404 = "pqh_site.errors.not_found"
handler500 = "pqh_site.errors.server_error"
