"""Random operation sequences on two fair queues at once, with the same answers required.

`run_sequence` drives a queue under test (the Lua scripts, tests/integration/
test_model_vs_scripts.py; or the frozen single-level model, tests/unit/test_teams_model.py)
and the reference model (fairqueue/model.py) with the same operations, and asserts after every
one the same picks, the same state and, now and then, the same positions. No Django, no Redis
here: the queue under test brings its own.
"""

import itertools
import random

from fairqueue.model import FairQueueModel

LEVELS = 6
M = 30.0  # the aging bound
RECOVER = 10.0  # an unconfirmed pick is handed out again after this long
TEAMS = ("red", "blue", "x.y-9")


def _float_map(d: dict) -> dict:
    return {k: float(v) for k, v in d.items()}


def model_state(model, levels: int = LEVELS) -> dict:
    """Every tag, virtual time, finish tag, released task and broker list of a model (and the
    team state, empty for a model without teams), as the Redis state reads them."""
    out = {t: f"{target}|{aged}|{n}" for t, (target, aged, n) in model.out.items()}
    if model.released_count:
        out["#"] = str(model.released_count)
    tasks = {}
    for m, t in model.tasks.items():
        tasks[m] = f"{t.task_id}|{t.user}|{t.weight:.14g}|{t.cost:.17g}"
        if getattr(t, "team", ""):
            tasks[m] += f"|{t.team}"
    inner = getattr(model, "inner", [{}] * levels)
    return {
        "task": tasks,
        "aged": [(m, s) for s, m in model.aged.order],
        "lvl": [[(m, s) for s, m in model.lvl[level].order] for level in range(levels)],
        "vt": {level: v for level, v in enumerate(model.vt) if v != 0.0},
        "fin": [dict(model.fin[level]) for level in range(levels)],
        "out": out,
        "brk": [(t, s) for s, t in model.brk.order],
        "rel": [(t, s) for s, t in model.rel.order],
        "broker": [list(queue) for queue in model.broker],
        "in": [sorted((s, m) for m, s in inner[level].items()) for level in range(levels)],
        "mf": [_float_map(d) for d in getattr(model, "mf", [{}] * levels)],
        "tv": [_float_map(d) for d in getattr(model, "tv", [{}] * levels)],
        "grp": dict(getattr(model, "grp", {})),
        "teams": _float_map(getattr(model, "teams", {})),
        "hold": hold_state(model),
    }


def hold_state(model) -> dict:
    """q:hold as the model holds it: "t|<id>" -> "<l>|<group>|<cost>", "n|<l>|<group>" -> count,
    "f|<l>|<group>" -> finish tag."""
    held = getattr(model, "held_t", {}).items()
    out = {f"t|{t}": f"{level}|{g}|{cost:.17g}" for t, (level, g, cost) in held}
    out.update({f"n|{level}|{g}": n for (level, g), n in getattr(model, "held_n", {}).items()})
    out.update({f"f|{level}|{g}": f for (level, g), f in getattr(model, "held_f", {}).items()})
    return out


def parse_hold(raw: dict) -> dict:
    """q:hold as Redis holds it, in hold_state()'s types."""
    kinds = {"t": str, "n": int, "f": float}
    return {key: kinds[key[0]](value) for key, value in raw.items()}


def cost(rng: random.Random) -> float:
    """Tasks mode (1), or estimated seconds with awkward binary fractions."""
    return rng.choice(
        [1.0, 1.0, rng.uniform(0.001, 5.0), 0.1, 1 / 3, rng.expovariate(2.0) + 1e-6, 7.25]
    )


