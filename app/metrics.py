"""Prometheus metrics at `/metrics` (H7): requests and their latency by endpoint and operation,
errors answered by code, the email outbox and the database connections in use.

Per request the work is a few counter updates and one histogram observation, made once the
response is sent: nothing per field and no database statement. The outbox is read when
Prometheus scrapes, with one indexed statement.

Several workers (`portal serve --workers N`) share their counts through the files of
prometheus-client's multiprocess mode, in the folder PROMETHEUS_MULTIPROC_DIR names, which
`portal serve` sets up; a scrape answered by any worker then sums every worker's. Python's
process metrics (memory, CPU) are left out in that mode, as prometheus-client does.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector
from sqlalchemy import event
from sqlmodel import col
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.auth.viewer import PortalViewer, StaffViewer, Viewer
from app.db.base import utcnow
from app.db.models import OutboxEmail, OutboxStatus
from app.db.scope import SYSTEM
from app.db.session import Database
from app.errors import ErrorCode

MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"

REQUEST_SECONDS = Histogram(
    "portal_request_duration_seconds",
    "Time from a request's arrival to its last byte, by endpoint and GraphQL operation.",
    ["endpoint", "operation"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15),
)
RESPONSES = Counter(
    "portal_responses_total", "Responses sent, by endpoint and HTTP status.", ["endpoint", "status"]
)
ERRORS = Counter(
    "portal_errors_total",
    "Errors answered, by endpoint and `extensions.code` (GraphQL errors and refusals alike).",
    ["endpoint", "code"],
)
CONNECTIONS_IN_USE = Gauge(
    "portal_database_connections_in_use",
    "Database connections checked out of the pool now.",
    multiprocess_mode="livesum",
)

_ENDPOINTS = {
    "/graphql": "staff",
    "/portal/graphql": "portal",
    "/portal/magic-link": "magic-link",
    "/webhooks/stripe": "stripe-webhook",
    "/healthz": "healthz",
    "/readyz": "readyz",
    "/metrics": "metrics",
}
_PREFIXES = (
    ("/portal/files/certificates/", "certificate"),
    ("/files/logo/", "logo"),
    ("/static/", "static"),
)
_CODES = frozenset(code.value for code in ErrorCode)
_NAME = re.compile(r"\b(?:query|mutation|subscription)\s+([_A-Za-z][_0-9A-Za-z]{0,63})")
# Operation names are the client's: past this many per endpoint, new ones count as "other".
MAX_OPERATIONS = 200


def endpoint_of(path: str) -> str:
    """A fixed name per route: paths a client makes up never become labels."""
    named = _ENDPOINTS.get(path)
    if named is not None:
        return named
    for prefix, name in _PREFIXES:
        if path.startswith(prefix):
            return name
    return "other"


@dataclass(slots=True)
class Observation:
    """What one request's metrics and log line say about it, filled in as it is answered."""

    method: str
    path: str
    endpoint: str
    request_id: str
    started: float = field(default_factory=time.perf_counter)
    operation: str | None = None
    tenant: str | None = None
    status: int = 0
    codes: list[str] = field(default_factory=list)


_current: ContextVar[Observation | None] = ContextVar("observation", default=None)


def current() -> Observation | None:
    """The request being answered in this task, if any."""
    return _current.get()


def count_error(code: str) -> None:
    observation = _current.get()
    if observation is not None:
        observation.codes.append(code)


def name_operation(operation_name: str | None, query: str | None) -> None:
    """Names the GraphQL operation of the request: the name sent, else the document's first."""
    observation = _current.get()
    if observation is None:
        return
    if operation_name is None and query is not None:
        found = _NAME.search(query)
        operation_name = found.group(1) if found else None
    observation.operation = operation_name


def name_tenant(viewer: Viewer) -> None:
    """The tenant the request acts in, for its log lines: a portal user's may be several."""
    observation = _current.get()
    if observation is None:
        return
    match viewer:
        case StaffViewer(tenant_id=tenant_id):
            observation.tenant = str(tenant_id)
        case PortalViewer() if viewer.grants:
            observation.tenant = ",".join(sorted(str(tenant) for tenant in viewer.tenant_ids))


