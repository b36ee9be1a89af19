"""An operator's own work function, for the test that PQH_TASK_CALLABLE is honoured."""


def echo_or_explode(x):
    """Return {"echo": x}, or fail when x is "boom"."""
    if x == "boom":
        raise ValueError("the service refused boom")
    return {"echo": x}


def misbehave(x):
    """Fail in the way `x` names, as an operator's callable might; otherwise echo `x`."""
    import os
    import signal
    import time

    if x == "overrun":
        time.sleep(30)  # past the test's soft time limit
    if x == "die":
        os.kill(os.getpid(), signal.SIGKILL)  # the pool process is lost mid-task
    if x == "unstorable":
        return {1, 2}  # a set: JSON cannot hold it
    if x == "long":
        raise ValueError("a very long message " * 100)
    if x == "leaky":
        raise RuntimeError(
            "could not reach 10.1.2.3\nTraceback (most recent call last):\n  File secret.py"
        )
    return {"echo": x}


def timed(x):
    """Work for x["s"] seconds. With x["die_once"] (a file path) the first run to see no file
    there creates it and kills its own pool process: the worker is lost mid-task, once."""
    import os
    import signal
    import time
    from pathlib import Path

    flag = x.get("die_once")
    if flag and not Path(flag).exists():
        Path(flag).touch()
        os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(x["s"])
    return {"slept": x["s"]}
