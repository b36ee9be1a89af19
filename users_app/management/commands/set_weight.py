"""Set a user's weight."""

from django.core.management.base import CommandError

from pqh_site.outages import PqhCommand
from users_app.services import UserError, user_set_weight


class Command(PqhCommand):
    help = "Set the weight of USERNAME to N (an integer >= 1); applies to the next submission."

    def add_arguments(self, parser) -> None:
        parser.add_argument("username", help="the user's name")
        parser.add_argument("weight", type=int, help="the new weight (>= 1)")

    def handle(self, *args, username: str, weight: int, **options):
        try:
            profile = user_set_weight(username=username, weight=weight)
        except UserError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"{username}: weight {profile.weight}")
