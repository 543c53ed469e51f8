"""A small Stripe on loopback: the PaymentIntent and Event endpoints the SDK calls, served by
uvicorn on a thread, so the real SDK runs end to end and nothing leaves the machine."""

from __future__ import annotations

import itertools
import json
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import httpx
import stripe
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.support import free_port

SECRET_KEY = "sk_test_standin"
PUBLISHABLE_KEY = "pk_test_standin"
WEBHOOK_SECRET = "whsec_standin"
# The test card the stand-in's checkout declines, as Stripe's own test mode does.
DECLINED_CARD = "4000000000000002"
# The statuses Stripe lets a PaymentIntent be canceled from (leaving out its rare
# "processing" exception).
CANCELABLE = frozenset(
    {"requires_payment_method", "requires_confirmation", "requires_action", "requires_capture"}
)


def _nest(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """Stripe's form encoding back to a dict: `metadata[a]=1`, `types[0]=x`."""
    result: dict[str, Any] = {}
    for key, value in pairs:
        parts = re.findall(r"[^\[\]]+", key)
        target = result
        for part in parts[:-1]:
            target = target.setdefault(part, {})
        target[parts[-1]] = value
    return result


@dataclass
class Call:
    method: str
    path: str
    account: str | None
    idempotency_key: str | None
    params: dict[str, Any]


@dataclass
class StripeStandIn:
    """What the stand-in holds: PaymentIntents and events per connected account."""

    intents: dict[str, dict[str, Any]] = field(default_factory=dict)
    intent_accounts: dict[str, str | None] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)
    # (account, key) -> (params, response) as Stripe keeps them for 24 hours.
    idempotent: dict[tuple[str | None, str], tuple[dict[str, Any], dict[str, Any]]] = field(
        default_factory=dict
    )
    # Answer the next create calls with this HTTP status and error type.
    failures: list[tuple[int, str]] = field(default_factory=list)
    # Where a payment confirmed from the page is reported, signed, as Stripe's webhook.
    webhook_url: str | None = None
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def reset(self) -> None:
        self.intents.clear()
        self.intent_accounts.clear()
        self.events.clear()
        self.calls.clear()
        self.idempotent.clear()
        self.failures.clear()

    def creates(self) -> list[Call]:
        return [c for c in self.calls if c.method == "POST" and c.path == "/v1/payment_intents"]

    def cancels(self) -> list[str]:
        """The PaymentIntents asked to be canceled, in order."""
        return [c.path.split("/")[3] for c in self.calls if c.path.endswith("/cancel")]

    def set_status(self, intent_id: str, status: str) -> None:
        self.intents[intent_id]["status"] = status
        if status == "succeeded":
            self.intents[intent_id]["amount_received"] = self.intents[intent_id]["amount"]

    def event(
        self,
        type: str,
        obj: dict[str, Any],
        *,
        account: str | None,
        created: int | None = None,
    ) -> dict[str, Any]:
        """An event as Stripe would send and list it; kept for the Event list endpoint."""
        event = {
            "id": f"evt_{next(self._ids):06d}_{int(time.time() * 1000)}",
            "object": "event",
            "api_version": "2025-01-01",
            "created": created if created is not None else int(time.time()),
            "type": type,
            "account": account,
            "livemode": False,
            "pending_webhooks": 1,
            "data": {"object": obj},
        }
        self.events.append(event)
        return event

    def intent_event(
        self, type: str, intent_id: str, *, created: int | None = None, **changes: Any
    ) -> dict[str, Any]:
        status = {
            "payment_intent.succeeded": "succeeded",
            "payment_intent.processing": "processing",
            "payment_intent.payment_failed": "requires_payment_method",
            "payment_intent.canceled": "canceled",
        }[type]
        intent = {**self.intents[intent_id], "status": status}
        if status == "succeeded":
            intent["amount_received"] = intent["amount"]
        intent.update(changes)
        return self.event(type, intent, account=self.intent_accounts[intent_id], created=created)

    def refund_event(self, intent_id: str, refunded: int, **changes: Any) -> dict[str, Any]:
        intent = self.intents[intent_id]
        charge = {
            "id": f"ch_{intent_id[3:]}",
            "object": "charge",
            "amount": intent["amount"],
            "amount_refunded": refunded,
            "currency": intent["currency"],
            "payment_intent": intent_id,
            "refunded": refunded == intent["amount"],
            "metadata": {},
            **changes,
        }
        return self.event("charge.refunded", charge, account=self.intent_accounts[intent_id])

    # -- the HTTP side -------------------------------------------------------------------

    async def _record(self, request: Request) -> Call:
        body = (await request.body()).decode()
        pairs = parse_qsl(body if request.method == "POST" else request.url.query)
        call = Call(
            method=request.method,
            path=request.url.path,
            account=request.headers.get("stripe-account"),
            idempotency_key=request.headers.get("idempotency-key"),
            params=_nest(pairs),
        )
        self.calls.append(call)
        return call

    async def create_intent(self, request: Request) -> JSONResponse:
        if request.headers.get("authorization") != f"Bearer {SECRET_KEY}":
            return _error(401, "invalid_request_error", "Invalid API Key provided")
        call = await self._record(request)
        if self.failures:
            status, kind = self.failures.pop(0)
            return _error(status, kind, "refused by the stand-in")
        key = (call.account, call.idempotency_key or "")
        if call.idempotency_key and key in self.idempotent:
            params, response = self.idempotent[key]
            if params != call.params:
                return _error(400, "idempotency_error", "Keys for idempotent requests ...")
            return JSONResponse(response, headers={"idempotent-replayed": "true"})
        number = next(self._ids)
        intent_id = f"pi_standin{number:06d}"
        intent = {
            "id": intent_id,
            "object": "payment_intent",
            "amount": int(call.params["amount"]),
            "amount_received": 0,
            "currency": call.params["currency"],
            "status": "requires_payment_method",
            "client_secret": f"{intent_id}_secret_{number:04d}",
            "metadata": call.params.get("metadata", {}),
            "description": call.params.get("description"),
            "livemode": False,
            "created": int(time.time()),
        }
        self.intents[intent_id] = intent
        self.intent_accounts[intent_id] = call.account
        if call.idempotency_key:
            self.idempotent[key] = (call.params, intent)
        return JSONResponse(intent)

    async def retrieve_intent(self, request: Request) -> JSONResponse:
        call = await self._record(request)
        intent_id = request.path_params["intent"]
        if intent_id not in self.intents or self.intent_accounts[intent_id] != call.account:
            return _error(
                404,
                "invalid_request_error",
                f"No such payment_intent: '{intent_id}'",
                code="resource_missing",
            )
        return JSONResponse(self.intents[intent_id])

    async def cancel_intent(self, request: Request) -> JSONResponse:
        call = await self._record(request)
        intent_id = request.path_params["intent"]
        if intent_id not in self.intents or self.intent_accounts[intent_id] != call.account:
            return _error(
                404,
                "invalid_request_error",
                f"No such payment_intent: '{intent_id}'",
                code="resource_missing",
            )
        intent = self.intents[intent_id]
        if intent["status"] not in CANCELABLE:
            return _error(
                400,
                "invalid_request_error",
                f"This PaymentIntent's status is {intent['status']}: it cannot be canceled.",
                code="payment_intent_unexpected_state",
            )
        intent["status"] = "canceled"
        intent["cancellation_reason"] = call.params.get("cancellation_reason")
        return JSONResponse(intent)

    async def list_events(self, request: Request) -> JSONResponse:
        call = await self._record(request)
        since = int(call.params.get("created", {}).get("gte", 0))
        types = set(call.params.get("types", {}).values())
        limit = int(call.params.get("limit", 10))
        found = sorted(
            (
                e
                for e in self.events
                if e["account"] == call.account
                and e["created"] >= since
                and (not types or e["type"] in types)
            ),
            key=lambda e: (e["created"], e["id"]),
            reverse=True,
        )
        after = call.params.get("starting_after")
        if after is not None:
            ids = [e["id"] for e in found]
            found = found[ids.index(after) + 1 :] if after in ids else []
        return JSONResponse(
            {
                "object": "list",
                "url": "/v1/events",
                "has_more": len(found) > limit,
                "data": found[:limit],
            }
        )

    async def confirm_intent(self, request: Request) -> JSONResponse:
        """What Stripe.js does when a customer pays: confirm with the publishable key and the
        client secret; a success is then reported to the webhook, as Stripe reports it."""
        call = await self._record(request)
        intent = self.intents.get(request.path_params["intent"])
        cors = {"access-control-allow-origin": "*"}
        if intent is None or call.params.get("client_secret") != intent["client_secret"]:
            return _error(404, "invalid_request_error", "No such payment_intent", headers=cors)
        if call.params.get("key") != PUBLISHABLE_KEY:
            return _error(401, "invalid_request_error", "Invalid API Key provided", headers=cors)
        if intent["status"] != "requires_payment_method":
            return _error(
                400, "invalid_request_error", "This PaymentIntent is not open.", headers=cors
            )
        if call.params.get("card") == DECLINED_CARD:
            return _error(402, "card_error", "Your card was declined.", headers=cors)
        self.set_status(intent["id"], "succeeded")
        event = self.intent_event("payment_intent.succeeded", intent["id"])
        if self.webhook_url is not None:
            body, headers = signed(event)
            async with httpx.AsyncClient(timeout=30) as client:
                await client.post(self.webhook_url, content=body, headers=headers)
        return JSONResponse(self.intents[intent["id"]], headers=cors)

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/v1/payment_intents", self.create_intent, methods=["POST"]),
                Route("/v1/payment_intents/{intent}", self.retrieve_intent, methods=["GET"]),
                Route("/v1/payment_intents/{intent}/cancel", self.cancel_intent, methods=["POST"]),
                Route(
                    "/v1/payment_intents/{intent}/confirm", self.confirm_intent, methods=["POST"]
                ),
                Route("/v1/events", self.list_events, methods=["GET"]),
            ]
        )


def _error(
    status: int,
    kind: str,
    message: str,
    *,
    code: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    error = {"type": kind, "message": message, **({"code": code} if code else {})}
    return JSONResponse({"error": error}, status_code=status, headers=headers)


class StandInServer:
    """Serves a `StripeStandIn` on 127.0.0.1 from a thread of its own."""

    def __init__(self) -> None:
        self.port = free_port()
        self.stripe = StripeStandIn()
        config = uvicorn.Config(
            self.stripe.app(), host="127.0.0.1", port=self.port, log_level="warning"
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the Stripe stand-in did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)


def signed(
    event: dict[str, Any], *, secret: str = WEBHOOK_SECRET, at: int | None = None
) -> tuple[bytes, dict[str, str]]:
    """The body and headers of a webhook delivery, signed with the SDK's own helper."""
    payload = json.dumps(event)
    header = stripe.WebhookSignature.generate_signature_header(payload, secret, timestamp=at)
    return payload.encode(), {"stripe-signature": header, "content-type": "application/json"}
