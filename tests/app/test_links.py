"""The link API: every endpoint, every bad input answered with a 4xx that names the field, and
who may delete or list links."""

import hashlib
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from app.core.config import Settings
from app.main import create_app
from devservers import RedisServer
from tests.app.conftest import ADMIN_TOKEN, sql


def create(client: TestClient, url: str = "https://example.com/page", **extra: object) -> dict:
    """Creates a link; its JSON, the management token included."""
    response = client.post("/api/links", json={"url": url, **extra})
    assert response.status_code == 201, response.text
    return response.json()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def delete(client: TestClient, link: dict) -> int:
    """Deletes a link with its own management token; the status."""
    return client.delete(f"/api/links/{link['code']}", headers=bearer(link["management_token"])).status_code


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
            ({"url": "https://bücher.example"}, "url"),
            ({"url": "https://example.com/ä"}, "url"),
            ({"url": "https://[::1]/"}, "url"),
            ({"url": "https://example.com:65536/"}, "url"),
            ({"url": "https://example.com:8o/"}, "url"),
            ({"url": "https://example.com/" + "a" * 2048}, "url"),
            ({"url": ""}, "url"),
            ({}, "url"),
            ({"url": 42}, "url"),
            ({"url": "https://example.com", "code": "ab"}, "code"),
            ({"url": "https://example.com", "code": "a" * 33}, "code"),
            ({"url": "https://example.com", "code": "bad code"}, "code"),
            ({"url": "https://example.com", "code": "héllo"}, "code"),
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

    @pytest.mark.parametrize("code", ["health", "API", "metrics", "Ready"])
    def test_reserved_code_is_409(self, client: TestClient, code: str) -> None:
        """A code that is one of the service's own paths (any case) is refused like a taken one:
        the schema accepts its shape, the service's state refuses it."""
        response = client.post("/api/links", json={"url": "https://example.com", "code": code})
        assert response.status_code == 409
        assert response.json() == {"detail": f"code '{code}' is reserved"}
        assert all_codes(client) == []

    @pytest.mark.parametrize(
        "url",
        [
            "HTTPS://EXAMPLE.COM",
            "http://user:pass@example.com:8080/p?q=1#f",
            "https://127.0.0.1:65535/",
            "https://xn--bcher-kva.example/%C3%A4?q=[1]&r={2}",
            "https://example.com?",
            "http://a",
        ],
    )
    def test_urls_the_schema_accepts_are_accepted(self, client: TestClient, url: str) -> None:
        assert create(client, url=url)["url"] == url

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
        del link["management_token"]  # shown once, at creation
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

    def test_a_cursor_past_bigint_lists_from_the_newest(self, client: TestClient) -> None:
        """The pattern accepts 19 digits, more than a bigint holds (schemathesis found the 500)."""
        response = client.get("/api/links", params={"cursor": "9355306284408514103", "limit": 1})
        assert response.status_code == 200, response.text

    @pytest.mark.parametrize(
        "params", [{"limit": 0}, {"limit": 101}, {"limit": "x"}, {"cursor": "abc"}, {"cursor": "-1"}, {"cursor": "0"}]
    )
    def test_bad_paging_is_422(self, client: TestClient, params: dict) -> None:
        response = client.get("/api/links", params=params)
        assert response.status_code == 422
        assert next(iter(params)) in response.json()["detail"]


