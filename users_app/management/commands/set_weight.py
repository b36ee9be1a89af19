"""Set a user's weight."""

from django.core.management.base import CommandError

from pqh_site.outages import PqhCommand, no_such_user, parse_whole_number, shell_word
from users_app.services import MAX_WEIGHT, NoSuchUser, UserError, user_set_weight


class Command(PqhCommand):
    help = "Set the weight of USERNAME to N (an integer >= 1); applies to the next submission."

    def add_arguments(self, parser) -> None:
        parser.add_argument("username", help="the user's name")
        # A string, checked in handle(): a bad value is then one line, not argparse's usage.
        parser.add_argument("weight", help="the new weight (>= 1)")

    def handle(self, *args, username: str, weight: str, **options):
        name = shell_word(username)
        example = f"manage.py set_weight {name} 1"
        number = parse_whole_number(
            weight, name="the weight", minimum=1, maximum=MAX_WEIGHT, example=example
        )
        try:
            profile = user_set_weight(username=username, weight=number)
        except NoSuchUser:
            fix = f"create it with `manage.py create_api_user {name} --weight {number}`"
            raise no_such_user(username, fix=fix) from None
        except UserError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"{username}: weight {profile.weight}")
