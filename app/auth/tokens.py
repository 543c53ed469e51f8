"""Short-lived bearer access tokens (JWT, HS256), one audience per schema."""

from __future__ import annotations

import enum
import hashlib
import hmac
import time
import uuid
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import OctKey

from app.settings import Settings

_ALGORITHMS = ["HS256"]


class Audience(enum.StrEnum):
    STAFF = "portal-gateway:staff"
    PORTAL = "portal-gateway:portal"


@dataclass(frozen=True, slots=True)
class AccessClaims:
    subject: uuid.UUID
    tenant_id: uuid.UUID | None
    session_id: uuid.UUID
    audience: Audience


def _key(settings: Settings) -> OctKey:
    return _key_of(settings.secret_key)


@lru_cache(maxsize=4)
def _key_of(secret: str) -> OctKey:
    # A key of its own for tokens, so the secret itself never signs anything directly.
    derived = hmac.new(secret.encode(), b"access-token", hashlib.sha256).digest()
    return OctKey.import_key(derived)


def issue_access_token(
    settings: Settings,
    *,
    audience: Audience,
    subject: uuid.UUID,
    session_id: uuid.UUID,
    tenant_id: uuid.UUID | None = None,
    now: float | None = None,
) -> str:
    issued_at = int(now if now is not None else time.time())
    claims: dict[str, Any] = {
        "iss": settings.public_url,
        "aud": audience.value,
        "sub": str(subject),
        "iat": issued_at,
        "exp": issued_at + settings.access_token_seconds,
        "jti": uuid.uuid4().hex,
        "sid": str(session_id),
    }
    if tenant_id is not None:
        claims["tid"] = str(tenant_id)
    return jwt.encode(
        {"alg": "HS256", "typ": "JWT"}, claims, _key(settings), algorithms=_ALGORITHMS
    )


def read_access_token(settings: Settings, token: str, *, audience: Audience) -> AccessClaims | None:
    """The token's claims when it is genuine, current and meant for this audience; else None.

    A token's signature and claims are checked once: what they said is kept (a bounded
    number of tokens, each until it expires), as it cannot change. Whether its session and
    account still stand is read from the database on every request all the same."""
    verified = _verified(token, audience, settings.secret_key, settings.public_url)
    if verified is None:
        return None
    claims, expires_at = verified
    return claims if time.time() < expires_at else None


@lru_cache(maxsize=4096)
def _verified(
    token: str, audience: Audience, secret: str, issuer: str
) -> tuple[AccessClaims, float] | None:
    try:
        decoded = jwt.decode(token, _key_of(secret), algorithms=_ALGORITHMS)
        jwt.JWTClaimsRegistry(
            iss={"essential": True, "value": issuer},
            aud={"essential": True, "value": audience.value},
            exp={"essential": True},
            sub={"essential": True},
            sid={"essential": True},
        ).validate(decoded.claims)
        subject = uuid.UUID(decoded.claims["sub"])
        tenant = decoded.claims.get("tid")
        claims = AccessClaims(
            subject=subject,
            tenant_id=uuid.UUID(tenant) if tenant else None,
            session_id=uuid.UUID(decoded.claims["sid"]),
            audience=audience,
        )
        return claims, float(decoded.claims["exp"])
    except (JoseError, ValueError, KeyError, TypeError):
        return None
