"""The peer's one task: the same work as pqh's (bench.workload.sleep_for)."""

from celery import shared_task

from bench.workload import sleep_for


@shared_task(name="peer.work")
def work(x):
    return sleep_for(x)
