"""The fairness scenarios S1-S7: what each run submits, under which settings (docs/fairness.md).

`build_configs` turns the command line into the list of runs, one per (scenario, weight set, mode,
W): FIFO first, then the policy under each charge, then (S3) the policy without aging. Sizes are
per worker slot, so that a run lasts about the same whatever W. The submitting process
(submitter.py) carries each plan out.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from typing import Any

SCENARIOS = ("S1", "S2", "S3", "S4", "S5", "S6", "S6B", "S7")
TITLES = {
    "S1": "hog backlog, then newcomers n1..n5 submit one task each",
    "S2": "users backlogged at once with different weights",
    "S3": "hog backlog, then a steady stream of fresh users",
    "S4": "one user submits far more than the capacity",
    "S5": "idle service, single submissions spaced apart",
    "S6": "two users on one level: 1.0 s tasks at weight 1, 0.1 s tasks at weight 2",
    "S6B": "three users on one level, exponential task lengths (means 10x apart), weights 1, 2, 4",
    "S7": "team A (1 user) against team B (4 users), weights 1:1, then B's weight raised to 3",
}
CHARGES = ("tasks", "time")
# Which charges the policy runs under when --charge is "auto" (the default): the scenarios whose
# tasks all take d run under time only (both charges must give the same figures there), the
# ones that compare shares show both side by side.
AUTO_CHARGES = {
    "S1": ("time",),
    "S2": ("tasks", "time"),
    "S3": ("time",),
    "S4": ("time",),
    "S5": ("time",),
    "S6": ("tasks", "time"),
    "S6B": ("tasks", "time"),
    "S7": ("tasks", "time"),
}
WORKLOAD_CALLABLE = "bench.workload.sleep_for"


@dataclass
class RunConfig:
    """One run: a scenario (and, for S2, a weight set), a mode and a worker count W."""

    scenario: str
    variant: str  # "" or, for S2, the weights "1:3"
    mode: str  # "fifo", "policy-tasks", "policy-time", "strict-…" (S3: no aging)
    workers: int
    d: float
    env: dict[str, str]  # PQH_* for the worker and the submitter
    plan: dict[str, Any]  # what the submitting child does
    expected_seconds: float  # rough duration if the service kept every slot busy
    classes: list[str] = field(default_factory=list)  # contending classes, for shares

    @property
    def slug(self) -> str:
        variant = f"_{self.variant.replace(':', '-')}" if self.variant else ""
        return f"{self.scenario.lower()}{variant}_{self.mode}_w{self.workers}"


def parse_weights(text: str) -> list[int]:
    weights = [int(w) for w in text.split(":")]
    if len(weights) < 2 or min(weights) < 1:
        raise argparse.ArgumentTypeError(f"weights must be like 1:3 or 1:2:5, got {text!r}")
    return weights


def build_configs(args: argparse.Namespace) -> list[RunConfig]:
    """Every run of the invocation, in order: per scenario, per W, FIFO first."""
    d = args.d
    configs: list[RunConfig] = []
    # The scenarios measure order, not admission: no per-user cap or global bound applies.
    base = {
        "PQH_TASK_SECONDS": repr(d),
        "PQH_USER_MAX_ACTIVE": "1000000",
        "PQH_MAX_QUEUED": "10000000",
    }
    if args.release_buffer is not None:
        base["PQH_RELEASE_BUFFER"] = str(args.release_buffer)

    def modes(extra_policy: dict[str, str] | None = None, strict: bool = False):
        """FIFO, then the policy under each charge, then (S3) the policy without aging."""
        charges = charges_for(args, scenario)
        out = [("fifo", {"PQH_FAIRNESS": "0"})]
        for charge in charges:
            env = {"PQH_FAIRNESS": "1", "PQH_CHARGE": charge, **(extra_policy or {})}
            out.append((f"policy-{charge}", env))
        if strict:
            for charge in charges:
                env = {"PQH_FAIRNESS": "1", "PQH_CHARGE": charge}
                out.append((f"strict-{charge}", {**env, "PQH_MAX_WAIT_SECONDS": "1000000"}))
        return out

    for scenario in args.scenarios:
        if scenario == "S7":
            # Five users in two teams on one level; the work's length from each submission.
            plan = s7_plan(args)
            env = {
                "PQH_LEVEL_BOUNDS": "1000000",
                "PQH_TASK_CALLABLE": WORKLOAD_CALLABLE,
                "PQH_TASK_SECONDS": repr(args.s7_seconds),
            }
            expected = sum(len(u[2]) for u in plan["users"]) * args.s7_seconds / args.s7_workers
            for mode, menv in modes()[1:]:  # the policy only, as S6
                configs.append(
                    RunConfig(
                        "S7", "", mode, args.s7_workers, args.s7_seconds,
                        {**base, **env, **menv}, plan, expected,
                        [u[3] for u in plan["users"]],
                    )
                )  # fmt: skip
            continue
        if scenario in ("S6", "S6B"):
            # Both users (all three in S6b) stay at one level: only the order within a level
            # is measured. The work's length comes from each submission (bench.workload);
            # PQH_TASK_SECONDS (d) is the estimate charged for a user with no history yet.
            w = args.s6_workers
            plan = s6_plan(args) if scenario == "S6" else s6b_plan(args)
            work = sum(sum(u[2]) for u in plan["users"])
            env = {
                "PQH_LEVEL_BOUNDS": "1000000",
                "PQH_TASK_CALLABLE": WORKLOAD_CALLABLE,
                "PQH_USER_MAX_ACTIVE": "1000000",
            }
            # The policy runs only: FIFO is not what S6 asks about (S2 shows it).
            for mode, menv in modes()[1:]:
                configs.append(
                    RunConfig(
                        scenario, "", mode, w, d, {**base, **env, **menv}, plan, work / w,
                        [u[3] for u in plan["users"]],
                    )
                )  # fmt: skip
            continue
        for w in args.workers:
            if scenario == "S1":
                backlog = max(w + 1, round(args.s1_backlog * w))
                plan = {
                    "hog": "bench_hog",
                    "backlog": backlog,
                    "newcomers": [f"bench_n{i}" for i in range(1, args.newcomers + 1)],
                    "delay": args.s1_delay * d,
                }
                expected = (backlog + args.newcomers) * d / w + args.s1_delay * d
                for mode, env in modes():
                    configs.append(
                        RunConfig(
                            "S1", "", mode, w, d, {**base, **env}, plan, expected,
                            ["hog", "newcomer"],
                        )
                    )  # fmt: skip
            elif scenario == "S2":
                for weights in args.s2_weights:
                    total = max(len(weights) * 2, round(args.s2_backlog * w))
                    users = []
                    for i, weight in enumerate(weights):
                        n = max(2, round(total * weight / sum(weights)))
                        users.append(
                            [f"bench_s2_u{i + 1}_w{weight}", weight, n, f"u{i + 1}_w{weight}"]
                        )
                    plan = {"users": users, "history": args.s2_history}
                    expected = sum(u[2] for u in users) * d / w
                    bounds = {}
                    if args.s2_level_bounds != "default":
                        bounds = {"PQH_LEVEL_BOUNDS": args.s2_level_bounds}
                    for mode, env in modes(bounds):
                        configs.append(
                            RunConfig(
                                "S2", ":".join(map(str, weights)), mode, w, d,
                                {**base, **env}, plan, expected, [u[3] for u in users],
                            )
                        )  # fmt: skip
            elif scenario == "S3":
                backlog = max(w + 1, round(args.s3_backlog * w))
                interval = d / (w * args.s3_load)
                fresh = max(1, round(args.s3_stream * d / interval))
                plan = {
                    "hog": "bench_hog",
                    "backlog": backlog,
                    "fresh": [fresh_name(i) for i in range(fresh)],
                    "interval": interval,
                    "bound_s": args.s3_max_wait * d,
                }
                expected = max(fresh * interval, (backlog + fresh) * d / w)
                aging = {"PQH_MAX_WAIT_SECONDS": repr(args.s3_max_wait * d)}
                for mode, env in modes(aging, strict=args.s3_strict):
                    configs.append(
                        RunConfig(
                            "S3", "", mode, w, d, {**base, **env}, plan, expected,
                            ["hog", "fresh"],
                        )
                    )  # fmt: skip
            elif scenario == "S4":
                n = max(2 * w, round(args.s4_backlog * w))
                plan = {"user": "bench_solo", "n": n}
                for mode, env in modes():
                    configs.append(
                        RunConfig("S4", "", mode, w, d, {**base, **env}, plan, n * d / w, ["solo"])
                    )
            elif scenario == "S5":
                gap = args.s5_gap if args.s5_gap is not None else d + 0.15
                plan = {"user": "bench_single", "n": args.s5_count, "gap": gap, "warmup": w}
                expected = args.s5_count * gap + 2 * d
                for mode, env in modes():
                    configs.append(
                        RunConfig("S5", "", mode, w, d, {**base, **env}, plan, expected, [])
                    )
    return configs


def charges_for(args: argparse.Namespace, scenario: str) -> tuple[str, ...]:
    """The charges the policy runs under in `scenario`."""
    if args.charge == "auto":
        return AUTO_CHARGES[scenario]
    return tuple(args.charge)


def s6_plan(args: argparse.Namespace) -> dict[str, Any]:
    """S6: "long" (weight 1) and "short" (weight 2), every task's length fixed."""
    return {
        "users": [
            ["bench_s6_long", 1, [args.s6_long_seconds] * args.s6_long_tasks, "long"],
            ["bench_s6_short", 2, [args.s6_short_seconds] * args.s6_short_tasks, "short"],
        ]
    }


