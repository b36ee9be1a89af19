"""Forget users' windows, so their next submission counts as their first."""

import json

from django.contrib.auth import get_user_model
from django.core.management.base import CommandError

from pqh_site.core import core
from pqh_site.outages import PqhCommand, no_such_user


class Command(PqhCommand):
    help = (
        "Forget the window of USERNAME, or of every user with --all: their next task is counted "
        "as their first and gets level 0. The same reset as the admin's action."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("username", nargs="?", help="the user whose window to forget")
        parser.add_argument(
            "--all", action="store_true", help="forget the window of every user who has one"
        )
        parser.add_argument("--json", action="store_true", help="print JSON for machines")

    def handle(self, *args, username: str | None, **options):
        User = get_user_model()
        if bool(username) == bool(options["all"]):
            raise CommandError(
                "give either a USERNAME or --all: `manage.py reset_window NAME` or "
                "`manage.py reset_window --all`"
            )
        if username:
            try:
                targets = [(User.objects.get(username=username).pk, username)]
            except User.DoesNotExist:
                raise no_such_user(username) from None
        else:
            ids = list(core().windows.active_users())
            names = dict(User.objects.filter(pk__in=ids).values_list("pk", "username"))
            # A user deleted since it submitted still has a window until it expires.
            targets = sorted(((pk, names.get(pk, f"#{pk}")) for pk in ids), key=lambda t: t[1])
        windows = core().windows
        rows = [{"user": name, "forgotten": windows.reset(user_id=pk)} for pk, name in targets]
        forgotten = sum(row["forgotten"] for row in rows)
        if options["json"]:
            self.stdout.write(json.dumps({"users": rows, "forgotten": forgotten}, indent=2))
            return
        for row in rows:
            self.stdout.write(f"{row['user']}: forgot {row['forgotten']} submission(s)")
        self.stdout.write(
            f"reset {len(rows)} window(s), forgetting {forgotten} submission(s) in all"
        )
