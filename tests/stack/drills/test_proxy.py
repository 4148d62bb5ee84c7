"""nginx under traffic: a reload."""

import time

from tests.stack.drills.conftest import psql, report
from tests.stack.drills.traffic import CLOSED_UNANSWERED, CREATED_URL_PREFIX, Traffic
from tests.stack.stacks import Stack


def test_nginx_reload(stack: Stack, traffic: Traffic) -> None:
    """`nginx -s reload`: new workers take over, the old ones finish their requests in flight and
    close their idle connections. Idempotent requests see no error (a client sending on a
    connection at the instant it is closed gets no answer and retries, as HTTP/1.1 clients do); a
    POST caught that way gets no answer either, and was never applied: nginx had not read it."""
    with traffic.running() as record:
        for _ in range(3):
            stack.compose.run("exec", "-T", "nginx", "nginx", "-s", "reload")
            time.sleep(1.5)
    failures = record.failures()
    stored = set(psql(stack, f"SELECT url FROM links WHERE url LIKE '{CREATED_URL_PREFIX}%'").split())
    figures = report(stack, record, "nginx reloaded 3 times", f"POSTs caught by an idle close: {len(failures)}")
    assert all(o.kind == "create" and CLOSED_UNANSWERED in o.detail for o in failures), figures
    assert not {o.url for o in failures} & stored, "a POST that got no answer was applied"
    assert record.longest_gap() < 1.0, figures
