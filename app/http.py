"""What every request meets around GraphQL: request ids, body limits, the JSON error shape of
every refusal, and the media type a GraphQL answer is given in."""

from __future__ import annotations

import logging
import re
import uuid
from typing import Any

import orjson
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import ErrorCode
from app.metrics import count_error

logger = logging.getLogger("app.http")

_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")

JSON = "application/json"
# GraphQL over HTTP's own media type: request errors get 4xx and no `data` under it.
GRAPHQL_RESPONSE = "application/graphql-response+json"


def error_body(code: ErrorCode, message: str, **extensions: Any) -> dict[str, Any]:
    """The one shape of every error answer: GraphQL's `errors`, with a stable code."""
    return {"errors": [{"message": message, "extensions": {"code": code.value, **extensions}}]}


def error_response(
    status: int,
    code: ErrorCode,
    message: str,
    *,
    media_type: str = JSON,
    request_id: str | None = None,
) -> Response:
    extensions = {"requestId": request_id} if request_id else {}
    count_error(code.value)
    return Response(
        orjson.dumps(error_body(code, message, **extensions)),
        status_code=status,
        media_type=content_type(media_type),
    )


def content_type(media_type: str) -> str:
    # JSON is UTF-8 by definition; the spec's own type says so, as its examples do.
    return f"{media_type}; charset=utf-8" if media_type == GRAPHQL_RESPONSE else media_type


def response_media_type(accept: str | None) -> str:
    """The media type a GraphQL answer is given in: `application/graphql-response+json` when
    the client prefers it, otherwise `application/json` (also when it names neither, as the
    spec allows, rather than 406)."""
    if not accept or "graphql-response+json" not in accept:
        return JSON
    best = {GRAPHQL_RESPONSE: (0.0, -1), JSON: (0.0, -1)}
    for part in accept.split(","):
        media_range, _, parameters = part.partition(";")
        media_range = media_range.strip().lower()
        quality = 1.0
        for parameter in parameters.split(";"):
            name, _, value = parameter.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        for candidate in best:
            # The most specific range that matches decides (RFC 9110, 12.5.1).
            specificity = (
                2
                if media_range == candidate
                else 1
                if media_range == "application/*"
                else 0
                if media_range == "*/*"
                else -1
            )
            if specificity > best[candidate][1]:
                best[candidate] = (quality, specificity)
    graphql_response, json = best[GRAPHQL_RESPONSE][0], best[JSON][0]
    return GRAPHQL_RESPONSE if graphql_response > 0 and graphql_response >= json else JSON


# A request error (no field ran, so there is no `data`) answered in the spec's own media type
# gets the status of its cause; `application/json` answers every GraphQL response with 200.
_REQUEST_ERROR_STATUS = {
    ErrorCode.INTERNAL_ERROR.value: 500,
    ErrorCode.DATABASE_UNAVAILABLE.value: 503,
    ErrorCode.TIMEOUT.value: 503,
}


def answer_status(body: object, media_type: str) -> int:
    """The HTTP status of a GraphQL answer (GraphQL over HTTP, 6.4). Under
    `application/graphql-response+json` a request error, one that kept any field from
    running, loses its `data` entry and is a 4xx (or the 5xx of a failure of ours); an
    answer with `data`, even null because a field failed, is 200."""
    if media_type != GRAPHQL_RESPONSE or not isinstance(body, dict):
        return 200
    errors = body.get("errors")
    if not errors or body.get("data") is not None or any("path" in e for e in errors):
        return 200
    del body["data"]
    codes = [error.get("extensions", {}).get("code") for error in errors]
    return max(_REQUEST_ERROR_STATUS.get(code, 400) for code in codes)


_HTTP_REFUSAL_CODES = {404: ErrorCode.NOT_FOUND, 405: ErrorCode.METHOD_NOT_ALLOWED}


async def http_refusal(_: Request, refusal: Exception) -> Response:
    """Starlette's own refusals (no such route, a method a route does not take) in the same
    JSON shape as every other."""
    assert isinstance(refusal, HTTPException)
    response = error_response(
        refusal.status_code,
        _HTTP_REFUSAL_CODES.get(refusal.status_code, ErrorCode.BAD_REQUEST),
        refusal.detail,
    )
    response.headers.update(refusal.headers or {})
    return response


def from_served_origin(request: Request) -> bool:
    """Whether the request's Origin is the address it was sent to: a page this very server
    served, whatever host name or port it runs on."""
    origin = request.headers.get("origin")
    host = request.headers.get("host")
    return (
        origin is not None
        and host is not None
        and origin.lower() == f"{request.url.scheme}://{host}".lower()
    )


class RequestIdMiddleware:
    """Gives each request an id (a caller's own, when it is sane), returned in
    `X-Request-Id` and written into every log line and masked error about the request.

    It is also the last line: a failure nothing else caught is logged under that id and
    answered as a JSON INTERNAL_ERROR carrying it, never as a bare text 500."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        offered = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        request_id = offered if _SAFE_REQUEST_ID.match(offered) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        response_started = False

        async def send_with_id(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
                MutableHeaders(scope=message)["x-request-id"] = request_id
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            logger.exception("unexpected error (request %s)", request_id)
            if response_started or scope["type"] != "http":
                raise
            response = error_response(
                500, ErrorCode.INTERNAL_ERROR, "Unexpected error.", request_id=request_id
            )
            await response(scope, receive, send_with_id)


class BodyLimitMiddleware:
    """Answers 413 to a request body over `max_bytes`, whether it declares its length or
    streams it, before the body is parsed or held in memory."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (
            # Checked by length first: Python refuses to read an integer of thousands of digits.
            not declared.isdigit() or len(declared) > 18 or int(declared) > self.max_bytes
        ):
            await _too_large(scope, receive, send)
            return
        received = 0
        response_started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal response_started
            response_started = response_started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except _BodyTooLarge:
            if not response_started:
                await _too_large(scope, receive, send)


class _BodyTooLarge(Exception):
    pass


async def _too_large(scope: Scope, receive: Receive, send: Send) -> None:
    response = error_response(413, ErrorCode.PAYLOAD_TOO_LARGE, "The request body is too large.")
    await response(scope, receive, send)