def s6b_plan(args: argparse.Namespace) -> dict[str, Any]:
    """S6b: one user per (weight, mean); lengths drawn from an exponential distribution.

    Each user gets work in proportion to its weight (weight / sum of weights of W x
    --s6b-seconds), so that under time charging all of them stay backlogged for about
    --s6b-seconds. The draws are seeded (--s6b-seed): every run, both charges included, submits
    the same lengths.
    """
    import random

    weights, means = args.s6b_weights, args.s6b_means
    users = []
    for i, (weight, mean) in enumerate(zip(weights, means, strict=True)):
        rng = random.Random(f"{args.s6b_seed}-{i}")
        target = weight / sum(weights) * args.s6_workers * args.s6b_seconds
        lengths: list[float] = []
        while sum(lengths) < target:
            lengths.append(round(rng.expovariate(1 / mean), 4))
        users.append([f"bench_s6b_u{i + 1}_w{weight}", weight, lengths, f"u{i + 1}_w{weight}"])
    return {"users": users, "means": means, "seed": args.s6b_seed}


S7_TEAMS = {
    "bench_s7_team_a": ["bench_s7_a"],
    "bench_s7_team_b": [f"bench_s7_b{i}" for i in (1, 2, 3, 4)],
}


def s7_plan(args: argparse.Namespace) -> dict[str, Any]:
    """S7: team A (one user) and team B (four users), every user and team at weight 1, every
    task --s7-seconds long; --s7-phase seconds after the go, team B's weight becomes
    --s7-weight (through users_app.services.team_set_weight, as an operator would).

    Each user gets enough tasks to stay backlogged through both phases if the slots ran
    back to back (its due share of W / length tasks a second in each phase, plus a third).
    """
    rate = args.s7_workers / args.s7_seconds
    phase, w2 = args.s7_phase, args.s7_weight
    a_tasks = round(1.35 * rate * phase * (0.5 + 1 / (1 + w2)))
    b_tasks = round(1.35 * rate * phase * (0.125 + w2 / (1 + w2) / 4))
    users = [["bench_s7_a", 1, [args.s7_seconds] * a_tasks, "a"]]
    for name in S7_TEAMS["bench_s7_team_b"]:
        users.append([name, 1, [args.s7_seconds] * b_tasks, name.removeprefix("bench_s7_")])
    return {
        "users": users,
        "teams": {team: [1, members] for team, members in S7_TEAMS.items()},
        "reweight": {"team": "bench_s7_team_b", "weight": w2, "after_s": phase},
    }


