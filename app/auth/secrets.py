"""Random secrets handed to clients, of which only a hash is ever stored."""

from __future__ import annotations

import hashlib
import secrets


def new_secret() -> tuple[str, str]:
    """A fresh secret (256 bits, URL-safe) and the hash to store in its place."""
    secret = secrets.token_urlsafe(32)
    return secret, hash_secret(secret)


def hash_secret(secret: str) -> str:
    # The secrets are random and long, so a fast hash is enough: nothing here is guessable.
    return hashlib.sha256(secret.encode()).hexdigest()
