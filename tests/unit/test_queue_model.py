"""The reference model of the fair queue on its own: the fairness bound over thousands of workloads, no Redis."""

import itertools
import random

from fairqueue.model import FairQueueModel
from tests import sweep

WORKLOADS = 3000


def cost_drawer(rng, *, exact: bool):
    """A workload's cost draw: (actual cost, estimate) of a task, in one of four styles (chosen
    here, from `rng`, and returned with the draw); with `exact`, the estimate is the cost."""
    style = rng.choice(["uniform", "bimodal", "extreme", "exp"])

    def draw() -> tuple[float, float]:
        c = {
            "uniform": lambda: rng.uniform(0.01, 1.0),
            "bimodal": lambda: rng.choice([0.01, 1.0]) * rng.uniform(0.9, 1.0),
            "extreme": lambda: rng.choice([1e-3, 1.0]),
            "exp": lambda: min(5.0, rng.expovariate(1.0)) + 1e-3,
        }[style]()
        if exact:
            return c, c
        if style == "extreme":
            return c, rng.choice([1e-3, 1.0])
        return c, rng.uniform(0.01, 1.0) if rng.random() < 0.5 else c * rng.uniform(0.2, 3.0)

    return style, draw


def simulate(rng: random.Random, *, in_flight: int, exact: bool, model: FairQueueModel):
    """One random workload at one level; return (worst ratio, description).

    Users with random weights submit tasks with actual costs `c` and estimates `e` (e = c when
    `exact`), some in bursts, some one at a time so that their backlog is often one task deep.
    Before every pick, tasks picked earlier are settled (c - e) in random order until at most
    `in_flight` remain unsettled (R: they are still running or waiting in the broker). The ratio
    is, over every pair of users and every interval of picks during which both had a task
    waiting throughout, |service_i / w_i - service_j / w_j| / (cmax / w_i + cmax / w_j), the
    service being the actual costs of the tasks picked, cmax the largest cost or estimate.
    """
    n = rng.choice([2, 2, 3, 4])
    weights = {u: rng.choice([1, 1, 2, 3, 5, 8]) for u in range(n)}
    style, draw = cost_drawer(rng, exact=exact)

    seqs = itertools.count(1)
    tasks: dict[str, tuple[int, float, float]] = {}
    waiting = dict.fromkeys(range(n), 0)

    def arrive(user: int) -> None:
        c, e = draw()
        seq = next(seqs)
        tasks[f"t{seq}"] = (user, c, e)
        model.enqueue(
            task_id=f"t{seq}", seq=seq, user=user, level=0, weight=weights[user], cost=e,
            submitted=1000.0,
        )  # fmt: skip
        waiting[user] += 1

    for user in range(n):
        for _ in range(rng.randint(1, 6)):
            arrive(user)
    shallow = rng.random() < 0.5  # users top up a backlog one task deep
    unsettled: list[str] = []
    picks: list[tuple[int, float, set[int]]] = []  # (user, actual cost, users backlogged)
    for _ in range(rng.randint(40, 150)):
        for user in range(n):
            if rng.random() < (0.9 if shallow and waiting[user] <= 1 else rng.random() * 0.6):
                arrive(user)
        while len(unsettled) > in_flight or (unsettled and rng.random() < 0.3):
            task_id = unsettled.pop(rng.randrange(len(unsettled)))
            user, c, e = tasks[task_id]
            model.settle(user, 0, weights[user], c - e)
        before = {u for u in range(n) if waiting[u]}
        got = model.pick(now=1000.0, max_picks=1)
        if not got:
            break
        user, c, _ = tasks[got[0]]
        waiting[user] -= 1
        unsettled.append(got[0])
        picks.append((user, c, before & {u for u in range(n) if waiting[u]}))
    cmax = max(max(c, e) for _, c, e in tasks.values())
    worst, where = 0.0, ""
    for i, j in itertools.combinations(range(n), 2):
        bound = cmax / weights[i] + cmax / weights[j]
        d = lo = hi = 0.0
        for k, (user, c, both) in enumerate(picks):
            if not {i, j} <= both:
                d = lo = hi = 0.0  # the next common backlog starts afresh
                continue
            d += c / weights[i] if user == i else -c / weights[j] if user == j else 0.0
            lo, hi = min(lo, d), max(hi, d)
            if (hi - lo) / bound > worst:
                worst = (hi - lo) / bound
                where = f"users {i}, {j} (weights {weights[i]}, {weights[j]}) by pick {k}"
    return worst, f"{style}, {'shallow' if shallow else 'deep'} backlogs, {where}"


