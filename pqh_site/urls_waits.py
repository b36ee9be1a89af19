"""The wait server's routes (PQH_SERVER=waits, pqh_site/asgi.py): what may wait, and health.

They are the web server's paths and names (a task's detail links its `url` and `result_url` as
there), plus the task's event stream, which only the wait server serves.
"""

from django.urls import path

from tasks_app.waits import views

urlpatterns = [
    path("result/<str:task_id>", views.result, name="result"),
    path("result/<str:task_id>/", views.result),
    path("api/tasks/<str:task_id>/", views.detail, name="api-task-detail"),
    path("api/tasks/<str:task_id>/events", views.events, name="task-events"),
    path("healthz", views.healthz),
]

handler404 = "tasks_app.waits.views.not_found"
