"""Print how fair the service was over a recent period: waits per level, shares per user."""

import json
import re
from dataclasses import asdict
from datetime import timedelta

from django.core.management.base import CommandError
from django.utils import timezone
from django.utils.dateparse import parse_duration

from fairqueue.shares import share_fairness, team_shares
from pqh_site.outages import PqhCommand
from tasks_app.selectors import reports

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_since(text: str) -> timedelta:
    """Return the period `text` names: 90s, 15m, 1h, 2d, or what Django parses (1:30:00, PT1H)."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd])\s*", text)
    period = timedelta(seconds=float(match[1]) * UNITS[match[2]]) if match else parse_duration(text)
    if period is None or period <= timedelta(0):
        raise CommandError(
            f"--since must be a positive duration like 90s, 15m, 1h or 2d, got {text!r}: "
            "e.g. `manage.py fairness_report --since 1h`"
        )
    return period


def seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


class Command(PqhCommand):
    help = (
        "Print, over the last --since (default 1h), the wait p50/p95 per level of the tasks "
        "that started, and each user's share of worker time beside the share it was entitled "
        "to: its weight's part of its level's worker time while other users had tasks at that "
        "level, and what it received while it had its level to itself (docs/fairness.md)."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--since", default="1h", help="how far back to look: 90s, 15m, 1h, 2d (default 1h)"
        )
        parser.add_argument("--json", action="store_true", help="print JSON for machines")

    def handle(self, *args, since: str, **options):
        period = parse_since(since)
        now = timezone.now()
        start = now - period
        waits = reports.wait_percentiles(since=start, now=now)
        try:
            shares = reports.user_shares(since=start, now=now)
        except reports.PeriodTooBusy as exc:
            raise CommandError(f"{exc}: ask for a shorter --since") from exc
        jain = share_fairness(shares)
        teams = team_shares(shares)
        started = sum(row.started for row in waits)
        if options["json"]:
            report = {
                "since": start.isoformat(),
                "now": now.isoformat(),
                "levels": [asdict(row) for row in waits],
                "users": [asdict(row) for row in shares],
                "teams": [asdict(row) for row in teams],
                "jain_index": jain,
            }
            self.stdout.write(json.dumps(report, indent=2))
            return
        self.stdout.write(f"from {start:%Y-%m-%d %H:%M:%S} to {now:%H:%M:%S} UTC ({since})")
        self.stdout.write("wait (s) of the tasks that started, per level:")
        self.stdout.write("level  started      p50      p95  longest")
        for row in waits:
            self.stdout.write(
                f"{row.level:>5}  {row.started:>7}  {seconds(row.p50):>7}  "
                f"{seconds(row.p95):>7}  {seconds(row.longest):>7}"
            )
        self.stdout.write(
            "share of worker time per user (entitled: its weight's part while it shared its "
            "level, all it received while it had the level to itself):"
        )
        if not shares:
            self.stdout.write("  none")
        for row in shares:
            if row.due_seconds > 0:
                contending = (
                    f"while contending {row.contended_seconds:.1f} s of {row.due_seconds:.1f} s "
                    f"due ({row.contended_seconds / row.due_seconds:.2f}x)"
                )
            else:
                contending = "never shared its level while served"
            team = f"team {row.team} (weight {row.team_weight})" if row.team else "no team"
            self.stdout.write(
                f"  {row.username}: weight {row.weight}, {team}, {row.service_seconds:.1f} s, "
                f"share {row.share:.3f}, entitled {row.entitled:.3f}; {contending}"
            )
        if teams:
            self.stdout.write(
                "share of worker time per team (the sums of its members'; within a level teams "
                "share by team weight, then members by weight):"
            )
        for t in teams:
            ratio = (
                f"{t.contended_seconds / t.due_seconds:.2f}x while contending"
                if t.due_seconds > 0
                else "never shared its level while served"
            )
            self.stdout.write(
                f"  {t.team}: team weight {t.team_weight}, members {', '.join(t.members)}, "
                f"{t.service_seconds:.1f} s, share {t.share:.3f}, entitled {t.entitled:.3f}; "
                f"{ratio}"
            )
        contended = sum(row.contended_seconds for row in shares)
        fairness = (
            "no contention in the period"
            if jain is None
            else f"Jain's index over received/due while contending: {jain:.3f}"
        )
        self.stdout.write(
            f"{started} task(s) started, {len(shares)} user(s) had tasks, "
            f"{contended:.1f} s served while users shared a level; {fairness}"
        )
