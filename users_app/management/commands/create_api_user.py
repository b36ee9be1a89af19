"""Create an API user (or update one), set its weight, and print its token last."""

from django.core.management.base import CommandError

from pqh_site.outages import PqhCommand
from users_app.services import UserError, api_user_create


class Command(PqhCommand):
    help = "Create USERNAME if missing, set its weight, and print its API token as the last line."

    def add_arguments(self, parser) -> None:
        parser.add_argument("username", help="the user's name")
        parser.add_argument("--weight", type=int, default=None, help="the user's weight (>= 1)")
        parser.add_argument(
            "--password",
            default=None,
            help="also set a password (for session and basic authentication)",
        )

    def handle(self, *args, username: str, weight: int | None, password: str | None, **options):
        try:
            user, token, created = api_user_create(
                username=username, weight=weight, password=password
            )
        except UserError as exc:
            raise CommandError(str(exc)) from None
        verb = "created" if created else "updated"
        self.stdout.write(f"{verb} user {username} with weight {user.profile.weight}")
        self.stdout.write(token.key)
