"""Reads, by job: tasks (lists, the poll, results), places (positions, the start estimate),
why (a task's priority in words), the detail of one task in one pass, the queue for operators,
and the fairness reports. Writes are in services."""