class _Labels:
    """Each (endpoint, operation) child of the histogram, made once: a name a client sends is
    a label only while the endpoint has fewer than MAX_OPERATIONS of them."""

    def __init__(self) -> None:
        self.histograms: dict[tuple[str, str], Histogram] = {}
        self.per_endpoint: dict[str, int] = {}

    def histogram(self, endpoint: str, operation: str | None) -> Histogram:
        key = (endpoint, operation or "")
        child = self.histograms.get(key)
        if child is None:
            seen = self.per_endpoint.get(endpoint, 0)
            if operation and seen >= MAX_OPERATIONS:
                return self.histogram(endpoint, "other")
            self.per_endpoint[endpoint] = seen + 1
            child = REQUEST_SECONDS.labels(endpoint, operation or "")
            self.histograms[key] = child
        return child


_labels = _Labels()


def record(observation: Observation, seconds: float) -> None:
    _labels.histogram(observation.endpoint, observation.operation).observe(seconds)
    RESPONSES.labels(observation.endpoint, str(observation.status)).inc()
    for code in observation.codes:
        ERRORS.labels(observation.endpoint, code if code in _CODES else "OTHER").inc()


class ObserveRequests:
    """Times each HTTP request, counts its response and errors, and hands it to the request
    log once the response is sent."""

    def __init__(self, app: ASGIApp, *, log: Callable[[Observation, float], None]) -> None:
        self.app = app
        self.log = log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        observation = Observation(
            method=scope["method"],
            path=path,
            endpoint=endpoint_of(path),
            request_id=scope.get("state", {}).get("request_id", ""),
        )
        token = _current.set(observation)

        async def observing_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                observation.status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, observing_send)
        except Exception:
            observation.status = observation.status or 500
            observation.codes.append(ErrorCode.INTERNAL_ERROR.value)
            raise
        finally:
            seconds = time.perf_counter() - observation.started
            record(observation, seconds)
            self.log(observation, seconds)
            _current.reset(token)


def watch_connections(db: Database) -> None:
    """Counts connections in and out of the pool as it hands them out: a worker's own figure,
    which every worker's scrape sums in multiprocess mode."""
    engine = db.engine.sync_engine
    if not event.contains(engine, "checkout", _checked_out):
        event.listen(engine, "checkout", _checked_out)
        event.listen(engine, "checkin", _checked_in)


def _checked_out(*_: object) -> None:
    CONNECTIONS_IN_USE.inc()


def _checked_in(*_: object) -> None:
    CONNECTIONS_IN_USE.dec()


@dataclass(frozen=True, slots=True)
class OutboxState:
    pending: int
    failed: int
    oldest_due: datetime | None


async def outbox_state(db: Database) -> OutboxState:
    """Emails waiting and failed, and when the longest-waiting due email fell due, in one
    statement over the outbox's (status, next_attempt_at) index."""
    async with db.session(SYSTEM) as session:
        rows = (
            await session.execute(
                sa.select(
                    col(OutboxEmail.status),
                    sa.func.count(),
                    sa.func.min(col(OutboxEmail.next_attempt_at)),
                )
                .where(col(OutboxEmail.status).in_([OutboxStatus.PENDING, OutboxStatus.FAILED]))
                .group_by(col(OutboxEmail.status))
            )
        ).all()
    counts = {status: (count, oldest) for status, count, oldest in rows}
    pending, oldest = counts.get(OutboxStatus.PENDING, (0, None))
    return OutboxState(
        pending=pending,
        failed=counts.get(OutboxStatus.FAILED, (0, None))[0],
        oldest_due=oldest,
    )


def _scraped_registry() -> CollectorRegistry:
    if MULTIPROCESS_DIR not in os.environ:
        return REGISTRY
    registry = CollectorRegistry()
    MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return registry


def metrics_endpoint(db: Database) -> Callable[[Request], Awaitable[Response]]:
    async def metrics(_: Request) -> Response:
        outbox = await outbox_state(db)
        now = utcnow()
        scrape = CollectorRegistry()
        Gauge("portal_outbox_emails_pending", "Emails waiting to be sent.", registry=scrape).set(
            outbox.pending
        )
        Gauge(
            "portal_outbox_emails_failed",
            "Emails that failed for good (`portal mail-retry` queues them again).",
            registry=scrape,
        ).set(outbox.failed)
        Gauge(
            "portal_outbox_oldest_due_seconds",
            "How long the longest-waiting email has been due; 0 when none is.",
            registry=scrape,
        ).set(
            max(0.0, (now - outbox.oldest_due).total_seconds())
            if outbox.oldest_due is not None
            else 0.0
        )
        body = generate_latest(_scraped_registry()) + generate_latest(scrape)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    return metrics
