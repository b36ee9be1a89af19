"""Cancel a user's queued tasks, all of them or those of one level."""

import json

from django.conf import settings
from django.contrib.auth import get_user_model

from pqh_site.outages import PqhCommand, no_such_user, parse_whole_number, shell_word
from tasks_app.models import TaskRecord
from tasks_app.services.actions import task_cancel_many


def parse_level(raw: str, *, username: str) -> int:
    """Return the level named by `raw`, or raise CommandError saying which levels exist."""
    top = settings.PQH_LEVELS - 1
    example = f"manage.py cancel_queued {shell_word(username)} --level {top}"
    return parse_whole_number(raw, name="--level", minimum=0, maximum=top, example=example)


class Command(PqhCommand):
    help = (
        "Cancel the queued (not started) tasks of USERNAME, or only those at --level N, as the "
        "API's DELETE does each one; tasks that start meanwhile are left to run."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("username", help="the user whose queued tasks to cancel")
        # A string, checked in handle(): a bad value is then one line, not argparse's usage.
        parser.add_argument("--level", help="cancel only the tasks queued at this level")
        parser.add_argument("--json", action="store_true", help="print JSON for machines")

    def handle(self, *args, username: str, level: str | None, **options):
        level_number = None if level is None else parse_level(level, username=username)
        User = get_user_model()
        try:
            user = User.objects.get(username=username)
        except User.DoesNotExist:
            raise no_such_user(username) from None
        tasks = TaskRecord.objects.waiting().filter(user=user)
        if level_number is not None:
            tasks = tasks.filter(level=level_number)
        outcome = task_cancel_many(
            tasks=tasks.select_related("user").defer("input").order_by("submitted_at")
        )
        if options["json"]:
            self.stdout.write(
                json.dumps(
                    {
                        "user": username,
                        "level": level_number,
                        "cancelled": [str(pk) for pk in outcome.cancelled],
                        "not_cancellable": outcome.not_cancellable,
                    },
                    indent=2,
                )
            )
            return
        where = "" if level_number is None else f" at level {level_number}"
        started = (
            f"; {outcome.not_cancellable} started meanwhile and will run"
            if outcome.not_cancellable
            else ""
        )
        self.stdout.write(
            f"cancelled {len(outcome.cancelled)} queued task(s) of {username}{where}{started}"
        )
