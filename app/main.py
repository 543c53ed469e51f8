"""The application factory: both GraphQL schemas, health checks, and their middleware."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import sqlalchemy as sa
from cross_web import HTTPException
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from strawberry.asgi import GraphQL
from strawberry.types.unset import UNSET

from app.auth.cookies import cross_site, lacks_csrf_header
from app.auth.ratelimit import DatabaseRateLimiter, RateLimiter, RedisRateLimiter
from app.auth.resolve import resolve_viewer
from app.auth.tokens import Audience
from app.context import Context
from app.db.scope import SYSTEM
from app.db.session import Database, create_engine
from app.errors import ErrorCode, Unauthenticated
from app.files import logo_routes
from app.files.certificates import CERTIFICATE_PATH, certificate_download
from app.http import BodyLimitMiddleware, RequestIdMiddleware
from app.magic_link import magic_link_page
from app.mail.setup import mail_worker
from app.payments import Payments
from app.schema.build import GatewaySchema
from app.schema.portal import portal_schema
from app.schema.staff import staff_schema
from app.settings import Settings, get_settings

logger = logging.getLogger("app")

_REFUSAL_CODES = {401: ErrorCode.UNAUTHENTICATED, 403: ErrorCode.CSRF_FAILED}


class GraphQLEndpoint(GraphQL[Context, None]):
    """One schema's HTTP endpoint; it builds the per-request context."""

    def __init__(
        self,
        schema: GatewaySchema,
        *,
        db: Database,
        settings: Settings,
        audience: Audience,
        rate_limiter: RateLimiter,
        payments: Payments,
    ) -> None:
        super().__init__(
            schema,
            graphql_ide="graphiql" if settings.is_development else None,
            allow_queries_via_get=True,
        )
        self.db = db
        self.settings = settings
        self.audience = audience
        self.rate_limiter = rate_limiter
        self.payments = payments

    async def run(self, request: Any, context: Any = UNSET, root_value: Any = UNSET) -> Any:
        # Refusals before any GraphQL runs answer in the same shape as GraphQL errors.
        try:
            async with asyncio.timeout(self.settings.request_time_limit):
                return await super().run(request, context, root_value)
        except TimeoutError:
            # Cancelled where it stood: an open transaction rolls back, nothing half-written.
            return JSONResponse(
                {
                    "errors": [
                        {
                            "message": "The request took too long and was stopped.",
                            "extensions": {"code": ErrorCode.TIMEOUT.value},
                        }
                    ]
                },
                status_code=503,
            )
        except HTTPException as refusal:
            code = _REFUSAL_CODES.get(refusal.status_code, ErrorCode.BAD_REQUEST)
            return JSONResponse(
                {"errors": [{"message": refusal.reason, "extensions": {"code": code.value}}]},
                status_code=refusal.status_code,
            )

    async def get_context(self, request: Request, response: Any) -> Context:  # type: ignore[override]
        if request.method != "GET" and cross_site(request, self.settings):
            raise HTTPException(403, "Requests from pages of another site are refused.")
        if lacks_csrf_header(request, self.audience):
            raise HTTPException(
                403, "Send the X-CSRF-Protection header with requests signed in by cookie."
            )
        try:
            viewer = await resolve_viewer(request, self.db, self.settings, self.audience)
        except Unauthenticated as error:
            raise HTTPException(401, error.message) from error
        return Context(
            request=request,
            response=response if isinstance(response, Response) else None,
            db=self.db,
            settings=self.settings,
            viewer=viewer,
            request_id=request.state.request_id,
            rate_limiter=self.rate_limiter,
            payments=self.payments,
        )


def create_app(settings: Settings | None = None, *, db: Database | None = None) -> Starlette:
    settings = settings or get_settings()
    database = db or Database(
        create_engine(settings.database_url, pool_size=settings.database_pool_size)
    )
    production = settings.is_production
    rate_limiter: RateLimiter = (
        RedisRateLimiter(settings.redis_url)
        if settings.redis_url
        else DatabaseRateLimiter(database)
    )
    payments = Payments(database, settings)

    staff = GraphQLEndpoint(
        staff_schema(production=production),
        db=database,
        settings=settings,
        audience=Audience.STAFF,
        rate_limiter=rate_limiter,
        payments=payments,
    )
    portal = GraphQLEndpoint(
        portal_schema(production=production),
        db=database,
        settings=settings,
        audience=Audience.PORTAL,
        rate_limiter=rate_limiter,
        payments=payments,
    )

    async def healthz(_: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(_: Request) -> Response:
        try:
            async with database.session(SYSTEM) as session:
                await session.execute(sa.text("SELECT 1"))
        except Exception:
            logger.exception("the database does not answer")
            return JSONResponse({"status": "unavailable"}, status_code=503)
        return JSONResponse({"status": "ready"})

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as background:
            if settings.mail_worker_in_process:
                await background.enter_async_context(mail_worker(database, settings).running())
            yield
        await payments.close()
        if db is None:
            await database.dispose()

    app = Starlette(
        routes=[
            Route("/graphql", staff, methods=["GET", "POST"]),
            Route("/portal/graphql", portal, methods=["GET", "POST"]),
            Route("/portal/magic-link", magic_link_page(portal), methods=["GET", "POST"]),
            Route(
                f"{CERTIFICATE_PATH}/{{certificate_id}}",
                certificate_download(database, settings),
                methods=["GET"],
            ),
            *logo_routes(database),
            # Stripe's signature, not a cookie, authenticates it: no CSRF rule applies.
            Route("/webhooks/stripe", payments.webhook, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
        ],
        middleware=[
            Middleware(RequestIdMiddleware),
            Middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes),
        ],
        lifespan=lifespan,
    )
    app.state.db = database
    app.state.settings = settings
    return app
