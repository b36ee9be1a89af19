"""Production settings: `manage.py check --deploy` is clean with the values the README gives."""

import secrets
import subprocess
import sys

from tests.conftest import ROOT

# The README's production values, behind a TLS-terminating proxy.
PRODUCTION = {
    "PQH_DEBUG": "0",
    "PQH_ALLOWED_HOSTS": "pqh.example.com",
    "PQH_CSRF_TRUSTED_ORIGINS": "https://pqh.example.com",
    "PQH_SSL_REDIRECT": "1",
    "PQH_HSTS_SECONDS": "31536000",
    "PQH_HSTS_INCLUDE_SUBDOMAINS": "1",
    "PQH_HSTS_PRELOAD": "1",
    "PQH_SECURE_COOKIES": "1",
    "PQH_TRUST_X_FORWARDED_PROTO": "1",
}
SETTINGS_NAMES = [*PRODUCTION, "PQH_SECRET_KEY", "PQH_ALLOW_INSECURE_KEY"]


def check_deploy(**env: str) -> subprocess.CompletedProcess:
    """Run `manage.py check --deploy` with pqh's own settings module and only `env` of ours."""
    import os

    base = {k: v for k, v in os.environ.items() if k not in SETTINGS_NAMES}
    base["DJANGO_SETTINGS_MODULE"] = "pqh_site.settings"
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_production_values_pass_check_deploy():
    result = check_deploy(**PRODUCTION, PQH_SECRET_KEY=secrets.token_urlsafe(50))
    assert result.returncode == 0, result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout


def test_the_development_defaults_do_not():
    result = check_deploy(PQH_SECRET_KEY=secrets.token_urlsafe(50))
    assert result.returncode != 0
    for check in ("W004", "W008", "W012", "W016"):  # HSTS, SSL redirect, two cookies
        assert f"security.{check}" in result.stderr


def test_each_production_value_matters():
    # Debug on with no key of one's own (the development key), no HSTS, insecure cookies.
    weakened = {"PQH_DEBUG": "1", "PQH_HSTS_SECONDS": "0", "PQH_SECURE_COOKIES": "0"}
    result = check_deploy(**{**PRODUCTION, **weakened})
    assert result.returncode != 0
    for check in ("W009", "W018", "W004", "W012", "W016"):
        assert f"security.{check}" in result.stderr
