"""The page a magic link opens. Opening it changes nothing (mail scanners fetch links);
only pressing its button, a POST from this same site, signs in."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from html import escape
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from app.auth.cookies import cross_site, set_session_cookie
from app.auth.sessions import LIFETIMES
from app.auth.tokens import Audience
from app.auth.viewer import ANONYMOUS
from app.context import Context
from app.db.models import SessionClient
from app.errors import AppError
from app.resolvers.sign_in import redeem_magic_link

if TYPE_CHECKING:
    from app.main import GraphQLEndpoint

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>Sign in</title></head>
<body style="font-family:system-ui,sans-serif;max-width:28rem;margin:4rem auto;padding:0 1rem">
{body}
</body></html>"""


def _page(body: str, status_code: int = 200) -> HTMLResponse:
    return HTMLResponse(
        _PAGE.format(body=body),
        status_code=status_code,
        # same-origin, not no-referrer: under no-referrer a browser sends its form's POST with
        # `Origin: null`, which the cross-site check refuses; the token still never leaves.
        headers={"Cache-Control": "no-store", "Referrer-Policy": "same-origin"},
    )


def magic_link_page(endpoint: GraphQLEndpoint) -> Callable[[Request], Awaitable[Response]]:
    async def page(request: Request) -> Response:
        if request.method == "GET":
            token = escape(request.query_params.get("token", ""), quote=True)
            return _page(
                "<h1>Sign in to your portal</h1>"
                '<form method="post"><input type="hidden" name="token" value="' + token + '">'
                '<button type="submit">Sign in</button></form>'
            )
        if cross_site(request, endpoint.settings):
            return _page("<p>Open the link from your email again.</p>", 403)
        token = str((await request.form()).get("token", ""))
        context = Context(
            request=request,
            response=None,
            db=endpoint.db,
            settings=endpoint.settings,
            viewer=ANONYMOUS,
            request_id=request.state.request_id,
            rate_limiter=endpoint.rate_limiter,
            payments=endpoint.payments,
        )
        try:
            result = await redeem_magic_link(context, token=token, client=SessionClient.BROWSER)
        except AppError as error:
            return _page(f"<h1>Cannot sign in</h1><p>{escape(error.message)}</p>", 400)
        redirect = RedirectResponse(endpoint.settings.portal_app_url, status_code=303)
        assert result.credentials.cookie is not None
        set_session_cookie(
            redirect,
            Audience.PORTAL,
            result.credentials.cookie,
            max_age=int(LIFETIMES[SessionClient.BROWSER].total_seconds()),
        )
        return redirect

    return page
