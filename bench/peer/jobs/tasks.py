"""The peer's one task: the work a submission asks for (here: give the input back)."""

from celery import shared_task


@shared_task
def run(x):
    return x
