"""GraphQL over WebSocket (`graphql-transport-ws`, H8): sign-in at `connection_init`, the
limits every connection keeps, and the pings that find a client gone.

Sign-in is a bearer token in the `connection_init` payload (`{"authorization": "Bearer
..."}`, or `{"token": "..."}`), or else the session cookie of the handshake, taken only from
a page of an allowed origin. No credentials, or credentials that are not valid (expired, of
the other endpoint), close the connection with 4401; a cookie from a page of another origin,
a portal user whose portal is off, or too many connections of one viewer, with 4403 (4429
for the count). Nothing runs before the sign-in is accepted.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from json import JSONDecodeError
from typing import Any, TypeVar

from graphql import GraphQLError, OperationDefinitionNode, OperationType, parse
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState
from strawberry.asgi import ASGIWebSocketAdapter
from strawberry.http.exceptions import (
    NonJsonMessageReceived,
    NonTextMessageReceived,
    WebSocketDisconnected,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import (
    ConnectionInitMessage,
    ErrorMessage,
    PongMessage,
    SubscribeMessage,
)

from app.context import Context
from app.errors import ErrorCode
from app.resolvers.messages import AccessEnded, LiveEventsLost
from app.schema.limits import MAX_TOKENS

Row = TypeVar("Row")

UNAUTHORIZED = 4401
FORBIDDEN = 4403
TOO_MANY = 4429
GONE = 4408
MESSAGE_TOO_BIG = 1009
TRY_AGAIN = 1013


class Refused(Exception):
    """A connection refused at sign-in, with the close code that says why."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class LimitedWebSocket(ASGIWebSocketAdapter):
    """Reads the client's messages, closing the connection on one over the size limit
    before it is parsed."""

    async def iter_json(self, *, ignore_parsing_errors: bool = False) -> AsyncGenerator[object]:
        limit: int = getattr(self.view, "settings").live_max_message_bytes  # noqa: B009
        try:
            while self.ws.application_state != WebSocketState.DISCONNECTED:
                text = await self.ws.receive_text()
                if len(text) > limit or len(text.encode()) > limit:
                    await self.close(MESSAGE_TOO_BIG, "Message too big")
                    return
                try:
                    yield self.view.decode_json(text)
                except JSONDecodeError as error:
                    if not ignore_parsing_errors:
                        raise NonJsonMessageReceived from error
        except KeyError as error:
            raise NonTextMessageReceived from error
        except WebSocketDisconnect:
            return

    async def send_json(self, message: Mapping[str, object]) -> None:
        # Text frames, as the protocol asks: the endpoint encodes JSON to UTF-8 bytes.
        encoded = self.view.encode_json(message)
        text = encoded.decode() if isinstance(encoded, bytes) else encoded
        try:
            await self.ws.send_text(text)
        except WebSocketDisconnect as error:
            raise WebSocketDisconnected from error


class LiveConnection(BaseGraphQLTransportWSHandler[Context, None]):
    """One client's connection: refused at sign-in with the code that says why, and pinged
    so a client that has gone is closed rather than held open."""

    _ping: asyncio.Task[None] | None = None
    _last_pong: float = 0.0

    def on_request_accepted(self) -> None:
        super().on_request_accepted()
        self._last_pong = time.monotonic()
        self._ping = asyncio.create_task(self._keep_alive())

    async def _keep_alive(self) -> None:
        interval = self.context.settings.live_ping_seconds
        with contextlib.suppress(Exception):
            while True:
                await asyncio.sleep(interval)
                # A client that did not answer the ping before last has gone.
                if time.monotonic() - self._last_pong > 2 * interval:
                    await self.websocket.close(GONE, "Ping not answered")
                    return
                await self.send_message({"type": "ping"})

    async def handle_pong(self, message: PongMessage) -> None:
        self._last_pong = time.monotonic()

    async def handle_subscribe(self, message: SubscribeMessage) -> None:
        """Subscriptions only (queries and mutations go over HTTP, with its checks); on the
        production portal, only those of its trusted documents."""
        payload = message.get("payload")
        query = payload.get("query") if isinstance(payload, dict) else None
        if self.connection_acknowledged and isinstance(query, str):
            refusal = self._refusal(query)
            if refusal is not None:
                code, text = refusal
                refused = GraphQLError(text, extensions={"code": code.value})
                await self.send_message(
                    ErrorMessage(id=message["id"], type="error", payload=[refused.formatted])
                )
                return
        await super().handle_subscribe(message)

    def _refusal(self, query: str) -> tuple[ErrorCode, str] | None:
        trusted = getattr(self.view, "trusted_documents", None)
        production = self.context.settings.is_production
        if trusted is not None and production and trusted.by_text(query) is None:
            return (
                ErrorCode.DOCUMENT_NOT_TRUSTED,
                "This service runs only the documents of its frontend contract.",
            )
        try:
            document = parse(query, max_tokens=MAX_TOKENS)
        except GraphQLError:
            return None  # answered by the protocol: the connection closes with 4400
        kinds = {
            definition.operation
            for definition in document.definitions
            if isinstance(definition, OperationDefinitionNode)
        }
        if kinds and kinds != {OperationType.SUBSCRIPTION}:
            return (
                ErrorCode.BAD_REQUEST,
                "Only subscriptions run over WebSocket; send queries and mutations over HTTP.",
            )
        return None

    async def handle_connection_init(self, message: ConnectionInitMessage) -> None:
        try:
            await super().handle_connection_init(message)
        except Refused as refused:
            await self.websocket.close(code=refused.code, reason=refused.reason)

    async def shutdown(self) -> None:
        if self._ping is not None:
            self._ping.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ping
        try:
            await super().shutdown()
        finally:
            release = getattr(self.view, "release_connection", None)
            if release is not None:
                release(self.context)


async def closed_when_refused(ctx: Context, rows: AsyncIterator[Row]) -> AsyncIterator[Row]:
    """A subscription's rows until its viewer may no longer have them: then the whole
    connection closes (4403), at once, and nothing more is sent on it."""
    try:
        async for row in rows:
            yield row
    except AccessEnded as ended:
        await _close(ctx, FORBIDDEN, str(ended))
    except LiveEventsLost as lost:
        await _close(ctx, TRY_AGAIN, str(lost))


async def _close(ctx: Context, code: int, reason: str) -> None:
    websocket = ctx.request
    if isinstance(websocket, WebSocket):
        with contextlib.suppress(Exception):
            await websocket.close(code=code, reason=reason)


def connection_params_token(params: dict[str, Any] | None) -> str | None:
    """The bearer token a `connection_init` payload carries, if any."""
    if not params:
        return None
    authorization = params.get("authorization") or params.get("Authorization")
    if isinstance(authorization, str):
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
        raise Refused(UNAUTHORIZED, "Send the token as `Bearer <token>`.")
    given = params.get("token")
    if given is None:
        return None
    if not isinstance(given, str) or not given:
        raise Refused(UNAUTHORIZED, "The token must be a string.")
    return given
