"""Create an API user (or update one), set its weight, and print its token last."""

from django.core.management.base import CommandError

from pqh_site.outages import PqhCommand, parse_whole_number, shell_word
from users_app.services import MAX_WEIGHT, BadUsername, UserError, api_user_create


class Command(PqhCommand):
    help = (
        "Create USERNAME if missing, set its weight, and print its API token as the last line. "
        "A user name is 1 to 150 letters, digits and @ . + - _ (Django's rule)."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("username", help="the user's name")
        # A string, checked in handle(): a bad value is then one line, not argparse's usage.
        parser.add_argument("--weight", default=None, help="the user's weight (>= 1)")
        parser.add_argument(
            "--password",
            default=None,
            help="also set a password (for session and basic authentication)",
        )

    def handle(self, *args, username: str, weight: str | None, password: str | None, **options):
        number = None
        if weight is not None:
            example = f"manage.py create_api_user {shell_word(username)} --weight 1"
            number = parse_whole_number(
                weight, name="--weight", minimum=1, maximum=MAX_WEIGHT, example=example
            )
        try:
            user, token, created = api_user_create(
                username=username, weight=number, password=password
            )
        except BadUsername as exc:
            raise CommandError(f"{exc}: e.g. `manage.py create_api_user alice`") from None
        except UserError as exc:
            raise CommandError(str(exc)) from None
        verb = "created" if created else "updated"
        self.stdout.write(f"{verb} user {username} with weight {user.profile.weight}")
        self.stdout.write(token.key)
