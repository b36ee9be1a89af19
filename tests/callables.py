"""An operator's own work function, for the test that PQH_TASK_CALLABLE is honoured."""


def echo_or_explode(x):
    """Return {"echo": x}, or fail when x is "boom"."""
    if x == "boom":
        raise ValueError("the service refused boom")
    return {"echo": x}
