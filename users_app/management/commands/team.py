"""Teams: create one, put users in or take them out, set a team's weight, list them."""

import json

from django.core.management.base import CommandError

from pqh_site.outages import PqhCommand, no_such_user, parse_whole_number, shell_word
from users_app.selectors import team_rows
from users_app.services import (
    MAX_WEIGHT,
    NoSuchTeam,
    NoSuchUser,
    UserError,
    team_add,
    team_create,
    team_remove,
    team_set_weight,
)


class Command(PqhCommand):
    help = (
        "Teams share the service by weight, then their members by theirs. "
        "Subcommands: create NAME --weight W; add NAME USER...; remove USER...; "
        "weight NAME W; list [--json]."
    )

    def add_arguments(self, parser) -> None:
        sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
        create = sub.add_parser("create", help="create a team")
        create.add_argument("name", help="the team's name (letters, digits, _ . -)")
        # Numbers are read as text and checked in handle(): a bad one is one line.
        create.add_argument("--weight", default="1", help="the team's weight (>= 1; default 1)")
        add = sub.add_parser("add", help="put users in a team (leaving any other)")
        add.add_argument("name", help="the team's name")
        add.add_argument("users", nargs="+", metavar="USER", help="user names")
        remove = sub.add_parser("remove", help="take users out of their teams")
        remove.add_argument("users", nargs="+", metavar="USER", help="user names")
        weight = sub.add_parser("weight", help="set a team's weight")
        weight.add_argument("name", help="the team's name")
        weight.add_argument("weight", help="the new weight (>= 1)")
        listing = sub.add_parser("list", help="list the teams, their weights and members")
        listing.add_argument("--json", action="store_true", help="as JSON")

    def _parse_weight(self, raw: str, example: str) -> int:
        return parse_whole_number(
            raw, name="the weight", minimum=1, maximum=MAX_WEIGHT, example=example
        )

    def handle(self, *args, action: str, **options):
        try:
            getattr(self, f"_{action}")(**options)
        except NoSuchUser as exc:
            fix = f"create it with `manage.py create_api_user {shell_word(exc.username)}`"
            raise no_such_user(exc.username, fix=fix) from None
        except NoSuchTeam as exc:
            raise CommandError(
                f"no team named {exc.name!r}: `manage.py team list` lists them, "
                f"`manage.py team create {shell_word(exc.name)} --weight 1` creates it"
            ) from None
        except UserError as exc:
            raise CommandError(str(exc)) from None

    def _create(self, *, name: str, weight: str, **_):
        number = self._parse_weight(weight, f"manage.py team create {shell_word(name)} --weight 1")
        team = team_create(name=name, weight=number)
        self.stdout.write(f"team {team.name}: weight {team.weight}")

    def _add(self, *, name: str, users: list[str], **_):
        team = team_add(name=name, usernames=users)
        self.stdout.write(f"team {team.name}: added {', '.join(users)}")

    def _remove(self, *, users: list[str], **_):
        removed = team_remove(usernames=users)
        self.stdout.write(f"removed from their teams: {', '.join(removed) or 'none was in one'}")

    def _weight(self, *, name: str, weight: str, **_):
        number = self._parse_weight(weight, f"manage.py team weight {shell_word(name)} 1")
        team = team_set_weight(name=name, weight=number)
        self.stdout.write(f"team {team.name}: weight {team.weight}")

    def _list(self, *, json: bool = False, **_):
        rows = team_rows()
        if json:
            self.stdout.write(_dumps([row.__dict__ for row in rows]))
            return
        if not rows:
            self.stdout.write("no teams: create one with `manage.py team create NAME --weight 1`")
        for row in rows:
            members = ", ".join(row.members) or "(no members)"
            self.stdout.write(f"{row.name}  weight {row.weight}  {len(row.members)}: {members}")


def _dumps(value) -> str:
    return json.dumps(value, indent=2)