def teams_needed(configs: list[RunConfig]) -> dict[str, list[str]]:
    """Every team any run uses, with its members (created by the prepare step)."""
    teams: dict[str, list[str]] = {}
    for cfg in configs:
        for team, (_weight, members) in cfg.plan.get("teams", {}).items():
            teams[team] = members
    return teams


def users_summary(plan: dict[str, Any]) -> dict[str, Any]:
    """The plan's users for the JSON, task lengths summarised (S6b has a thousand of them)."""
    if "users" not in plan:
        return {}
    out = []
    for name, weight, n, label in plan["users"]:
        if isinstance(n, list):
            n = {"tasks": len(n), "work_s": round(sum(n), 3), "longest_s": max(n, default=0)}
        out.append([name, weight, n, label])
    return {"users": out}


def fresh_name(i: int) -> str:
    return f"bench_fresh_{i:04d}"


def users_needed(configs: list[RunConfig]) -> dict[str, int]:
    """Every user any run submits as, with its weight."""
    users: dict[str, int] = {}
    for cfg in configs:
        plan = cfg.plan
        for name in (plan.get("hog"), plan.get("user")):
            if name:
                users[name] = 1
        for name in plan.get("newcomers", []) + plan.get("fresh", []):
            users[name] = 1
        for name, weight, _n, _label in plan.get("users", []):
            users[name] = weight
    return users
