"""Management tokens: a link's secret, given to its creator once and kept only as a digest.

SHA-256, not a slow password hash: the token is 256 random bits (`secrets.token_urlsafe(32)`), so
there is nothing to guess from a stolen digest, and a salt or key stretching would only cost CPU
on every delete. A digest of a fixed length also makes the comparison constant-time.
"""

import hashlib
import hmac
import secrets

TOKEN_BYTES = 32


def new_token() -> tuple[str, bytes]:
    """A fresh token and the digest to store."""
    token = secrets.token_urlsafe(TOKEN_BYTES)
    return token, digest(token)


def digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def matches(token: str, stored: bytes | None) -> bool:
    """Whether `token` is the one whose digest was stored; a link without one (made before
    migration 0003) matches no token."""
    return stored is not None and hmac.compare_digest(digest(token), stored)


def same_secret(given: str, expected: str) -> bool:
    """Constant-time equality of two secrets as sent (the admin token)."""
    return hmac.compare_digest(given.encode(), expected.encode())
