"""The OpenAPI document is the truth: schemathesis, every check, against the app under Gunicorn."""

from pathlib import Path

from tests.app.conftest import ADMIN_TOKEN
from tests.app.live import LiveServer
from tests.contract import assert_clean, run_schemathesis


def test_the_app_answers_what_its_openapi_document_says(live: LiveServer, clean: None, tmp_path: Path) -> None:
    """Coverage, fuzzing and stateful phases (links made, read, deleted) with every check:
    documented statuses, bodies and headers, schema-valid input accepted and invalid refused,
    405 with Allow, authentication enforced; no failure and no 5xx. The admin token lets
    DELETE reach the links the stateful phase makes; `ignored_auth` probes without it."""
    outcome = run_schemathesis(
        live.url, f"{live.url}/openapi.json", tmp_path, "--header", f"Authorization: Bearer {ADMIN_TOKEN}"
    )
    assert_clean(outcome)
