"""Writes, by job: submission, publishing to the broker, the worker's run, recovery, and what
users and operators do to tasks afterwards (actions). Every caller goes through these."""
