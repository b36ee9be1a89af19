"""gunicorn's configuration (read from the working directory) when the app runs under gunicorn.

The Procfile ships granian (docs/performance.md says why); some tests run gunicorn.
"""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pqh_site.settings")

from django.conf import settings  # noqa: E402  (the same settings module the app loads)

# Header fields up to this size reach Django, which answers those over PQH_MAX_HEADER_BYTES
# with a JSON 431; gunicorn refuses larger ones itself, with an HTML 431 (its own page).
limit_request_field_size = settings.PQH_SERVER_MAX_HEADER_BYTES
