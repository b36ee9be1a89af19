"""Prepare a machine for `make run`: check services, create the database, migrate, demo users."""

import os
import secrets

import psycopg
import redis
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from pqh_site.database import database_create_if_missing
from users_app.services import api_user_create

PG_HINT = (
    "start it with: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start "
    "(or set DATABASE_URL)"
)
REDIS_HINT = (
    "start it with: redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save '' "
    "(or set REDIS_URL)"
)


class Command(BaseCommand):
    help = (
        "Check PostgreSQL and Redis, create the database if missing, migrate, collect static "
        "files, and create a demo admin and two demo users, printing their tokens."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--no-demo", action="store_true", help="skip the demo users")

    def handle(self, *args, no_demo: bool, **options):
        self._check_redis()
        self._ensure_database()
        call_command("migrate", verbosity=0, interactive=False)
        call_command("collectstatic", verbosity=0, interactive=False)
        self.stdout.write("database migrated")
        if not no_demo:
            self._demo_users()

    def _check_redis(self) -> None:
        try:
            redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=3).ping()
        except redis.RedisError as exc:
            raise CommandError(
                f"Redis at {settings.REDIS_URL} is unreachable ({exc}); {REDIS_HINT}"
            ) from None

    def _ensure_database(self) -> None:
        db = settings.DATABASES["default"]
        try:
            if database_create_if_missing(db):
                self.stdout.write(f"created database {db['NAME']}")
        except psycopg.OperationalError as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            where = f"{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}"
            raise CommandError(
                f"PostgreSQL at {where} is unreachable ({first}); {PG_HINT}"
            ) from None

    def _demo_users(self) -> None:
        admin_password = os.environ.get("PQH_DEMO_ADMIN_PASSWORD") or secrets.token_urlsafe(9)
        admin, admin_token, _ = api_user_create(username="admin", password=admin_password)
        if not admin.is_superuser:
            admin.is_staff = admin.is_superuser = True
            admin.save(update_fields=["is_staff", "is_superuser"])
        demo = [("demo1", 1), ("demo2", 3)]
        self.stdout.write(f"admin login: admin / {admin_password} at http://127.0.0.1:8000/admin/")
        self.stdout.write(f"  token for admin: {admin_token.key}")
        for username, weight in demo:
            user, token, _ = api_user_create(username=username, weight=weight)
            self.stdout.write(f"  token for {username} (weight {user.profile.weight}): {token.key}")
