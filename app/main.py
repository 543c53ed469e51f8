"""The application factory: both GraphQL schemas, health checks, and their middleware."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import orjson
import sqlalchemy as sa
from cross_web import AsyncHTTPRequestAdapter, HTTPException
from starlette.applications import Starlette
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData
from strawberry.http.base import BaseRequestProtocol
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.types import ExecutionResult, SubscriptionExecutionResult
from strawberry.types.unset import UNSET, UnsetType

from app.auth.cookies import cross_site, lacks_csrf_header
from app.auth.ratelimit import DatabaseRateLimiter, RateLimiter, RedisRateLimiter
from app.auth.resolve import resolve_viewer, session_cookie, sign_in_of
from app.auth.tokens import Audience
from app.auth.viewer import ANONYMOUS, Anonymous, PortalViewer, StaffViewer, Viewer
from app.context import Context
from app.db.scope import SYSTEM
from app.db.session import Database, create_engine
from app.errors import DatabaseUnavailable, ErrorCode, Unauthenticated
from app.files import logo_routes
from app.files.certificates import CERTIFICATE_PATH, certificate_download
from app.http import (
    JSON,
    BodyLimitMiddleware,
    RequestIdMiddleware,
    answer_status,
    content_type,
    error_response,
    from_served_origin,
    http_refusal,
    response_media_type,
)
from app.logs import log_request
from app.magic_link import magic_link_page
from app.mail.setup import mail_worker
from app.messages.live import LiveEvents
from app.metrics import (
    ObserveRequests,
    count_error,
    metrics_endpoint,
    name_operation,
    name_tenant,
    watch_connections,
)
from app.payments import Payments
from app.playground import playground_assets, playground_page
from app.schema.build import GatewaySchema
from app.schema.compiled import Compiled, NotCompiled, compile_query
from app.schema.inputs import UNSTORABLE_TEXT, holds_unstorable_text
from app.schema.plans import CannotPlan, Plan, compile_plan
from app.schema.portal import portal_schema
from app.schema.staff import staff_schema
from app.schema.trusted import TrustedDocument, TrustedDocuments
from app.settings import Settings, get_settings
from app.web import web_routes
from app.websocket import (
    FORBIDDEN,
    TOO_MANY,
    UNAUTHORIZED,
    LimitedWebSocket,
    LiveConnection,
    Refused,
    connection_params_token,
)

logger = logging.getLogger("app")

_REFUSAL_CODES = {
    401: ErrorCode.UNAUTHENTICATED,
    403: ErrorCode.CSRF_FAILED,
    404: ErrorCode.NOT_FOUND,
    405: ErrorCode.METHOD_NOT_ALLOWED,
}


class DocumentRefused(HTTPException):
    """A document the endpoint will not run, refused before it is parsed.

    400: GraphQL-over-HTTP answers a request error (nothing can be executed) with a 4xx
    under `application/graphql-response+json`, the persisted-documents appendix asks only
    for one error in a well-formed response, and every other refusal here before GraphQL
    runs is a 400 in this same shape."""

    def __init__(self, code: ErrorCode, reason: str) -> None:
        super().__init__(400, reason)
        self.code = code


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
        trusted_documents: TrustedDocuments | None = None,
        live: LiveEvents | None = None,
    ) -> None:
        super().__init__(
            schema,
            graphql_ide="graphiql" if settings.is_development else None,
            allow_queries_via_get=True,
            subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
            connection_init_wait_timeout=timedelta(seconds=settings.live_sign_in_seconds),
            max_subscriptions_per_connection=settings.live_subscriptions_per_connection,
        )
        self.live = live
        # Open WebSocket connections of each viewer on this worker.
        self._connections: Counter[tuple[str, uuid.UUID]] = Counter()
        self.db = db
        self.settings = settings
        self.audience = audience
        self.rate_limiter = rate_limiter
        self.payments = payments
        # The schema's extensions find them there, to skip parsing, validation and costing.
        schema.trusted_documents = self.trusted_documents = trusted_documents
        self.plans: dict[str, Plan] = {}
        for document in trusted_documents or ():
            # A plan skips the cost limit: only a document whose worst case fits gets one.
            plan = (
                compile_plan(schema, document.document, document.operation_name)
                if document.fits
                else None
            )
            if plan is not None:
                self.plans[document.text] = plan
        # On PostgreSQL, a plan whose every field has a SQL form runs as one statement.
        self.compiled: dict[str, Compiled] = {}
        if db.dialect == "postgresql":
            for text, plan in self.plans.items():
                statement = compile_query(plan)
                if statement is not None:
                    self.compiled[text] = statement

    graphql_transport_ws_handler_class = LiveConnection
    websocket_adapter_class = LimitedWebSocket

    def is_websocket_origin_allowed(self, request: Any, origin: str) -> bool:
        # Any page may open the socket; only an allowed one may use the cookie with it
        # (`on_ws_connect`), as for HTTP. A bearer token works from anywhere.
        return True

    async def on_ws_connect(self, context: Context) -> UnsetType | dict[str, object] | None:
        """Signs the connection in from its `connection_init` payload or its cookie; see
        `app.websocket`."""
        websocket = context.request
        token = connection_params_token(context.connection_params)
        cookie = None if token is not None else session_cookie(websocket, self.audience)
        if token is None and cookie is None:
            raise Refused(UNAUTHORIZED, "Sign in: send a bearer token in connection_init.")
        if token is None and cross_site(websocket, self.settings):
            raise Refused(FORBIDDEN, "Pages of another site cannot use the session cookie.")
        try:
            viewer, sign_in = await sign_in_of(
                self.db, self.settings, self.audience, token=token, cookie=cookie
            )
        except Unauthenticated as error:
            raise Refused(UNAUTHORIZED, error.message) from error
        if sign_in is None or isinstance(viewer, Anonymous):
            raise Refused(UNAUTHORIZED, "The session is not signed in.")
        if isinstance(viewer, PortalViewer) and (viewer.refusal or not viewer.grants):
            raise Refused(FORBIDDEN, "Your portal access is switched off.")
        key = _connection_key(viewer)
        if self._connections[key] >= self.settings.live_connections_per_viewer:
            raise Refused(TOO_MANY, "Too many open connections; close one first.")
        self._connections[key] += 1
        context.viewer = viewer
        context.sign_in = sign_in
        context.forget_scope()
        acknowledged: UnsetType = UNSET
        return acknowledged

    def release_connection(self, context: Context) -> None:
        if context.sign_in is None:
            return
        key = _connection_key(context.viewer)
        self._connections[key] -= 1
        if self._connections[key] <= 0:
            del self._connections[key]

    async def run(self, request: Any, context: Any = UNSET, root_value: Any = UNSET) -> Any:
        if isinstance(request, WebSocket):
            # A connection lives on: no time limit, no shared read transaction.
            return await super().run(request, context, root_value)
        try:
            return await self._answer(request, context, root_value)
        except DatabaseUnavailable as dropped:
            if not dropped.retry_safe:
                raise
            # A pooled connection the database had dropped, and nothing written: the pool has
            # let go of every connection as old, so the request runs again from the start.
            logger.warning(
                "the database dropped a pooled connection; request %s runs again",
                request.state.request_id,
            )
        try:
            return await self._answer(request, context, root_value)
        except DatabaseUnavailable as unavailable:
            return error_response(
                503,
                unavailable.code,
                unavailable.message,
                media_type=response_media_type(request.headers.get("accept")),
            )

    async def _answer(self, request: Any, context: Any, root_value: Any) -> Any:
        # Refusals before any GraphQL runs answer in the same shape as GraphQL errors.
        try:
            async with asyncio.timeout(self.settings.request_time_limit), self.db.reading():
                return await super().run(request, context, root_value)
        except TimeoutError:
            # Cancelled where it stood: an open transaction rolls back, nothing half-written.
            return error_response(
                503,
                ErrorCode.TIMEOUT,
                "The request took too long and was stopped.",
                media_type=response_media_type(request.headers.get("accept")),
            )
        except HTTPException as refusal:
            code = (
                refusal.code
                if isinstance(refusal, DocumentRefused)
                else _REFUSAL_CODES.get(refusal.status_code, ErrorCode.BAD_REQUEST)
            )
            return error_response(
                refusal.status_code,
                code,
                refusal.reason,
                media_type=response_media_type(request.headers.get("accept")),
            )

    async def execute_operation(
        self,
        request: Request,
        request_adapter: AsyncHTTPRequestAdapter,
        request_data: GraphQLRequestData | list[GraphQLRequestData],
        context: Context,
        root_value: Any,
        sub_response: Any,
    ) -> ExecutionResult | list[ExecutionResult] | SubscriptionExecutionResult:
        result = await super().execute_operation(
            request, request_adapter, request_data, context, root_value, sub_response
        )
        # A query that met a dropped connection runs again (`run`); a batch is answered as is.
        if isinstance(result, ExecutionResult):
            for error in result.errors or ():
                dropped = error.original_error
                if isinstance(dropped, DatabaseUnavailable) and dropped.retry_safe:
                    raise dropped
        return result

    async def render_graphql_ide(self, request: Request) -> Response:
        return HTMLResponse(playground_page(self.audience))

    def should_render_graphql_ide(self, request: BaseRequestProtocol) -> bool:
        # A GET naming a persisted document asks for data, not the playground.
        named = "documentId" in request.query_params or "extensions" in request.query_params
        return not named and super().should_render_graphql_ide(request)

    async def parse_http_body(
        self, request: AsyncHTTPRequestAdapter
    ) -> GraphQLRequestData | list[GraphQLRequestData]:
        """Chooses the document before Strawberry parses it: a trusted one by its id, its
        Apollo hash or its exact text; in production, nothing else (H2)."""
        data = await super().parse_http_body(request)
        if not isinstance(data, list) and data.variables and holds_unstorable_text(data.variables):
            raise DocumentRefused(ErrorCode.BAD_USER_INPUT, UNSTORABLE_TEXT)
        if self.trusted_documents is None or isinstance(data, list):
            return data
        if data.query is not None:
            trusted = self.trusted_documents.by_text(data.query)
            if trusted is None and self.settings.is_production:
                raise DocumentRefused(
                    ErrorCode.DOCUMENT_NOT_TRUSTED,
                    "This service runs only the documents of its frontend contract; send one"
                    " by its documentId.",
                )
        else:
            trusted = await self._named_document(request, data)
        if trusted is not None:
            # The registry's own string: the schema's extensions find it by identity.
            data.query = trusted.text
        return data

    async def _named_document(
        self, request: AsyncHTTPRequestAdapter, data: GraphQLRequestData
    ) -> TrustedDocument | None:
        """The trusted document a request without text names by `documentId` or by
        Apollo's `extensions.persistedQuery`; None when it names none."""
        assert self.trusted_documents is not None
        if request.method == "GET":
            document_id: object = request.query_params.get("documentId")
        else:
            # Strawberry's request data has no `documentId`: a body without a query (an id
            # and variables, within the body limit) is read for it once more.
            body = self.parse_json(await request.get_body())
            document_id = body.get("documentId") if isinstance(body, dict) else None
        persisted = (data.extensions or {}).get("persistedQuery")
        if document_id is not None:
            if not isinstance(document_id, str):
                raise DocumentRefused(ErrorCode.BAD_REQUEST, "documentId must be a string.")
            trusted = self.trusted_documents.by_id(document_id)
        elif persisted is not None:
            if not (
                isinstance(persisted, dict)
                and persisted.get("version") == 1
                and isinstance(persisted.get("sha256Hash"), str)
            ):
                raise DocumentRefused(
                    ErrorCode.BAD_REQUEST,
                    "extensions.persistedQuery must be {version: 1, sha256Hash: <hex>}.",
                )
            trusted = self.trusted_documents.by_hash(persisted["sha256Hash"])
        else:
            return None
        if trusted is None:
            raise DocumentRefused(
                ErrorCode.PERSISTED_DOCUMENT_NOT_FOUND, "No document of the contract has this id."
            )
        return trusted

    async def execute_single(
        self,
        request: Request,
        request_adapter: AsyncHTTPRequestAdapter,
        sub_response: Any,
        context: Context,
        root_value: Any,
        request_data: GraphQLRequestData,
    ) -> ExecutionResult:
        name_operation(request_data.operation_name, request_data.query)
        plan = self.plans.get(request_data.query) if request_data.query else None
        if plan is not None and request_data.operation_name in (None, plan.name):
            statement = self.compiled.get(request_data.query or "")
            if statement is not None:
                try:
                    data = await statement.run(context, request_data.variables)
                    return ExecutionResult(data=data, errors=None)
                except NotCompiled:
                    pass  # answered by the plan, or by the generic executor, below
            try:
                data = await plan.run(context, root_value, request_data.variables)
            except CannotPlan as refused:
                # Answered from the start by the generic executor, with its errors; after a
                # failed statement, on a fresh transaction (PostgreSQL refuses the old one).
                context.forget_loaded()
                if isinstance(refused.__cause__, sa.exc.DBAPIError):
                    await context.db.restart_reading()
            else:
                return ExecutionResult(data=data, errors=None)
        return await super().execute_single(
            request, request_adapter, sub_response, context, root_value, request_data
        )

    async def get_context(self, request: Request, response: Any) -> Context:  # type: ignore[override]
        if isinstance(request, WebSocket):
            # Signed in at `connection_init` (`on_ws_connect`).
            return Context(
                request=request,
                response=None,
                db=self.db,
                settings=self.settings,
                viewer=ANONYMOUS,
                request_id=request.scope.get("state", {}).get("request_id", ""),
                rate_limiter=self.rate_limiter,
                payments=self.payments,
                live=self.live,
            )
        # In development the playground's page may be served at any host name and port.
        own_page = self.settings.is_development and from_served_origin(request)
        if request.method != "GET" and cross_site(request, self.settings) and not own_page:
            raise HTTPException(403, "Requests from pages of another site are refused.")
        if lacks_csrf_header(request, self.audience):
            raise HTTPException(
                403, "Send the X-CSRF-Protection header with requests signed in by cookie."
            )
        try:
            viewer = await resolve_viewer(request, self.db, self.settings, self.audience)
        except Unauthenticated as error:
            raise HTTPException(401, error.message) from error
        name_tenant(viewer)
        return Context(
            request=request,
            response=response if isinstance(response, Response) else None,
            db=self.db,
            settings=self.settings,
            viewer=viewer,
            request_id=request.state.request_id,
            rate_limiter=self.rate_limiter,
            payments=self.payments,
            live=self.live,
        )

    async def get_sub_response(self, request: Request) -> Response:  # type: ignore[override]
        sub_response = await super().get_sub_response(request)
        # Chosen once from the request's Accept; `create_response` answers in it.
        sub_response.media_type = response_media_type(request.headers.get("accept"))
        return sub_response

    def create_response(
        self,
        response_data: GraphQLHTTPResponse | list[GraphQLHTTPResponse],
        sub_response: Response,
    ) -> Response:
        media_type = sub_response.media_type or JSON
        status = answer_status(response_data, media_type)
        response = Response(
            self.encode_json(response_data),
            status_code=sub_response.status_code or status,
            media_type=content_type(media_type),
            background=sub_response.background,
        )
        response.headers.raw.extend(sub_response.headers.raw)
        return response

    async def process_result(
        self, request: Request, result: ExecutionResult
    ) -> GraphQLHTTPResponse:
        for error in result.errors or ():
            count_error((error.extensions or {}).get("code", ""))
        return await super().process_result(request, result)

    def decode_json(self, data: str | bytes) -> object:
        # Strict: bytes that are not UTF-8, unpaired surrogates and nesting past 1,024 levels
        # are a JSONDecodeError, which Strawberry answers 400 like any body that is not JSON.
        return orjson.loads(data)

    def encode_json(self, data: object) -> bytes:
        # UTF-8 bytes in one pass, handed to Starlette as they are: over ten times faster
        # than the standard library on a page of results, and non-ASCII text is not escaped.
        return orjson.dumps(data)


