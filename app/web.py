"""The portal web app (web/, built by Vite into web/dist) served at /portal/: hashed assets
cached for a year, and the app's page for every other address under /portal (history
fallback), never cached, under a strict Content-Security-Policy."""

from __future__ import annotations

import mimetypes
import re
from html import escape
from pathlib import Path
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Route

from app.settings import Settings

WEB_BUILD = Path(__file__).resolve().parents[1] / "web" / "dist"
STRIPE_API = "https://api.stripe.com"
# Vite's output names: letters, digits, dashes, underscores and dots, one folder deep.
_ASSET_NAME = re.compile(r"[A-Za-z0-9_.-]+\Z")
_IMMUTABLE = "public, max-age=31536000, immutable"
# A page that carries a one-time token in its address never hands it on to another site
# (same-origin: under no-referrer a browser's POSTs would carry `Origin: null`).
_PAGE_HEADERS = {
    "Cache-Control": "no-cache",
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
}


def stand_in_url(settings: Settings) -> str | None:
    """The Stripe stand-in the page pays through in development and tests: the API base when
    it is not Stripe's own. Never in production, whatever the settings say."""
    if settings.is_production or not settings.payments_enabled:
        return None
    base = settings.stripe_api_base.rstrip("/")
    return None if base == STRIPE_API else base


def content_security_policy(settings: Settings) -> str:
    origin = ""
    stand_in = stand_in_url(settings)
    if stand_in is not None:
        parts = urlsplit(stand_in)
        origin = f" {parts.scheme}://{parts.netloc}"
    return "; ".join(
        [
            "default-src 'none'",
            "script-src 'self' https://js.stripe.com",
            "style-src 'self'",
            "img-src 'self' data:",
            "font-src 'self'",
            f"connect-src 'self' {STRIPE_API}{origin}",
            "frame-src https://js.stripe.com https://hooks.stripe.com",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
            "object-src 'none'",
        ]
    )


def web_routes(settings: Settings, build: Path = WEB_BUILD) -> list[BaseRoute]:
    policy = content_security_policy(settings)
    stand_in = stand_in_url(settings)

    async def asset(request: Request) -> Response:
        name = request.path_params["name"]
        path = build / "assets" / name
        if not _ASSET_NAME.match(name) or not path.is_file():
            return Response("Not found", status_code=404, media_type="text/plain")
        media_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
        return Response(
            path.read_bytes(),
            media_type=media_type,
            headers={"Cache-Control": _IMMUTABLE, "X-Content-Type-Options": "nosniff"},
        )

    async def page(_: Request) -> Response:
        index = build / "index.html"
        if not index.is_file():
            return HTMLResponse(
                "<!doctype html><title>Portal not built</title>"
                "<h1>The portal web app is not built</h1>"
                "<p>Run <code>make web</code> (or <code>make run</code>), then reload.</p>",
                status_code=503,
                headers={**_PAGE_HEADERS, "Cache-Control": "no-store"},
            )
        html = index.read_text(encoding="utf-8")
        if stand_in is not None:
            meta = f'<meta name="portal-stripe-standin" content="{escape(stand_in, quote=True)}">'
            html = html.replace("</head>", f"    {meta}\n  </head>", 1)
        return HTMLResponse(html, headers={**_PAGE_HEADERS, "Content-Security-Policy": policy})

    return [
        Route("/portal/assets/{name}", asset, methods=["GET", "HEAD"]),
        Route("/portal", page, methods=["GET", "HEAD"]),
        Route("/portal/{path:path}", page, methods=["GET", "HEAD"]),
    ]
