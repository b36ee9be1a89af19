"""Prepare a machine for `make run`: check services, create the database, migrate, demo users."""

import os
import secrets

import psycopg
import redis
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError

from pqh_site.database import database_create_if_missing
from pqh_site.outages import PqhCommand, explain_postgres, explain_redis
from users_app.models import Profile
from users_app.services import api_user_create

# The demo users and the weight each gets when bootstrap creates it; an operator's later change
# to a demo user's weight is kept.
DEMO_USERS = [("demo1", 1), ("demo2", 3)]


class Command(PqhCommand):
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
            raise CommandError(explain_redis(exc)) from None

    def _ensure_database(self) -> None:
        db = settings.DATABASES["default"]
        try:
            if database_create_if_missing(db):
                self.stdout.write(f"created database {db['NAME']}")
        except psycopg.OperationalError as exc:
            raise CommandError(explain_postgres(exc)) from None

    def _demo_users(self) -> None:
        admin_password = os.environ.get("PQH_DEMO_ADMIN_PASSWORD") or secrets.token_urlsafe(9)
        admin, admin_token, _ = api_user_create(username="admin", password=admin_password)
        if not admin.is_superuser:
            admin.is_staff = admin.is_superuser = True
            admin.save(update_fields=["is_staff", "is_superuser"])
        self.stdout.write(f"admin login: admin / {admin_password} at http://127.0.0.1:8000/admin/")
        self.stdout.write(f"  token for admin: {admin_token.key}")
        for username, weight in DEMO_USERS:
            exists = get_user_model().objects.filter(username=username).exists()
            user, token, _ = api_user_create(username=username, weight=None if exists else weight)
            # Print what is stored, not what this run meant to store.
            stored = Profile.objects.get(user=user).weight
            self.stdout.write(f"  token for {username} (weight {stored}): {token.key}")
