"""Show the queue per level and every user with a live window."""

import json

from pqh_site.outages import PqhCommand
from tasks_app.selectors.queue import queue_stats


def _amount(value: float, unit: str) -> str:
    return f"{value:.1f} s" if unit == "seconds" else f"{int(value)} task(s)"


class Command(PqhCommand):
    help = (
        "Show queued tasks per level, and per user with a live window: count, usage (tasks or "
        "seconds charged), weight, team (and its weight), next level and when it falls back to "
        "level 0."
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
        unit = stats["unit"]
        bounds = ", ".join(_amount(b, unit).removesuffix(" task(s)") for b in stats["bounds"])
        self.stdout.write(
            f"charge: {stats['charge']} (level bounds per weight, in {unit}: {bounds})"
        )
        self.stdout.write(f"users with a live window ({stats['window_seconds']} s):")
        if not stats["users"]:
            self.stdout.write("  none")
        for row in stats["users"]:
            usage = _amount(row["usage"], unit)
            if row["weight"] != 1:
                per = row["usage_per_weight"]
                usage += (
                    f" = {per:.1f} s per weight" if unit == "seconds" else f" = {per} per weight"
                )
            back = (
                "at level 0 already"
                if row["level0_at"] is None
                else f"back at level 0 at {row['level0_at']} if it stops submitting"
            )
            team = (
                "no team"
                if row["team"] is None
                else f"team {row['team']} (team weight {row['team_weight']})"
            )
            self.stdout.write(
                f"  {row['user']}: count {row['count']}, usage {usage}, weight {row['weight']}, "
                f"{team}, next level {row['next_level']}, {back}"
            )
        total = sum(row["queued"] for row in stats["levels"])
        self.stdout.write(f"total queued: {total}, users: {len(stats['users'])}")
