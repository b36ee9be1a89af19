"""pqh's admin site: Django's, plus the fairness dashboard at /admin/fairness/ linked from the index."""

from django.contrib import admin
from django.contrib.admin.apps import AdminConfig
from django.urls import path


class PqhAdminSite(admin.AdminSite):
    site_header = "pqh administration"
    site_title = "pqh admin"
    index_title = "Tasks, users and weights"
    index_template = "admin/pqh/index.html"
    # No sidebar of every model beside each page: it repeats the index and takes 290 px, and
    # at 1280 px the task history needs them for its columns (the breadcrumbs lead home).
    enable_nav_sidebar = False

    def get_urls(self):
        # Before Django's own patterns: they end with a catch-all.
        return [
            path("fairness/", self.admin_view(self.fairness_view), name="fairness"),
            *super().get_urls(),
        ]

    def fairness_view(self, request):
        """The fairness dashboard (staff only, through admin_view; see tasks_app.ops.dashboard)."""
        from tasks_app.ops.dashboard import fairness_dashboard

        return fairness_dashboard(request, context=self.each_context(request))


class PqhAdminConfig(AdminConfig):
    """django.contrib.admin with PqhAdminSite as `admin.site`."""

    default_site = "pqh_site.admin_site.PqhAdminSite"