def bound_k(in_flight: int) -> float:
    """K of the bound with R = `in_flight` tasks picked and not yet settled at each pick."""
    return 2 + 2 * in_flight


def worst_ratio(seeds, *, exact: bool, k=bound_k):
    """Run one workload per seed (R drawn from 0..4); fail on the first over K; return the
    worst ratio seen per R."""
    worst: dict[int, tuple[float, int]] = {}
    for seed in seeds:
        rng = random.Random(seed)
        in_flight = rng.randint(0, 4)
        model = FairQueueModel(levels=1)
        ratio, where = simulate(rng, in_flight=in_flight, exact=exact, model=model)
        assert ratio <= k(in_flight) + 1e-9, (
            f"seed {seed}, R = {in_flight}: {ratio:.4f} > K = {k(in_flight)}: {where}"
        )
        if ratio > worst.get(in_flight, (0.0, 0))[0]:
            worst[in_flight] = (ratio, seed)
    return dict(sorted(worst.items()))


def test_with_exact_estimates_start_time_fair_queuing_keeps_k_1():
    """Charged what they cost (PQH_CHARGE=tasks, or exact estimates), two users backlogged at
    one level never differ by more than cmax/w_i + cmax/w_j of normalised service: Goyal et
    al.'s bound for start-time fair queuing (K = 1), whatever the number of tasks in flight.
    """
    worst = worst_ratio(
        sweep.seeds(WORKLOADS // 3, worst=(45, 245, 421, 474, 517)), exact=True, k=lambda r: 1
    )
    print(f"exact estimates, worst ratio per R (ratio, seed): {worst}")


def test_the_bound_holds_with_in_flight_settlement():
    """Estimates that differ from the actual costs, settled only after up to R further picks.

    Bound: for two users i, j continuously backlogged at one level over any interval of picks,
        |S_i/w_i - S_j/w_j| <= K (cmax/w_i + cmax/w_j),  K = 2 + 2R,
    S = actual costs of the tasks picked in the interval, R = tasks picked and not yet settled
    when a pick is made (pqh: W slots + B buffer - 1), cmax = the largest cost or estimate.

    Derivation. Let d_u = sum over u's unsettled tasks of (e - c)/w_u (|d_u| < n_u cmax/w_u
    with n_u of them) and, while u is backlogged, g_u = h_u - d_u, h_u the tag of u's first
    waiting task. A settle moves h_u and d_u alike and a pick of u moves h_u by e/w_u and d_u by
    (e - c)/w_u, so g_u moves only when u is picked, by exactly c/w_u: S_u/w_u = the change of
    g_u. (This needs u's waiting tasks to stay one chain, tag_k+1 = tag_k + e_k/w_u, even when
    refunds take F_u below V: start_tag() in queue.lua keeps it; see
    test_a_backlogged_users_refunds_are_never_lost.) A pick
    takes the smallest tag, so when i is picked at p with j backlogged, h_i <= h_j, and
    D = g_i - g_j <= c_p/w_i + d_j(p) - d_i(p) just after i's last pick, and it stays below
    that until the end since g_j only grows. Symmetrically D >= -(c_q/w_j + d_i - d_j) after
    j's last pick before the interval, or, if i's backlog began later, i's first tag is >= V
    >= that pick's tag, which gives the same form with the unsettled tasks counted at two
    moments. The change of D over the interval is S_i/w_i - S_j/w_j, so it is at most
    cmax/w_i + cmax/w_j (SFQ's K = 1) + R cmax max(1/w_i, 1/w_j) (at most R unsettled at a
    pick) + (R + 1)(cmax/w_i + cmax/w_j) (at most R + 1 unsettled at any moment), <= K with
    K = 2 + 2R. With exact estimates every d is 0 and K = 1.

    Observed over 3,000 workloads (seeds 0..2999, rerun 2026-12-07), worst ratio for R = 0..4:
    1.000, 2.169, 2.911, 3.248, 4.000 (seeds 1372, 1506, 579, 1005, 1149), so K = 1 + R, the
    first guess, does not hold (seed 1506, R = 1: 2.169), and the proven 2 + 2R is at most about
    1.4x what was seen. `make test-unit` checks every fifth seed and those five
    (tests/sweep.py); `make test` checks all 3,000.

    """
    worst = worst_ratio(sweep.seeds(WORKLOADS, worst=(579, 1005, 1149, 1372, 1506)), exact=False)
    print(f"in-flight settlement, worst ratio per R (ratio, seed) against K = 2 + 2R: {worst}")


def drain_with_refunds(model, picks: int, *, in_flight: int) -> float:
    """Users 1 (weight 1, tasks of 1 s, estimated exactly) and 2 (weight 1, tasks of 1 ms
    estimated at 1 s), both backlogged throughout; user 2 keeps two tasks waiting. Return the
    largest |S_1 - S_2| over the run, in units of cmax/w_1 + cmax/w_2 = 2 s."""
    seqs = itertools.count(1)
    owner: dict[str, tuple[int, float, float]] = {}
    waiting = {1: 0, 2: 0}
    unsettled: list[str] = []
    service = {1: 0.0, 2: 0.0}
    spread = lo = hi = 0.0
    rng = random.Random(1)
    for _ in range(picks):
        for user, depth, (c, e) in ((1, 5, (1.0, 1.0)), (2, 2, (0.001, 1.0))):
            while waiting[user] < depth:
                seq = next(seqs)
                owner[f"t{seq}"] = (user, c, e)
                model.enqueue(
                    task_id=f"t{seq}", seq=seq, user=user, level=0, weight=1, cost=e,
                    submitted=1000.0,
                )  # fmt: skip
                waiting[user] += 1
        # Up to `in_flight` stay unsettled; some end sooner (the oldest first).
        while len(unsettled) > in_flight or (unsettled and rng.random() < 0.5):
            user, c, e = owner[unsettled.pop(0)]
            model.settle(user, 0, 1, c - e)
        (task_id,) = model.pick(now=1000.0, max_picks=1)
        user, c, _ = owner[task_id]
        waiting[user] -= 1
        unsettled.append(task_id)
        service[user] += c
        lo, hi = min(lo, service[1] - service[2]), max(hi, service[1] - service[2])
        spread = (hi - lo) / 2.0
    return spread


def test_a_backlogged_users_refunds_are_never_lost():
    """With 3 tasks in flight, a user whose estimates are 1,000 times too high keeps being
    refunded while it never stops waiting, so it stays within the bound (K = 8 here). Before
    start_tag() kept a backlogged user's chain, each refund that took F below V was lost and
    the user fell behind without bound: 319 x (cmax/w_i + cmax/w_j) in 10,000 picks on the
    model, 67 x in 2,000 picks on the scripts."""
    assert drain_with_refunds(FairQueueModel(levels=1), 10_000, in_flight=3) <= bound_k(3)


def closed_loop_share(queue, picks: int, *, in_flight: int = 2) -> float:
    """User 1 (weight 1) submits one task at a time, the next when the last has settled: tasks
    of 3 s charged 0.1 s (an estimate that stays wrong). User 2 (weight 1) keeps three exact
    1 s tasks waiting. Up to `in_flight` picked tasks run unsettled (the oldest settles first).
    Return user 1's share of the seconds served, fair being 0.5."""
    seqs = itertools.count(1)
    owner: dict[str, tuple[int, float, float]] = {}
    waiting = {1: 0, 2: 0}
    running: list[str] = []
    service = {1: 0.0, 2: 0.0}
    for _ in range(picks):
        for user, depth, (c, e) in ((1, 1, (3.0, 0.1)), (2, 3, (1.0, 1.0))):
            busy = user == 1 and any(owner[t][0] == 1 for t in running)
            while waiting[user] < depth and not busy:
                seq = next(seqs)
                owner[f"t{seq}"] = (user, c, e)
                queue.enqueue(
                    task_id=f"t{seq}", seq=seq, user=user, level=0, weight=1, cost=e,
                    submitted=1000.0,
                )  # fmt: skip
                waiting[user] += 1
        (task_id,) = queue.pick(now=1000.0, max_picks=1)
        user, c, _ = owner[task_id]
        waiting[user] -= 1
        service[user] += c
        running.append(task_id)
        while len(running) > in_flight:
            done = running.pop(0)
            who, c, e = owner[done]
            queue.settle(who, 0, 1, c - e, task_id=done, seconds=c)
    return service[1] / (service[1] + service[2])


def test_a_closed_loop_users_corrections_are_held_until_its_tasks_settle():
    """Without the hold (PQH_CHARGE=tasks has no settles; here: hold off), the correction of a
    task that settles after the level's clock passed its user's finish tag is lost, and a user
    whose estimates are too low takes 0.6 of the time (as much as running one task at a time
    with two others in flight allows); held, it gets its half."""
    before = closed_loop_share(FairQueueModel(levels=1), 2000)
    after = closed_loop_share(FairQueueModel(levels=1, hold=True), 2000)
    print(f"closed-loop user's share of time: {before:.3f} without the hold, {after:.3f} with")
    assert before > 0.58
    assert abs(after - 0.5) < 0.02
