"""Waiting for a task without a thread: long polls and event streams on the wait server."""