def _connection_key(viewer: Viewer) -> tuple[str, uuid.UUID]:
    if isinstance(viewer, StaffViewer):
        return ("staff", viewer.user_id)
    assert isinstance(viewer, PortalViewer)
    return ("portal", viewer.account_id)


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
    live = LiveEvents(settings)
    payments = Payments(database, settings, live=live)
    watch_connections(database)

    staff = GraphQLEndpoint(
        staff_schema(production=production),
        db=database,
        settings=settings,
        audience=Audience.STAFF,
        rate_limiter=rate_limiter,
        payments=payments,
        live=live,
    )
    portal_graphql = portal_schema(production=production)
    portal = GraphQLEndpoint(
        portal_graphql,
        db=database,
        settings=settings,
        audience=Audience.PORTAL,
        rate_limiter=rate_limiter,
        payments=payments,
        # Parsed, validated and costed here, once; one that cannot run stops the start.
        trusted_documents=TrustedDocuments.load(portal_graphql),
        live=live,
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
        await live.close()
        if db is None:
            await database.dispose()

    app = Starlette(
        routes=[
            Route("/graphql", staff, methods=["GET", "POST"]),
            Route("/portal/graphql", portal, methods=["GET", "POST"]),
            WebSocketRoute("/graphql", staff),
            WebSocketRoute("/portal/graphql", portal),
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
            *([playground_assets()] if settings.is_development else []),
            Route("/metrics", metrics_endpoint(database), methods=["GET"]),
            # Last: every other address under /portal opens the web app.
            *web_routes(settings),
        ],
        middleware=[
            Middleware(RequestIdMiddleware),
            Middleware(ObserveRequests, log=log_request),
            Middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes),
        ],
        exception_handlers={StarletteHTTPException: http_refusal},
        lifespan=lifespan,
    )
    app.state.db = database
    app.state.live = live
    app.state.settings = settings
    return app
