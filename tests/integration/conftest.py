"""The integration tier: every test starts with no windows and an empty queue under its own prefix."""

import pytest

from tests.conftest import clear_pqh_keys


@pytest.fixture(autouse=True)
def clean_redis():
    clear_pqh_keys()
    yield
