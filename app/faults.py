"""Switch fault injection from inside a replica, for workshops and alert drills.

    docker compose exec app python -m app.faults set --latency-ms 300 --error-rate 0.1
    docker compose exec app python -m app.faults set --error-rate 1 --route /api/stats
    docker compose exec app python -m app.faults show
    docker compose exec app python -m app.faults clear
    docker compose exec app python -m app.faults memory --mb 512     one worker takes 512 MB and keeps it

The admin API is not reachable through nginx; this talks to the replica it runs in, with the
admin token from its settings. The switch lives in Redis, so every replica follows within a second.
The memory fault is not a switch: it happens once, in the worker that serves it (past the
container's limit the kernel kills that worker and Gunicorn starts another).
"""

import argparse
import json
import os
import sys
import urllib.error
import urllib.request

from app.core.config import Settings, load_or_exit


def _call(settings: Settings, method: str, body: dict[str, object] | None = None, path: str = "") -> tuple[int, str]:
    url = f"http://127.0.0.1:{os.environ.get('PORT', '8000')}/api/admin/faults{path}"
    request = urllib.request.Request(
        url,
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={
            "Authorization": f"Bearer {settings.admin_token.get_secret_value()}",
            "Content-Type": "application/json",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()
    except (urllib.error.URLError, ConnectionError) as error:
        # What the memory fault ends in when it works: the worker died before it could answer.
        reason = getattr(error, "reason", error)
        raise SystemExit(f"faults: the replica gave no answer ({reason}): the worker died, or is not running") from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.faults", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("show", help="print the current switch")
    commands.add_parser("clear", help="turn every fault off")
    set_ = commands.add_parser("set", help="replace the switch with these faults")
    set_.add_argument("--latency-ms", type=int, default=0, help="added to each request (0-30000)")
    set_.add_argument("--error-rate", type=float, default=0.0, help="share of requests answered 500 (0-1)")
    set_.add_argument("--replica", help="only this replica (its X-Replica name)")
    set_.add_argument("--route", help="only paths starting with this prefix, e.g. /api/stats")
    memory = commands.add_parser("memory", help="one worker takes this much memory more and keeps it")
    memory.add_argument("--mb", type=int, required=True, help="megabytes (1-4096)")
    args = parser.parse_args(argv)

    settings = load_or_exit(Settings)
    if not settings.faults_enabled:
        print("faults: fault injection does not exist in production (ENVIRONMENT=production)", file=sys.stderr)
        return 2
    if args.command == "show":
        status, text = _call(settings, "GET")
    elif args.command == "clear":
        status, text = _call(settings, "DELETE")
    elif args.command == "memory":
        status, text = _call(settings, "POST", {"megabytes": args.mb}, path="/memory")
    else:
        body = {"latency_ms": args.latency_ms, "error_rate": args.error_rate}
        body |= {key: value for key, value in (("replica", args.replica), ("route", args.route)) if value}
        status, text = _call(settings, "PUT", body)
    if status >= 400:
        print(f"faults: the replica answered {status}: {text}", file=sys.stderr)
        return 1
    print(text or "cleared")
    return 0


if __name__ == "__main__":
    sys.exit(main())
