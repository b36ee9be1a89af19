"""What the door benchmark measures against: its users, the servers' settings, the attackers.

The users are created once in the benchmark's database and reused; each has the rates of its own
(Profile.submit_rate / read_rate) that its part needs. The attackers are modes of
bench/wrk/door.lua. The targets are the issue's ("Fair at the door too", "What to show").
"""

from __future__ import annotations

import argparse
import itertools
import secrets
from dataclasses import dataclass

# The server's settings beyond bench.api's (database, prefix, secret key, lifted caps): basic on,
# so it can be attacked; a cool-off that outlasts the run, so a lockout made at the start of an
# attacker's phases still holds at their end. Everything else is the service's default.
DOOR_SETTINGS = {
    "PQH_BASIC_AUTH": "1",
    "PQH_LOGIN_COOLOFF_SECONDS": "3600",
}
# The second server of the limits' cost: every limit off (the door's gate stays, as shipped).
LIMITS_OFF = {
    "PQH_SUBMIT_RATE": "off",
    "PQH_READ_RATE": "off",
    "PQH_ANON_RATE": "off",
    "PQH_LOGIN_LOCKOUT": "0",
}
# A password of the victim: only guessed wrong (the benchmark never logs in with it).
VICTIM_PASSWORD = "door-bench-victim-" + "not-a-secret"


@dataclass(frozen=True)
class UserSpec:
    """A user of the benchmark: its name, its own rates ("" = the server's) and its role."""

    key: str
    name: str
    submit_rate: str
    read_rate: str
    role: str
    password: str | None = None


USERS = (
    UserSpec("quiet", "benchdoor_quiet", "3000/m", "", "submits at a steady 20/s (open loop)"),
    UserSpec("heavy", "benchdoor_heavy", "off", "off", "submits as fast as answered, wrk -c2"),
    UserSpec("poller", "benchdoor_poller", "", "", "attacker B: polls its result on 32 conns"),
    UserSpec("reader", "benchdoor_reader", "", "off", "the normal poll, read rate off"),
    UserSpec("on", "benchdoor_on", "1000000/s", "1000000/s", "limits on: rates high but counted"),
    UserSpec("off", "benchdoor_off", "", "", "limits off: no rates of its own"),
    UserSpec("victim", "benchdoor_victim", "", "", "whose password is guessed", VICTIM_PASSWORD),
)


@dataclass(frozen=True)
class Attacker:
    """One attacker of the door: a door.lua mode, its arguments, its connections."""

    key: str
    label: str
    mode: str
    connections: int
    refusal: str  # what refuses it: the lockout, or the user's read rate
    headline: bool  # one of the two attackers (the other is worth reporting)


ATTACKERS = (
    Attacker("A_guess", "A: 8 conns, one wrong basic password", "guess", 8, "locked_out", True),
    Attacker(
        "A_guesses", "A': 8 conns, a new wrong password each", "guesses", 8, "locked_out", False
    ),
    Attacker("B_poll", "B: a user polling on 32 conns", "poll", 32, "rate_read", True),
)


_wrk_runs = itertools.count(1)


def attacker_args(attacker: Attacker, users: dict, run_tag: str) -> list[str]:
    """door.lua's arguments for `attacker` (after the mode).

    `guess` sends one wrong password, the same in every run; `guesses` gets a prefix of its own
    for every run of wrk (its counter restarts with each), so no password is ever sent twice.
    """
    if attacker.mode == "guess":
        return [users["victim"]["name"], f"wrong-{run_tag}"]
    if attacker.mode == "guesses":
        return [users["victim"]["name"], f"fresh-{run_tag}-{next(_wrk_runs)}"]
    return [users["poller"]["token"], users["poller"]["task"]]


def run_tag() -> str:
    """A tag of this run, in every password it guesses: no run repeats another's header."""
    return secrets.token_hex(4)


def ensure_users() -> dict[str, dict]:
    """Create (once) the benchmark's users, with their rates and tokens; return them by key.

    Rates are saved through the model, so every web process sees them on its next request.
    """
    from django.contrib.auth import get_user_model
    from rest_framework.authtoken.models import Token

    from users_app.models import Profile
    from users_app.services import api_user_create

    User = get_user_model()
    found = {}
    for spec in USERS:
        user = User.objects.filter(username=spec.name).first()
        if user is None:
            user, _, _ = api_user_create(username=spec.name, weight=1, password=spec.password)
        profile, _ = Profile.objects.get_or_create(user=user)
        if (profile.submit_rate, profile.read_rate) != (spec.submit_rate, spec.read_rate):
            profile.submit_rate, profile.read_rate = spec.submit_rate, spec.read_rate
            profile.save(update_fields=["submit_rate", "read_rate"])
        token, _ = Token.objects.get_or_create(user=user)
        found[spec.key] = {
            "id": user.pk,
            "name": spec.name,
            "token": token.key,
            "submit_rate": spec.submit_rate or "(server's)",
            "read_rate": spec.read_rate or "(server's)",
            "role": spec.role,
        }
    return found


# The targets, by figure (analysis.py checks them; the report prints them).
TARGETS = {
    "tries": "at most 10",
    "quiet_accepted": "every submission accepted",
    "quiet_p95": "p95 within 3x of alone, or under 50 ms",
    "heavy_ratio": ">= 0.5x of alone",
    "cpu_refused": "a tenth of a normal poll's",
}
QUIET_P95_FACTOR = 3.0
QUIET_P95_MS = 50.0
HEAVY_MIN_RATIO = 0.5
CPU_MAX_FRACTION = 0.1
TRIES_MAX = 10


def sizes(args: argparse.Namespace) -> None:
    """Fill in the sizes --quick shrinks, unless given."""
    quick = args.quick
    defaults = {
        "seconds": (2, 10),
        "rounds": (1, 3),
        "quiet_rate": (20.0, 20.0),
        "prime_seconds": (1, 2),
        "lead_seconds": (0.5, 1.0),
        "warm_seconds": (1, 2),
    }
    for name, (small, full) in defaults.items():
        if getattr(args, name, None) is None:
            setattr(args, name, small if quick else full)
