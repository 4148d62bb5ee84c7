"""The link API: every endpoint, and every bad input answered with a 4xx that names the field."""

import pytest
from fastapi.testclient import TestClient


def create(client: TestClient, url: str = "https://example.com/page", **extra: object) -> dict:
    response = client.post("/api/links", json={"url": url, **extra})
    assert response.status_code == 201, response.text
    return response.json()


def all_codes(client: TestClient) -> list[str]:
    return [item["code"] for item in client.get("/api/links", params={"limit": 100}).json()["items"]]


class TestCreate:
    def test_generated_code(self, client: TestClient) -> None:
        """A link without a code gets a fresh 7-character one and a short URL on the public base."""
        link = create(client)
        assert len(link["code"]) == 7
        assert link["short_url"] == f"https://localhost:8443/{link['code']}"
        assert link["clicks"] == 0

    def test_custom_code_and_location(self, client: TestClient) -> None:
        """A custom code is kept as given; Location points at its metadata."""
        response = client.post("/api/links", json={"url": "http://example.org", "code": "My_code-1"})
        assert response.status_code == 201
        assert response.json()["code"] == "My_code-1"
        assert response.headers["location"] == "/api/links/My_code-1"

    def test_taken_code_is_409(self, client: TestClient) -> None:
        """A second link with the same code is refused; the first stays as it was."""
        create(client, code="taken")
        response = client.post("/api/links", json={"url": "https://other.example", "code": "taken"})
        assert response.status_code == 409
        assert "taken" in response.json()["detail"]
        assert client.get("/api/links/taken").json()["url"] == "https://example.com/page"

    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({"url": "ftp://example.com/file"}, "url"),
            ({"url": "javascript:alert(1)"}, "url"),
            ({"url": "https://"}, "url"),
            ({"url": "https://exa mple.com"}, "url"),
            ({"url": "https://example.com/" + "a" * 2048}, "url"),
            ({"url": ""}, "url"),
            ({}, "url"),
            ({"url": 42}, "url"),
            ({"url": "https://example.com", "code": "ab"}, "code"),
            ({"url": "https://example.com", "code": "a" * 33}, "code"),
            ({"url": "https://example.com", "code": "bad code"}, "code"),
            ({"url": "https://example.com", "code": "héllo"}, "code"),
            ({"url": "https://example.com", "code": "health"}, "code"),
            ({"url": "https://example.com", "code": "API"}, "code"),
            ({"url": "https://example.com", "code": "metrics"}, "code"),
            ({"url": "https://example.com", "extra": 1}, "extra"),
        ],
    )
    def test_bad_input_is_422_naming_the_field(self, client: TestClient, body: dict, field: str) -> None:
        """Each bad input gets a 422 whose message names the field, and nothing is stored."""
        response = client.post("/api/links", json=body)
        assert response.status_code == 422, response.text
        detail = response.json()["detail"]
        assert detail.startswith(f"{field}: ") or f"; {field}: " in detail, detail
        assert all_codes(client) == []

    def test_malformed_json_is_422(self, client: TestClient) -> None:
        """A body that is not JSON is a client error with a message, not a 500."""
        response = client.post("/api/links", content=b"{not json", headers={"content-type": "application/json"})
        assert response.status_code == 422
        assert response.json()["detail"]

    def test_longest_allowed_url(self, client: TestClient) -> None:
        """2,048 characters is the limit, inclusive."""
        url = "https://example.com/" + "a" * (2048 - len("https://example.com/"))
        assert create(client, url=url)["url"] == url


class TestRead:
    def test_metadata(self, client: TestClient) -> None:
        """GET /api/links/{code} returns what was stored."""
        link = create(client, code="meta")
        assert client.get("/api/links/meta").json() == link

    def test_unknown_code_is_404(self, client: TestClient) -> None:
        response = client.get("/api/links/nothere")
        assert response.status_code == 404
        assert "nothere" in response.json()["detail"]

    def test_malformed_code_is_422(self, client: TestClient) -> None:
        assert client.get("/api/links/x").status_code == 422


class TestList:
    def test_keyset_pages_cover_everything_once(self, client: TestClient) -> None:
        """Walking the cursor visits every link exactly once, newest first."""
        codes = [create(client, code=f"page{i:02d}")["code"] for i in range(7)]
        seen, cursor = [], None
        while True:
            params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
            page = client.get("/api/links", params=params).json()
            seen += [item["code"] for item in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert seen == list(reversed(codes))

    @pytest.mark.parametrize(
        "params", [{"limit": 0}, {"limit": 101}, {"limit": "x"}, {"cursor": "abc"}, {"cursor": "-1"}, {"cursor": "0"}]
    )
    def test_bad_paging_is_422(self, client: TestClient, params: dict) -> None:
        response = client.get("/api/links", params=params)
        assert response.status_code == 422
        assert next(iter(params)) in response.json()["detail"]


class TestDelete:
    def test_delete_then_gone(self, client: TestClient) -> None:
        """A deleted link disappears from metadata, listing and redirects."""
        create(client, code="gone")
        assert client.get("/gone", follow_redirects=False).status_code == 307
        assert client.delete("/api/links/gone").status_code == 204
        assert client.get("/api/links/gone").status_code == 404
        assert client.get("/gone", follow_redirects=False).status_code == 404
        assert all_codes(client) == []

    def test_delete_unknown_is_404(self, client: TestClient) -> None:
        assert client.delete("/api/links/nothere").status_code == 404
