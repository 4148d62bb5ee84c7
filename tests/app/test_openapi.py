"""What the OpenAPI document says of errors is what the app answers (schemathesis checks the rest
at scale: test_api_contract.py)."""

import jsonschema
import pytest
from fastapi.testclient import TestClient


def response_schema(client: TestClient, path: str, method: str, status: int) -> dict:
    """The documented body of one answer, resolvable on its own (with the document's components)."""
    document = client.get("/openapi.json").json()
    content = document["paths"][path][method]["responses"][str(status)]["content"]
    return {**content["application/json"]["schema"], "components": document["components"]}


@pytest.mark.parametrize(
    ("method", "path", "body", "params", "template"),
    [
        ("post", "/api/links", {"url": "ftp://x", "code": "a"}, None, "/api/links"),
        ("post", "/api/links", None, None, "/api/links"),
        ("get", "/api/links", None, {"limit": 0, "cursor": "x"}, "/api/links"),
        ("get", "/api/links/x", None, None, "/api/links/{code}"),
        ("get", "/api/stats/top", None, {"window": "31d"}, "/api/stats/top"),
    ],
)
def test_422_bodies_match_the_documented_schema(
    client: TestClient, method: str, path: str, body: dict | None, params: dict | None, template: str
) -> None:
    """FastAPI documents a 422 whose `detail` is a list; the app answers a sentence and the field
    errors. The document says so, for every operation that validates input."""
    response = client.request(method, path, json=body, params=params)
    assert response.status_code == 422
    jsonschema.validate(response.json(), response_schema(client, template, method, 422))
    assert "HTTPValidationError" not in client.get("/openapi.json").text


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("PUT", "/api/links/abc", "GET, DELETE"),
        ("PATCH", "/api/links", "GET, POST"),
        ("POST", "/health", "GET"),
        ("DELETE", "/api/stats/top", "GET"),
    ],
)
def test_405_allow_lists_every_method_of_the_path(client: TestClient, method: str, path: str, allow: str) -> None:
    """Allow names every method the path supports, across routes: GET and DELETE of
    /api/links/{code} are two routes, and Starlette alone would name only the first's."""
    response = client.request(method, path)
    assert response.status_code == 405
    assert response.headers["allow"] == allow
    assert response.json() == {"detail": "Method Not Allowed"}


def test_every_operation_documents_the_edges_429(client: TestClient) -> None:
    """nginx's rate limit can answer any route of the deployed API."""
    document = client.get("/openapi.json").json()
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            assert "Retry-After" in operation["responses"]["429"]["headers"], (method, path)
