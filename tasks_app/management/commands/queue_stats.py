"""Show the queue per level and every user with a live window."""

import json

from pqh_site.commands import PqhCommand
from tasks_app.selectors import queue_stats


class Command(PqhCommand):
    help = (
        "Show queued tasks per level, and per user with a live window: count, weight, next level."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--json", action="store_true", help="print JSON for machines")

    def handle(self, *args, **options):
        stats = queue_stats()
        if options["json"]:
            self.stdout.write(json.dumps(stats, indent=2))
            return
        self.stdout.write("level  queued  in_broker")
        for row in stats["levels"]:
            self.stdout.write(f"{row['level']:>5}  {row['queued']:>6}  {row['in_broker']:>9}")
        self.stdout.write(f"waiting in the fair queue: {stats['waiting_in_fair_queue']}")
        self.stdout.write(f"users with a live window ({stats['window_seconds']} s):")
        if not stats["users"]:
            self.stdout.write("  none")
        for row in stats["users"]:
            self.stdout.write(
                f"  {row['user']}: count {row['count']}, weight {row['weight']}, "
                f"next level {row['next_level']}"
            )
        total = sum(row["queued"] for row in stats["levels"])
        self.stdout.write(f"total queued: {total}, users: {len(stats['users'])}")
