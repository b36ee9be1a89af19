"""What a browser sees of pqh besides its pages: a favicon."""

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


def test_the_favicon_is_served_from_the_sites_root():
    response = Client().get("/favicon.ico", HTTP_ACCEPT="image/avif,image/webp,*/*")
    assert response.status_code == 200
    assert response["Content-Type"] in ("image/x-icon", "image/vnd.microsoft.icon")
    icon = b"".join(response.streaming_content)
    assert icon[:4] == b"\x00\x00\x01\x00" and len(icon) < 2048  # an ICO, and a small one
