"""The browser session cookie and the cross-site request checks that go with it."""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response

from app.auth.resolve import COOKIE_NAMES
from app.auth.tokens import Audience
from app.settings import Settings


def set_session_cookie(response: Response, audience: Audience, value: str, *, max_age: int) -> None:
    # __Host- binds the cookie to this exact origin: Secure, Path=/, and no Domain.
    response.set_cookie(
        COOKIE_NAMES[audience],
        value,
        max_age=max_age,
        path="/",
        secure=True,
        httponly=True,
        samesite="lax",
    )


def clear_session_cookie(response: Response, audience: Audience) -> None:
    response.delete_cookie(
        COOKIE_NAMES[audience], path="/", secure=True, httponly=True, samesite="lax"
    )


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def allowed_origins(settings: Settings) -> frozenset[str]:
    return frozenset(
        {origin_of(settings.public_url), *(origin_of(o) for o in settings.allowed_origins)}
    )


def cross_site(request: Request, settings: Settings) -> bool:
    """True when a browser says this request comes from a page of another origin.

    Together with accepting only `application/json` bodies (which no page of another
    origin can send without a CORS preflight we never grant) this stops cross-site
    requests from riding on the session cookie."""
    origin = request.headers.get("origin")
    if origin is None:
        fetch_site = request.headers.get("sec-fetch-site")
        return fetch_site is not None and fetch_site not in ("same-origin", "same-site", "none")
    return origin.lower() not in allowed_origins(settings)


# Browser apps send this header (any value) with every POST signed in by cookie. A page of
# another site cannot add it without a CORS preflight we never grant, so it stands even
# where an old browser leaves out Origin.
CSRF_HEADER = "x-csrf-protection"


def lacks_csrf_header(request: Request, audience: Audience) -> bool:
    """True for a request that would act on the session cookie without the CSRF header."""
    if request.method in ("GET", "HEAD"):
        return False
    rides_on_cookie = bool(request.cookies.get(COOKIE_NAMES[audience])) and not (
        request.headers.get("authorization")
    )
    return rides_on_cookie and not request.headers.get(CSRF_HEADER)
