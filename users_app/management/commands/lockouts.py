"""List the client addresses locked out of password logins, or lift lockouts."""

import ipaddress
import json

from django.core.management.base import CommandError

from pqh_site.outages import PqhCommand
from users_app.lockout import lockout_clear, lockouts_now


class Command(PqhCommand):
    help = (
        "List the addresses locked out of password logins now (too many failed logins: "
        "PQH_LOGIN_FAILURE_LIMIT within PQH_LOGIN_COOLOFF_SECONDS), or `clear` them: "
        "`lockouts clear --address A`, `--user NAME`, or `--all`."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "action", nargs="?", choices=["list", "clear"], default="list", help="list or clear"
        )
        parser.add_argument("--address", help="clear: the client address to let in again")
        parser.add_argument("--user", help="clear: forget the failed logins of this user name")
        parser.add_argument("--all", action="store_true", help="clear: forget every failed login")
        parser.add_argument("--json", action="store_true", help="print JSON for machines")

    def handle(self, *args, action: str, **options):
        if action == "clear":
            return self._clear(options)
        if options["address"] or options["user"] or options["all"]:
            raise CommandError(
                "--address, --user and --all go with `clear`: e.g. "
                "`manage.py lockouts clear --address 203.0.113.7`"
            )
        rows = [
            {
                "address": lockout.address,
                "failures": lockout.failures,
                "usernames": lockout.usernames,
                "until": lockout.until.isoformat().replace("+00:00", "Z"),
            }
            for lockout in lockouts_now()
        ]
        if options["json"]:
            self.stdout.write(json.dumps({"lockouts": rows}, indent=2))
            return
        for row in rows:
            names = ", ".join(name or "(none)" for name in row["usernames"])
            self.stdout.write(
                f"{row['address']}: {row['failures']} failed logins (tried: {names}); "
                f"locked out until {row['until']}"
            )
        self.stdout.write(f"{len(rows)} address(es) locked out")

    def _clear(self, options) -> None:
        address, user = options["address"], options["user"]
        if not (address or user or options["all"]):
            raise CommandError(
                "say what to clear: --address A, --user NAME, or --all: e.g. "
                "`manage.py lockouts clear --all`"
            )
        if options["all"] and (address or user):
            raise CommandError(
                "--all clears everything: give it alone, `manage.py lockouts clear --all`"
            )
        if address:
            try:
                address = str(ipaddress.ip_address(address))
            except ValueError:
                raise CommandError(
                    f"{address!r} is not an IP address: `manage.py lockouts` lists the "
                    "addresses locked out"
                ) from None
        forgotten = lockout_clear(address=address, username=user)
        if options["json"]:
            self.stdout.write(json.dumps({"forgotten": forgotten}))
            return
        self.stdout.write(f"forgot {forgotten} failed-login record(s)")
