"""The level sequence a hog gets over N submissions, through the HTTP API of a running pqh.

Run against `make run` (or any pqh): `.venv/bin/python bench/hog_levels.py --url http://127.0.0.1:8000`.
Creates (or reuses) the users hog_w1 (weight 1) and hog_w6 (weight 6), clears their windows,
submits N tasks each over HTTP, cancels them again so the worker is not kept busy, and writes
bench/results/hog_levels.json.
"""

import argparse
import json
import os
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pqh_site.settings")


def call(method: str, url: str, token: str, body: dict | None = None) -> dict:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Authorization", f"Token {token}")
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read() or b"null")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("-n", type=int, default=40, help="submissions per hog")
    parser.add_argument("--keep", action="store_true", help="leave the tasks queued")
    args = parser.parse_args()

    import django

    django.setup()
    from pqh_site.core import core
    from users_app.services import api_user_create

    results = {}
    for name, weight in (("hog_w1", 1), ("hog_w6", 6)):
        user, token, _ = api_user_create(username=name, weight=weight)
        core().redis.delete(core().keys.window(user.pk))
        levels, ids = [], []
        for i in range(args.n):
            body = call("POST", f"{args.url}/task", token.key, {"x": i})
            levels.append(body["level"])
            ids.append(body["task_id"])
        if not args.keep:
            for task_id in ids:
                try:
                    call("DELETE", f"{args.url}/api/tasks/{task_id}/", token.key)
                except urllib.error.HTTPError:
                    pass  # already started
        results[name] = {"weight": weight, "levels": levels}
        print(f"{name} (weight {weight}): {' '.join(map(str, levels))}")
    out = ROOT / "bench" / "results" / "hog_levels.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"url": args.url, "at": time.time(), "results": results}, indent=2))
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
