"""Teams in the reference model: with no teams it orders exactly as the single-level model did;
with teams, the next task comes from the team furthest behind, then from its member furthest
behind (fairqueue/model_teams.py, lua/includes/teams.lua)."""

import itertools
import random

from fairqueue.model import FairQueueModel
from tests import sweep
from tests.queue_sequences import LEVELS, RECOVER, M, ModelQueue, run_sequence

from . import single_level_model

SEQUENCES = 300


def test_with_no_teams_the_model_orders_exactly_as_the_single_level_one():
    """Random histories (enqueue, pick, publish, take, cancel, settle, reweight, aging, recovery,
    restored messages; buffers 1, 2, 3 and none) on the frozen single-level model and on the
    two-level one with no team: the same picks, the same positions, every tag bit for bit."""
    for seed in sweep.seeds(SEQUENCES):
        buffer = [1, 2, 3, 10**6][seed % 4]
        old = single_level_model.FairQueueModel(
            levels=LEVELS, max_wait=M, buffer=buffer, recover_after=RECOVER
        )
        rng = random.Random(seed)
        run_sequence(seed, rng.randint(20, 80), buffer=buffer, real=ModelQueue(old))


def backlog(model, users: dict, *, per_user: int, cost=lambda user: 1.0):
    """Queue `per_user` tasks of each user {user: (team, team weight, weight)} at level 0,
    interleaved; return {task id: (user, cost)}."""
    seqs = itertools.count(1)
    owner = {}
    for _ in range(per_user):
        for user, (team, team_weight, weight) in users.items():
            seq = next(seqs)
            task_id = f"t{seq}"
            owner[task_id] = (user, cost(user))
            model.enqueue(
                task_id=task_id, seq=seq, user=user, level=0, weight=weight, cost=cost(user),
                submitted=1000.0, team=team, team_weight=team_weight,
            )  # fmt: skip
    return owner


def test_a_team_of_one_and_a_team_of_four_of_equal_weight_get_half_each():
    """The issue's case: team A (weight 1, one user) against team B (weight 1, four users), all
    backlogged at one level. Before teams the lone user got 0.2; now 0.5, and each B member
    0.125, within one task at every prefix of the picks."""
    users = {1: ("A", 1, 1), **{u: ("B", 1, 1) for u in range(2, 6)}}
    model = FairQueueModel(levels=1)
    owner = backlog(model, users, per_user=200)
    picks = [owner[t][0] for t in model.pick(now=1000.0, max_picks=400)]
    for k in range(1, 401):
        assert abs(picks[:k].count(1) - k / 2) <= 1, (k, picks[:k])
        for member in range(2, 6):
            assert abs(picks[:k].count(member) - k / 8) <= 1.5, (k, member)
    # The same users with no teams: five peers, 0.2 each.
    flat = FairQueueModel(levels=1)
    owner = backlog(flat, {u: ("", 1, 1) for u in users}, per_user=200)
    picks = [owner[t][0] for t in flat.pick(now=1000.0, max_picks=400)]
    assert picks.count(1) == 80


def test_a_team_weight_change_reaches_the_backlog():
    """Team B's weight raised to 3 mid-run: among the picks after it, A gets 1/4."""
    users = {1: ("A", 1, 1), **{u: ("B", 1, 1) for u in range(2, 6)}}
    model = FairQueueModel(levels=1)
    owner = backlog(model, users, per_user=200)
    model.pick(now=1000.0, max_picks=40)
    assert model.reweight_team("B", 3) == 4 * 200 - 20
    picks = [owner[t][0] for t in model.pick(now=1000.0, max_picks=200)]
    assert picks.count(1) == 50, picks.count(1)


def test_members_share_their_team_by_weight_and_time():
    """Charging time: in team B, members of weights 1 and 3 with tasks of 1 s and 0.25 s get
    1/4 and 3/4 of B's seconds, and B as much time as lone user A (weight 1, tasks of 2 s)."""
    users = {1: ("", 1, 1), 2: ("B", 1, 1), 3: ("B", 1, 3)}
    length = {1: 2.0, 2: 1.0, 3: 0.25}
    model = FairQueueModel(levels=1)
    owner = backlog(model, users, per_user=1000, cost=length.get)
    service = dict.fromkeys(users, 0.0)
    for task_id in model.pick(now=1000.0, max_picks=400):
        user, c = owner[task_id]
        service[user] += c
    total_b = service[2] + service[3]
    assert abs(service[1] - total_b) <= 2.0 + 1.0, service
    assert abs(service[2] / 1 - service[3] / 3) <= 1.0 + 0.25 / 3 + 1.0, service


def test_moving_a_user_takes_its_backlog_along():
    """A user who leaves team B for team A takes its waiting tasks with it: from then on B's
    remaining members and A's share by team weight."""
    users = {1: ("A", 1, 1), 2: ("B", 1, 1), 3: ("B", 1, 1)}
    model = FairQueueModel(levels=1)
    owner = backlog(model, users, per_user=100)
    before = [owner[t][0] for t in model.pick(now=1000.0, max_picks=30)]
    assert before.count(1) == 15  # A and B alternate
    assert model.set_team(3, "A", 1, 1) == 100 - before.count(3)
    picks = [owner[t][0] for t in model.pick(now=1000.0, max_picks=100)]
    # A (users 1 and 3) and B (user 2 alone) alternate: user 2 gets half.
    assert abs(picks.count(2) - 50) <= 1, picks