class TestDelete:
    def test_delete_with_the_links_token_then_gone(self, client: TestClient) -> None:
        """The creator's management token deletes the link: gone from metadata, listing and redirects."""
        link = create(client, code="gone")
        assert client.get("/gone", follow_redirects=False).status_code == 307
        assert delete(client, link) == 204
        assert client.get("/api/links/gone").status_code == 404
        assert client.get("/gone", follow_redirects=False).status_code == 404
        assert all_codes(client) == []

    @pytest.mark.parametrize(
        "headers",
        [
            {},
            bearer("not-the-token"),
            {"Authorization": "Basic dXNlcjpwYXNz"},
            bearer(ADMIN_TOKEN + "x"),
        ],
        ids=["missing", "wrong", "not-bearer", "admin-token-plus-one"],
    )
    def test_delete_without_the_right_token_is_401(self, client: TestClient, headers: dict) -> None:
        """No token, a wrong one, or another scheme: 401 with WWW-Authenticate, and the link stays."""
        create(client, code="mine")
        response = client.delete("/api/links/mine", headers=headers)
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"
        assert response.json() == {"detail": "this link's management token (or the admin token) is missing or wrong"}
        assert all_codes(client) == ["mine"]

    def test_another_links_token_does_not_delete(self, client: TestClient) -> None:
        create(client, code="target")
        other = create(client, code="other")
        response = client.delete("/api/links/target", headers=bearer(other["management_token"]))
        assert response.status_code == 401
        assert sorted(all_codes(client)) == ["other", "target"]

    def test_admin_token_deletes_any_link(self, client: TestClient, admin_headers: dict) -> None:
        create(client, code="anyone")
        assert client.delete("/api/links/anyone", headers=admin_headers).status_code == 204
        assert all_codes(client) == []

    def test_unknown_code_is_404_for_the_admin_only(self, client: TestClient, admin_headers: dict) -> None:
        """Only the admin learns that a code names no link; any other token is refused as for a
        link that exists, so a token cannot be used to probe for codes."""
        assert client.delete("/api/links/nothere", headers=admin_headers).status_code == 404
        assert client.delete("/api/links/nothere", headers=bearer("a-guess")).status_code == 401

    def test_a_deleted_links_token_does_not_delete_its_successor(self, client: TestClient) -> None:
        """The token belongs to the link, not to the code: a new link under the same code is safe."""
        first = create(client, code="reused")
        assert delete(client, first) == 204
        create(client, code="reused")
        response = client.delete("/api/links/reused", headers=bearer(first["management_token"]))
        assert response.status_code == 401
        assert all_codes(client) == ["reused"]

    def test_link_older_than_tokens_is_deleted_by_the_admin_only(
        self, client: TestClient, migrated: dict[str, str], admin_headers: dict
    ) -> None:
        """Rows from before migration 0003 have no digest: no management token matches them."""
        sql(migrated, "INSERT INTO links (code, url) VALUES ('legacy', 'https://example.com')")
        assert client.delete("/api/links/legacy", headers=bearer("")).status_code == 401
        assert client.delete("/api/links/legacy", headers=bearer("anything")).status_code == 401
        assert client.delete("/api/links/legacy", headers=admin_headers).status_code == 204

    def test_token_is_stored_only_as_its_sha256_digest(self, client: TestClient, migrated: dict[str, str]) -> None:
        """The row holds the SHA-256 digest, never the token; reads and listings never show either."""
        link = create(client, code="hashed")
        token = link["management_token"]
        assert len(token) >= 43  # 32 random bytes, URL-safe base64
        stored = sql(migrated, "SELECT token_hash FROM links WHERE code = 'hashed'")
        assert stored == hashlib.sha256(token.encode()).digest()
        row = str(sql(migrated, "SELECT row_to_json(links)::text FROM links WHERE code = 'hashed'"))
        assert token not in row
        assert "management_token" not in client.get("/api/links/hashed").json()
        listing = client.get("/api/links").text
        assert token not in listing and "token" not in listing

    def test_unauthenticated_delete_never_reaches_redis(self, client: TestClient, redis_server: RedisServer) -> None:
        """The token is checked before the cache is touched: with Redis down, a delete without the
        right token is 401, not the 503 of a delete that tried to invalidate the cache."""
        create(client, code="guarded")
        redis_server.stop()
        try:
            assert client.delete("/api/links/guarded").status_code == 401
            assert client.delete("/api/links/guarded", headers=bearer("wrong")).status_code == 401
        finally:
            redis_server.start()


@pytest.fixture
def production(settings: Settings, clean: None) -> Iterator[TestClient]:
    with TestClient(create_app(settings.model_copy(update={"environment": "production"}))) as client:
        yield client


class TestListingInProduction:
    def test_listing_needs_the_admin_token_in_production(self, production: TestClient, admin_headers: dict) -> None:
        """Production: no listing of every link and its target without the admin token."""
        create(production, code="private")
        for headers in ({}, bearer("wrong"), {"Authorization": f"Basic {ADMIN_TOKEN}"}):
            response = production.get("/api/links", headers=headers)
            assert response.status_code == 401, headers
            assert response.headers["www-authenticate"] == "Bearer"
            assert response.json() == {"detail": "listing links needs the admin token in production"}
        response = production.get("/api/links", headers=admin_headers)
        assert response.status_code == 200
        assert [item["code"] for item in response.json()["items"]] == ["private"]

    def test_listing_is_open_locally(self, client: TestClient) -> None:
        """Locally (workshops) the listing needs no token."""
        create(client, code="open")
        assert client.get("/api/links").status_code == 200
