"""The newcomer's hour on a real worker: one user alone for a while, then two sharing a level.

demo1 (weight 1) runs alone, then demo2 (weight 3) arrives and both keep tasks waiting at one
level on one worker slot. The dashboard, `fairness_report --json` and /metrics must all read
fair: each received what it was entitled to and Jain's index is near 1, where counting the
weights over the whole period reads broken fairness. The expected figures are worked out here
from the rows (what the worker did), not taken from the function that makes the figures.
"""

import io
import json
import re

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from fairqueue.stats import jain_index
from tasks_app.models import TaskRecord
from tests.conftest import client_for, make_user, wait_for
from tests.servers import value

# One level for the whole scenario (six levels still: the worker's queues are the same), and no
# aging: a task that waits is served by weight, not oldest first.
BOUNDS = [1000, 2000, 3000, 4000, 5000]
NO_AGING = "600"
ALONE, EACH = 5, 12


def overlap(start, end, lo, hi) -> float:
    return max((min(end, hi) - max(start, lo)).total_seconds(), 0.0)


def expected_from_the_rows(demo1, demo2) -> dict:
    """What the definition says of what happened, worked out from the rows of this scenario.

    demo2 shares the level from its first submission to its last finish; demo1 has tasks
    waiting all that time (checked), so the runs started in that stretch are the contended ones,
    and on one slot their worker time is due 1/4 to demo1 and 3/4 to demo2. Everything else
    demo1 received alone, the rest of the run it had started before demo2 came included.
    """
    rows = {
        user.username: list(TaskRecord.objects.filter(user=user).order_by("started_at"))
        for user in (demo1, demo2)
    }
    assert {r.level for rs in rows.values() for r in rs} == {0}
    assert not any(r.aged for rs in rows.values() for r in rs)
    shared_from = min(r.submitted_at for r in rows["demo2"])
    shared_to = max(r.finished_at for r in rows["demo2"])
    # demo1 had tasks alive throughout: submitted before, and its last one ended after.
    assert max(r.submitted_at for r in rows["demo1"]) < shared_from
    assert max(r.finished_at for r in rows["demo1"]) > shared_to
    service = {
        name: sum((r.finished_at - r.started_at).total_seconds() for r in rs)
        for name, rs in rows.items()
    }
    received = {
        name: sum(
            overlap(r.started_at, r.finished_at, shared_from, shared_to)
            for r in rs
            if r.started_at >= shared_from
        )
        for name, rs in rows.items()
    }
    shared = sum(received.values())
    due = {"demo1": shared / 4, "demo2": shared * 3 / 4}
    total = sum(service.values())
    figures = {
        name: {
            "service": service[name],
            "share": service[name] / total,
            "entitled": (service[name] - received[name] + due[name]) / total,
            "contended": received[name],
            "due": due[name],
        }
        for name in rows
    }
    jain = jain_index([received[name] / due[name] for name in rows])
    # What counting the weights over the whole period (the first definition) said.
    old_jain = jain_index([figures["demo1"]["share"] / 0.25, figures["demo2"]["share"] / 0.75])
    return {"users": figures, "jain": jain, "old_jain": old_jain}


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("solo_worker", [{"PQH_MAX_WAIT_SECONDS": NO_AGING}], indirect=True)
def test_the_newcomers_hour_reads_fair_on_the_dashboard_the_report_and_metrics(
    solo_worker, settings, client
):
    settings.PQH_LEVEL_BOUNDS = BOUNDS
    settings.PQH_MAX_WAIT_SECONDS = float(NO_AGING)
    demo1, token1 = make_user("demo1", weight=1)
    demo2, token2 = make_user("demo2", weight=3)
    get_user_model().objects.create_superuser("root", "root@example.com", "pw")
    for _ in range(EACH):
        assert client_for(token1).post("/task", {"x": 1}, format="json").status_code == 202

    def done(user) -> int:
        return TaskRecord.objects.filter(user=user, status="SUCCESS").count()

    wait_for(lambda: done(demo1) >= ALONE, timeout=60)  # demo1 alone for a while
    for _ in range(EACH):
        assert client_for(token2).post("/task", {"x": 1}, format="json").status_code == 202
    wait_for(lambda: done(demo1) + done(demo2) == 2 * EACH, timeout=120)

    want = expected_from_the_rows(demo1, demo2)
    users = want["users"]
    # It reads fair: received is entitled to within a task's granularity, Jain's index near 1;
    # the first definition read the same rows as unfair.
    for name in users:
        assert users[name]["share"] == pytest.approx(users[name]["entitled"], abs=0.06)
    assert want["jain"] > 0.95
    assert want["old_jain"] < 0.9

    # fairness_report --json
    out = io.StringIO()
    call_command("fairness_report", "--since", "1h", "--json", stdout=out)
    report = json.loads(out.getvalue())
    got = {row["username"]: row for row in report["users"]}
    assert set(got) == {"demo1", "demo2"}
    for name, figures in users.items():
        assert got[name]["share"] == pytest.approx(figures["share"], abs=1e-3)
        assert got[name]["entitled"] == pytest.approx(figures["entitled"], abs=1e-3)
        assert got[name]["contended_seconds"] == pytest.approx(figures["contended"], abs=1e-3)
        assert got[name]["due_seconds"] == pytest.approx(figures["due"], abs=1e-3)
    assert report["jain_index"] == pytest.approx(want["jain"], abs=1e-3)

    # The dashboard
    client.login(username="root", password="pw")
    page = client.get("/admin/fairness/").content.decode()
    windows = page[page.index('id="windows"') : page.index('id="waits"')]
    for name, figures in users.items():
        shown = re.search(
            rf'>{name}<.*?<td class="num">(\d\.\d{{3}})</td>\s*<td class="num">(\d\.\d{{3}})</td>',
            windows,
            re.S,
        )
        assert float(shown[1]) == pytest.approx(figures["share"], abs=1.5e-3)
        assert float(shown[2]) == pytest.approx(figures["entitled"], abs=1.5e-3)
    jain_shown = re.search(r"Jain's index over received ÷ due while contending: ([\d.]+)", page)
    assert float(jain_shown[1]) == pytest.approx(want["jain"], abs=1.5e-3)

    # /metrics (the staff session may read it)
    text = client.get("/metrics").content.decode()
    for name, figures in users.items():
        assert value(text, "pqh_user_share", user=name) == pytest.approx(figures["share"], abs=1e-3)
        assert value(text, "pqh_user_entitled_share", user=name) == pytest.approx(
            figures["entitled"], abs=1e-3
        )
    assert value(text, "pqh_user_weight", user="demo2") == 3
    assert value(text, "pqh_share_jain_index") == pytest.approx(want["jain"], abs=1e-3)
    print(
        "newcomer:",
        {name: {k: round(v, 3) for k, v in f.items()} for name, f in users.items()},
        f"jain {want['jain']:.3f}, first definition's jain {want['old_jain']:.3f}",
    )
