"""The JSON lines Alloy ships to Loki, as the stack really writes them.

Loki and Alloy cannot run everywhere (local images leave them out), so these tests check the
lines themselves against loki/config.alloy and the dashboards' LogQL: the fields the pipeline
and the queries use are the fields nginx and the app write.
"""

import json
import re
import uuid

from devservers import eventually
from tests.compose import ROOT
from tests.dashboards import queries
from tests.stack.stacks import Stack

ALLOY = (ROOT / "loki" / "config.alloy").read_text()


def pipeline_fields(name: str) -> set[str]:
    """The source fields of the stage.json in the stage.match whose pipeline_name is `name`."""
    block = ALLOY.split(f'pipeline_name = "{name}"', 1)[1].split("stage.match", 1)[0]
    expressions = re.search(r"stage\.json\s*\{\s*expressions\s*=\s*\{([^}]*)\}", block)
    assert expressions, f"no stage.json in the {name} pipeline"
    return set(re.findall(r'=\s*"([^"]+)"', expressions.group(1)))


def lines(stack: Stack, service: str, needle: str) -> list[dict]:
    output = stack.compose.run("logs", "--no-color", "--no-log-prefix", service).stdout
    return [json.loads(line) for line in output.splitlines() if needle in line]


def test_one_request_id_in_nginx_and_app_lines(stack: Stack) -> None:
    """A client's X-Request-ID is in nginx's access line and in the app's: the Logs dashboard's join."""
    request_id = f"logtest-{uuid.uuid4().hex}"
    with stack.client() as client:
        response = client.get("/api/links", params={"limit": 1}, headers={"X-Request-ID": request_id})
    assert response.headers["x-request-id"] == request_id
    nginx = eventually(lambda: lines(stack, "nginx", request_id), "nginx's line", timeout=15, interval=0.5)
    app = eventually(lambda: lines(stack, "app", request_id), "the app's line", timeout=15, interval=0.5)
    assert [line["request_id"] for line in nginx] == [request_id]
    assert [line["request_id"] for line in app] == [request_id]
    assert app[0]["route"] == "/api/links" and nginx[0]["status"] == 200


def test_lines_carry_the_fields_the_pipeline_parses(stack: Stack) -> None:
    """Every field loki/config.alloy extracts is in the app's and nginx's real lines, by that name."""
    request_id = f"fields-{uuid.uuid4().hex}"
    with stack.client() as client:
        client.get("/health", headers={"X-Request-ID": request_id})
    app = eventually(lambda: lines(stack, "app", request_id), "the app's line", timeout=15, interval=0.5)[0]
    nginx = eventually(lambda: lines(stack, "nginx", request_id), "nginx's line", timeout=15, interval=0.5)[0]
    assert pipeline_fields("app") <= app.keys(), pipeline_fields("app") - app.keys()
    assert pipeline_fields("nginx") <= nginx.keys(), pipeline_fields("nginx") - nginx.keys()
    # The level label: the app writes one; nginx's is derived from status, a number.
    assert app["level"] == "info"
    assert isinstance(nginx["status"], int)
    # The rate-limit counter matches on this value of nginx's $limit_req_status.
    assert "rate_limit" in nginx


def test_every_app_line_is_json_with_a_level(stack: Stack) -> None:
    """Nothing of the app's output lands in the pipeline's "unparsed" branch."""
    output = stack.compose.run("logs", "--no-color", "--no-log-prefix", "app").stdout
    entries = [json.loads(line) for line in output.splitlines() if line.strip()]
    assert entries
    assert all(entry.get("level") for entry in entries)


def test_logql_uses_only_the_pipeline_labels() -> None:
    """Stream selectors in the dashboards name only labels the pipeline sets."""
    labels = {"service", "replica", "stream", "level"}
    for dashboard, panel, expr in queries("loki", request_id="x"):
        for selector in re.findall(r"\{([^}]*)\}", expr.split("|")[0]):
            used = set(re.findall(r"(\w+)\s*[=!]~?", selector))
            assert used <= labels, f"{dashboard} / {panel}: {used - labels} in {expr}"