def run_sequence(
    seed: int, n_ops: int, *, buffer: float, real, teams: bool = False, hold: bool = False
) -> list[str]:
    """Apply one random operation sequence to `real` and to a fresh model; return the log.

    With `teams`, users start in teams (or none), and the sequence also reweights teams, moves
    users between teams (set_team) and lets a user's team change unannounced, so that its next
    submission carries the new team (the queue moves its waiting tasks itself). With `hold`
    (PQH_CHARGE=time), picked tasks are held until they settle.
    """
    rng = random.Random(seed)
    model = FairQueueModel(
        levels=LEVELS, max_wait=M, buffer=buffer, recover_after=RECOVER, hold=hold
    )
    weights = {user: rng.choice([1, 1, 2, 3, 5]) for user in range(1, rng.randint(2, 7))}
    team_of = {user: rng.choice(["", *TEAMS]) if teams else "" for user in weights}
    team_weights = {team: rng.choice([1, 1, 2, 3, 5]) for team in TEAMS}
    seqs = itertools.count(1)
    now = 1000.0
    queued: list[dict] = []
    started: list[dict] = []  # taken by a worker and not yet settled (running)
    log: list[str] = []

    def same(got, want):
        assert got == want, log[-1] + f" model: {want}"
        return got

    ops = ["add", "pick", "publish", "take", "cancel", "settle", "reweight", "time", "restore"]
    odds = [5, 2, 2, 3, 1, 2, 1, 1, 0.3]
    if teams:
        ops += ["team_weight", "move", "drift"]
        odds += [1, 1, 0.5]
    for _ in range(n_ops):
        op = rng.choices(ops, odds)[0]
        if op == "add":
            batch = []
            for _ in range(rng.choice([1, 1, 1, 2, 3, 20])):
                user = rng.choice(list(weights))
                seq = next(seqs)
                # Mostly fresh; sometimes queued again long after its submission (goes aged).
                submitted = now - (rng.uniform(0, 2 * M) if rng.random() < 0.1 else 0.0)
                task = {
                    "id": f"t{seed}-{seq}",
                    "seq": seq,
                    "user": user,
                    "level": rng.choice([0, 1, 1, 2, 3, 5, 5, 5]),
                    "weight": weights[user],
                    "cost": cost(rng),
                    "submitted": submitted,
                }
                if teams and rng.random() < 0.9:  # else: as the queue holds the user
                    task["team"] = team_of[user]
                    task["tweight"] = team_weights.get(team_of[user], 1)
                batch.append(task)
            queued += batch
            max_picks = rng.choice([0, 0, 0, 1, 2])
            log.append(f"add {batch} now={now} max_picks={max_picks}")
            got = real.add(batch, now=now, max_picks=max_picks)
            log[-1] += f" -> {same(got, model.add(batch, now=now, max_picks=max_picks))}"
        elif op == "pick":
            max_picks = rng.randint(1, 4)
            log.append(f"pick now={now} max_picks={max_picks}")
            got = real.pick(now=now, max_picks=max_picks)
            log[-1] += f" -> {same(got, model.pick(now=now, max_picks=max_picks))}"
        elif op == "publish":
            # Some of the unconfirmed picks, in any order (a slow publisher, two publishers).
            pending = [t for _, t in model.rel.order]
            chosen = rng.sample(pending, rng.randint(0, len(pending)))
            real.publish(chosen)
            model.publish(chosen)
            log.append(f"publish {chosen}")
        elif op == "take":
            task_id = real.take()
            assert task_id == model.take()
            log.append(f"take {task_id} now={now}")
            if task_id:
                # Its start is reported with a pick, which may release more.
                got = real.pick(now=now, max_picks=4, started=task_id)
                log[-1] += f" -> {same(got, model.pick(now=now, max_picks=4, started=task_id))}"
                started += [t for t in queued if t["id"] == task_id]
        elif op == "cancel" and queued:
            task = rng.choice(queued)
            got = real.cancel(task)
            want = model.cancel(task["seq"], task["id"])
            log.append(f"cancel {task['id']} -> {got}")
            assert got == want, log[-1] + f" model: {want}"
        elif op == "settle" and started:
            task = started.pop(rng.randrange(len(started)))
            seconds = rng.choice([task["cost"], rng.uniform(0.0, 6.0), rng.expovariate(1.0)])
            weight = weights[task["user"]]
            mean = real.settle(task, weight=weight, seconds=seconds)
            delta = seconds - task["cost"]
            model.settle(
                task["user"], task["level"], weight, delta, task_id=task["id"], seconds=seconds,
                mean=mean if hold else None,
            )  # fmt: skip
            log.append(f"settle {task['id']} weight={weight} seconds={seconds!r}")
        elif op == "reweight":
            user = rng.choice(list(weights))
            weights[user] = rng.choice([1, 2, 3, 4, 7])
            real.reweight(user, weights[user])
            model.reweight(user, weights[user])
            log.append(f"reweight {user} -> {weights[user]}")
        elif op == "time":
            now += rng.choice([0.5, 3.0, RECOVER + 1, M / 2, M + 1, 3 * M])
            log.append(f"time -> {now}")
        elif op == "restore":
            level = rng.randrange(LEVELS)
            message = f"lost-{seed}-{next(seqs)}"
            real.restore(level, message)
            model.restore(level, message)
            log.append(f"restore {message} into level {level}")
        elif op == "team_weight":
            team = rng.choice(TEAMS)
            team_weights[team] = rng.choice([1, 2, 3, 4, 7])
            got = real.reweight_team(team, team_weights[team])
            log.append(f"team weight {team} -> {team_weights[team]}: {got} moved")
            same(got, model.reweight_team(team, team_weights[team]))
        elif op in ("move", "drift"):
            user = rng.choice(list(weights))
            team_of[user] = rng.choice(["", *TEAMS])
            log.append(f"{op} {user} -> team {team_of[user]!r}")
            if op == "move":  # "drift": the next submission carries the new team
                tw = team_weights.get(team_of[user], 1)
                got = real.set_team(user, team_of[user], weights[user], tw)
                same(got, model.set_team(user, team_of[user], weights[user], tw))
        # Every tag exactly as the model computed it (same floating point operations).
        assert real.state() == model_state(model), log[-1]
        if queued and rng.random() < 0.5:
            # A page of tasks (positions.lua ages at most 16 + 2 x tasks first).
            page = rng.sample(queued, min(len(queued), rng.choice([1, 3, len(queued)])))
            got = real.positions(page, now=now)
            want = model.positions([t["seq"] for t in page], now=now)
            assert got == want, log[-1] + f"\npositions: {got}\nmodel:     {want}"
            assert real.state() == model_state(model), "positions " + log[-1]
    return log


class ModelQueue:
    """A model behind the interface run_sequence drives (to compare two models)."""

    def __init__(self, model):
        self.m = model

    def add(self, batch, *, now, max_picks):
        return self.m.add(batch, now=now, max_picks=max_picks)

    def pick(self, *, now, max_picks, started=""):
        return self.m.pick(now=now, max_picks=max_picks, started=started)

    def publish(self, chosen):
        self.m.publish(chosen)

    def take(self):
        return self.m.take()

    def restore(self, level, message):
        self.m.restore(level, message)

    def cancel(self, task):
        return self.m.cancel(task["seq"], task["id"])

    def settle(self, task, *, weight, seconds):
        self.m.settle(task["user"], task["level"], weight, seconds - task["cost"])

    def reweight(self, user, weight):
        self.m.reweight(user, weight)

    def positions(self, page, *, now):
        return self.m.positions([t["seq"] for t in page], now=now)

    def state(self):
        return model_state(self.m)
