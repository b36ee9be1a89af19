"""Task history: one row per accepted submission, written when it is accepted."""

import uuid
from datetime import datetime

from celery import states
from django.conf import settings
from django.db import models
from django.utils import timezone

# The database sequence that numbers accepted tasks in arrival order (see TaskRecord.queue_seq).
QUEUE_SEQ = "tasks_app_taskrecord_queue_seq"
IDEMPOTENCY_KEY_MAX_LENGTH = 255


class NextVal(models.Func):
    """`nextval('<sequence>')`: the next number of a PostgreSQL sequence."""

    function = "nextval"
    output_field = models.BigIntegerField()


STATUS_CHOICES = [
    (states.PENDING, "PENDING (queued)"),
    (states.STARTED, "STARTED"),
    (states.SUCCESS, "SUCCESS"),
    (states.FAILURE, "FAILURE"),
    (states.REVOKED, "REVOKED (cancelled)"),
]


# The statuses a task ends in; it never leaves them.
FINAL_STATES = (states.SUCCESS, states.FAILURE, states.REVOKED)


class TaskRecordQuerySet(models.QuerySet):
    def for_user(self, user) -> "TaskRecordQuerySet":
        return self.filter(user=user)

    def waiting(self) -> "TaskRecordQuerySet":
        return self.filter(status=states.PENDING)


