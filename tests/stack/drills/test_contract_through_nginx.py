"""The OpenAPI document holds through the edge: schemathesis with every check, through nginx and
TLS (verified against the stack's CA), on the drills stack (local mode: /openapi.json is served;
rate limits raised, so 429s do not hide what the app answers)."""

from pathlib import Path

from tests.contract import assert_clean, run_schemathesis
from tests.stack.stacks import Stack


def admin_token(stack: Stack) -> str:
    """As an operator gets it: from the secret the app replicas read."""
    return stack.compose.run("exec", "-T", "app", "cat", "/run/secrets/admin_token").stdout.strip()


def test_the_api_through_nginx_answers_what_its_openapi_document_says(stack: Stack, tmp_path: Path) -> None:
    """What test_api_contract.py proves against the app, through nginx: nothing nginx answers
    itself or changes on the way (error pages, headers, /ready's public form) breaks the contract."""
    outcome = run_schemathesis(
        stack.https,
        f"{stack.https}/openapi.json",
        tmp_path,
        "--tls-verify",
        str(stack.ca_file),
        "--header",
        f"Authorization: Bearer {admin_token(stack)}",
    )
    assert_clean(outcome)
