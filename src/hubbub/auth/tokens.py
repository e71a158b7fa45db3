"""The secrets behind sessions and API tokens, and how they are stored.

A secret is shown once (a cookie, or a token in the API's answer) and the
database keeps only its SHA-256. The secrets are 256 random bits, so a fast
hash is enough: nobody can guess the preimage of a stored hash, and a leaked
database does not hand out sessions.
"""

from __future__ import annotations

import hashlib
import secrets

TOKEN_PREFIX = "hb_"  # noqa: S105 (a prefix, not a secret)
"""API tokens start with this, so secret scanners and people can tell them apart."""

MAX_SECRET = 128
"""Longer presented secrets are refused unhashed: ours are about 45 characters."""


def new_session_secret() -> str:
    return secrets.token_urlsafe(32)


def new_api_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def plausible_session_secret(secret: str) -> bool:
    return 0 < len(secret) <= MAX_SECRET


def plausible_api_token(token: str) -> bool:
    return token.startswith(TOKEN_PREFIX) and len(token) <= MAX_SECRET