class TaskRecord(models.Model):
    """One accepted submission: who, what, at which level and why, and when it ran."""

    task_id = models.UUIDField(
        primary_key=True,
        default=uuid.uuid4,
        editable=False,
        verbose_name="task id",
        help_text="The Celery task id; also the id of the stored result.",
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="pqh_tasks",
        verbose_name="user",
        help_text="Who submitted the task.",
    )
    level = models.PositiveSmallIntegerField(
        verbose_name="level",
        help_text="Priority level given at submission, 0 (best) to 5.",
    )
    weight = models.PositiveIntegerField(
        verbose_name="weight",
        help_text="The user's weight when the task was submitted.",
    )
    team = models.CharField(
        max_length=64,
        blank=True,
        default="",
        db_default="",  # also in the table, so processes of the previous version can still insert
        verbose_name="team",
        help_text="The user's team when the task was submitted (its name); empty: no team (the "
        "user shared its level as a team of its own). Empty for tasks recorded before teams.",
    )
    team_weight = models.PositiveIntegerField(
        null=True,
        blank=True,
        verbose_name="team weight",
        help_text="The team's weight when the task was submitted; empty with no team.",
    )
    count_before = models.PositiveIntegerField(
        verbose_name="count before",
        help_text="The user's submissions in the window before this one; decided the level.",
    )
    charge = models.CharField(
        max_length=8,
        default="tasks",
        db_default="tasks",
        choices=[("tasks", "tasks"), ("time", "time")],
        verbose_name="charge",
        help_text="What set the level: the count of tasks in the window, or their seconds "
        "(PQH_CHARGE when it was submitted).",
    )
    usage_before = models.FloatField(
        default=0.0,
        db_default=0.0,
        verbose_name="usage before",
        help_text="The user's window usage before this task: the count (charge tasks) or the "
        "seconds charged (charge time). Divided by the weight, it set the level.",
    )
    cost = models.FloatField(
        default=1.0,
        db_default=1.0,
        verbose_name="cost",
        help_text="What the task was charged at submission: 1 (charge tasks), or its estimated "
        "seconds (charge time: the user's recent mean run time), corrected when it ends.",
    )
    run_seconds = models.FloatField(
        null=True,
        blank=True,
        verbose_name="run seconds",
        help_text="Seconds the run that finished spent in the work callable.",
    )
    input = models.JSONField(
        verbose_name="input",
        help_text="The task's input `x`, any JSON value.",
        null=True,
    )
    status = models.CharField(
        max_length=16,
        choices=STATUS_CHOICES,
        default=states.PENDING,
        verbose_name="status",
        help_text="Celery state: PENDING while queued, then STARTED, SUCCESS, FAILURE or REVOKED.",
    )
    aged = models.BooleanField(
        default=False,
        verbose_name="aged",
        help_text="Released ahead of its level because it had waited PQH_MAX_WAIT_SECONDS.",
    )
    submitted_at = models.DateTimeField(
        default=timezone.now, verbose_name="submitted at", help_text="When it was accepted."
    )
    started_at = models.DateTimeField(
        null=True, blank=True, verbose_name="started at", help_text="When a worker started it."
    )
    finished_at = models.DateTimeField(
        null=True, blank=True, verbose_name="finished at", help_text="When it ended."
    )
    queue_seq = models.BigIntegerField(
        db_default=NextVal(models.Value(QUEUE_SEQ)),
        editable=False,
        verbose_name="queue number",
        help_text=(
            "Arrival number from a database sequence, given by the INSERT: the task's name in "
            "the fair queue in Redis, and the tie-break between equal tags there."
        ),
    )
    idempotency_key = models.CharField(
        max_length=IDEMPOTENCY_KEY_MAX_LENGTH,
        null=True,
        blank=True,
        editable=False,
        verbose_name="idempotency key",
        help_text=(
            "The Idempotency-Key header of the submission, if it had one; unique per user, so a "
            "retry returns this task instead of creating another."
        ),
    )
    attempts = models.PositiveSmallIntegerField(
        default=0,
        # Also in the table, so processes of the previous version can still insert rows.
        db_default=0,
        verbose_name="attempts",
        help_text="How many times a worker started it; more than one means a worker was lost "
        "or PostgreSQL failed under it, and it ran again.",
    )
    worker = models.CharField(
        max_length=255,
        blank=True,
        default="",
        verbose_name="worker",
        help_text="The worker that ran it.",
    )

    objects = TaskRecordQuerySet.as_manager()

    class Meta:
        verbose_name = "task"
        verbose_name_plural = "task history"
        ordering = ["-submitted_at"]
        indexes = [
            models.Index(fields=["user", "-submitted_at"], name="taskrecord_user_recent"),
            models.Index(fields=["status", "level", "submitted_at"], name="taskrecord_queue"),
            # The fairness figures (tasks_app/selectors/reports.py) select by time over a period; the start
            # estimate reads the most recently finished tasks (a backward scan of the last one), and the
            # expiry job deletes the oldest finished ones first.
            models.Index(fields=["submitted_at"], name="taskrecord_submitted"),
            models.Index(fields=["started_at"], name="taskrecord_started"),
            models.Index(fields=["finished_at"], name="taskrecord_finished"),
            # The recovery sweeps walk the queued rows in submit order, from a watermark.
            models.Index(
                fields=["submitted_at", "queue_seq"],
                condition=models.Q(status=states.PENDING),
                name="taskrecord_pending",
            ),
        ]
        constraints = [
            models.CheckConstraint(condition=models.Q(level__lte=9), name="taskrecord_level_range"),
            models.CheckConstraint(condition=models.Q(weight__gte=1), name="taskrecord_weight_pos"),
            models.UniqueConstraint(
                fields=["user", "idempotency_key"],
                condition=models.Q(idempotency_key__isnull=False),
                name="taskrecord_user_idempotency_key",
            ),
        ]

    # Set by services.submission.task_submit on the record it returns, not stored: whether the submission
    # replayed an earlier one with the same Idempotency-Key, and the queue position the fair
    # queue reported when it took the task (so the 202 needs no second look-up).
    replayed: bool = False
    position_at_submit: int | None = None

    def __str__(self) -> str:
        return f"{self.task_id} ({self.status}, level {self.level})"

    def wait_seconds(self, now: datetime | None = None) -> float | None:
        """Return start - submit, or for a task still queued, the wait so far."""
        if self.started_at is not None:
            return (self.started_at - self.submitted_at).total_seconds()
        if self.status == states.PENDING:
            return ((now or timezone.now()) - self.submitted_at).total_seconds()
        return None
