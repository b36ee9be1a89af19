"""How many random workloads a property of the reference model is checked on.

`make test` (and so CI) sets PQH_TEST_SWEEP=full: every seed. `make test-unit`, or pytest run by
hand, checks every fifth seed and the seeds each test names as the worst known, so that the unit
tier stays well under 30 s while still meeting the cases closest to each bound."""

import os

STRIDE = 5


def full() -> bool:
    return os.environ.get("PQH_TEST_SWEEP") == "full"


def seeds(total: int, *, worst: tuple[int, ...] = ()) -> list[int]:
    """Seeds 0..total-1 under a full sweep; otherwise every STRIDE-th one and `worst`."""
    if full():
        return list(range(total))
    return sorted(set(range(0, total, STRIDE)) | {seed for seed in worst if seed < total})
