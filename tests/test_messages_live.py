"""Live messages over WebSocket (H8, E13; SECURITY rows 36 and 37), against the service as
deployed: uvicorn in processes of its own, `graphql-transport-ws` on both endpoints."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
import websockets
from sqlmodel import col
from strawberry.relay import from_base64, to_base64
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from app.db.base import utcnow
from app.db.models import Contact, JobVisit, StaffUser, Tenant
from app.db.scope import SYSTEM
from app.db.session import Database
from app.messages.live import LiveEvent, LiveEvents
from app.schema.trusted import OPERATIONS
from app.settings import Settings
from tests.conftest import BACKENDS, make_settings
from tests.served import Server, served
from tests.support import PORTAL, STAFF
from tests.test_messages import SEND, World, world

# Tokens are issued for the address the tests' settings name.
LIVE_ENV = {
    "PORTAL_ENV": "test",
    "PORTAL_PUBLIC_URL": "http://127.0.0.1:8000",
    "PORTAL_LIVE_ACCESS_CHECK_SECONDS": "0.5",
}
ADDED = """subscription Added($after: String) {
  messageAdded(after: $after) { body cursor authorName thread { title } }
}"""
PORTAL_USERS = {"ann", "ben", "cat", "sid"}
PROTOCOL = [Subprotocol("graphql-transport-ws")]
QUIET = 1.0  # seconds in which nothing more may arrive


def _ws_url(server: Server, path: str) -> str:
    return server.url.replace("http://", "ws://") + path


@asynccontextmanager
async def connected(
    server: Server,
    path: str,
    payload: dict[str, Any] | None,
    *,
    headers: dict[str, str] | None = None,
) -> AsyncIterator[ClientConnection]:
    async with websockets.connect(
        _ws_url(server, path), subprotocols=PROTOCOL, additional_headers=headers
    ) as socket:
        await socket.send(json.dumps({"type": "connection_init", "payload": payload or {}}))
        yield socket


async def _next(socket: ClientConnection, wait: float = 15) -> dict[str, Any]:
    while True:
        message: dict[str, Any] = json.loads(await asyncio.wait_for(socket.recv(), wait))
        if message["type"] == "ping":
            await socket.send(json.dumps({"type": "pong"}))
            continue
        return message


async def _close_code(socket: ClientConnection, wait: float = 15) -> int:
    with pytest.raises(ConnectionClosed) as closed:
        while True:
            await _next(socket, wait)
    assert closed.value.rcvd is not None
    return closed.value.rcvd.code


@asynccontextmanager
async def subscribed(
    server: Server, w: World, who: str, after: str | None = None
) -> AsyncIterator[ClientConnection]:
    path = PORTAL if who in PORTAL_USERS else STAFF
    async with connected(server, path, {"authorization": f"Bearer {w.tokens[who]}"}) as socket:
        assert (await _next(socket))["type"] == "connection_ack"
        await socket.send(
            json.dumps(
                {
                    "id": "1",
                    "type": "subscribe",
                    "payload": {"query": ADDED, "variables": {"after": after}},
                }
            )
        )
        # The subscription listens once its first step has run.
        await asyncio.sleep(0.5)
        yield socket


async def _bodies(socket: ClientConnection, count: int) -> list[str]:
    bodies: list[str] = []
    while len(bodies) < count:
        message = await _next(socket)
        assert message["type"] == "next", message
        bodies.append(message["payload"]["data"]["messageAdded"]["body"])
    # And nothing more.
    with pytest.raises(TimeoutError):
        await _next(socket, QUIET)
    return bodies


async def _send(http: httpx.AsyncClient, w: World, who: str, about: str, body: str) -> None:
    path = PORTAL if who in PORTAL_USERS else STAFF
    response = await http.post(
        path,
        json={"query": SEND, "variables": {"about": w.ids[about], "body": body}},
        headers={"authorization": f"Bearer {w.tokens[who]}"},
    )
    assert "errors" not in response.json(), response.text


@contextmanager
def server_on(database_url: str, **environment: str) -> Iterator[Server]:
    with served(database_url, {**LIVE_ENV, **environment}) as server:
        yield server


async def _world_with_visits(db: Database, settings: Settings) -> World:
    """The messages world, with the second technician on the other customer's job."""
    w = await world(db, settings)
    async with db.transaction(SYSTEM) as session:
        tara = await session.scalar(
            sa.select(StaffUser).where(col(StaffUser.name) == "Tara Elsewhere")
        )
        assert tara is not None
        now = utcnow()
        session.add(
            JobVisit(
                tenant_id=w.tenant.id,
                job_id=uuid.UUID(from_base64(w.ids["other_job"])[1]),
                starts_at=now,
                ends_at=now + timedelta(hours=1),
                technician_id=tara.id,
            )
        )
    return w


async def test_h8_e13_messages_arrive_live_to_exactly_who_may_see_them(
    db: Database, database_url: str, settings: Settings
) -> None:
    w = await _world_with_visits(db, settings)
    expected = {
        "ann": ["m1", "m2", "m4", "m5"],
        "ben": ["m1", "m2", "m4", "m5"],
        "sid": ["m1", "m4", "m5"],
        "technician": ["m1", "m5"],
        "dispatcher": ["m1", "m2", "m3", "m4", "m5"],
        "cat": ["m3"],
        "elsewhere": ["m3"],
    }
    with server_on(database_url) as server:
        async with contextlib.AsyncExitStack() as stack:
            sockets = {
                who: await stack.enter_async_context(subscribed(server, w, who)) for who in expected
            }
            async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
                await _send(http, w, "dispatcher", "job", "m1")
                await _send(http, w, "ann", "invoice", "m2")
                await _send(http, w, "dispatcher", "other_job", "m3")
                await _send(http, w, "dispatcher", "request", "m4")
                await _send(http, w, "technician", "job", "m5")
            got = await asyncio.gather(
                *(_bodies(sockets[who], len(bodies)) for who, bodies in expected.items())
            )
    assert dict(zip(expected, got, strict=True)) == expected


async def test_h8_a_subscriber_resumes_from_its_cursor(
    db: Database, database_url: str, settings: Settings
) -> None:
    w = await world(db, settings)
    with server_on(database_url) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            async with subscribed(server, w, "ann") as socket:
                await _send(http, w, "dispatcher", "job", "first")
                message = await _next(socket)
                cursor = message["payload"]["data"]["messageAdded"]["cursor"]
            # Away: two messages go by, one of them on a thread Ann may not read.
            await _send(http, w, "dispatcher", "quote", "missed")
            await _send(http, w, "dispatcher", "other_job", "not hers")
            async with subscribed(server, w, "ann", after=cursor) as socket:
                await _send(http, w, "ben", "job", "live")
                assert await _bodies(socket, 2) == ["missed", "live"]


async def test_sec36_a_connection_signs_in_at_init_or_is_closed_before_anything_runs(
    db: Database, database_url: str, settings: Settings
) -> None:
    w = await world(db, settings)
    with server_on(database_url) as server:
        refusals: list[tuple[str, dict[str, Any], dict[str, str] | None, int]] = [
            (PORTAL, {}, None, 4401),
            (PORTAL, {"authorization": "Bearer not-a-token"}, None, 4401),
            (PORTAL, {"authorization": f"Bearer {w.tokens['owner']}"}, None, 4401),
            (STAFF, {"authorization": f"Bearer {w.tokens['ann']}"}, None, 4401),
            (PORTAL, {"token": 42}, None, 4401),
        ]
        for path, payload, headers, code in refusals:
            async with connected(server, path, payload, headers=headers) as socket:
                assert await _close_code(socket) == code, payload
        # Subscribing without signing in closes the connection, and runs nothing.
        async with websockets.connect(
            _ws_url(server, PORTAL),
            subprotocols=["graphql-transport-ws"],  # type: ignore[list-item]
        ) as socket:
            await socket.send(
                json.dumps({"id": "1", "type": "subscribe", "payload": {"query": ADDED}})
            )
            assert await _close_code(socket) == 4401
        # The session cookie, from a page of another site: refused.
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            signed_in = await http.post(
                PORTAL,
                json={
                    "query": 'mutation { signIn(login: "ann", password: "correct horse battery'
                    ' staple", client: BROWSER) { viewer { id } } }'
                },
                headers={"origin": "http://127.0.0.1:8000"},
            )
        assert "errors" not in signed_in.json(), signed_in.text
        cookie = "; ".join(f"{name}={value}" for name, value in signed_in.cookies.items())
        foreign = {"cookie": cookie, "origin": "https://elsewhere.example"}
        async with connected(server, PORTAL, {}, headers=foreign) as socket:
            assert await _close_code(socket) == 4403
        own = {"cookie": cookie, "origin": "http://127.0.0.1:8000"}
        async with connected(server, PORTAL, {}, headers=own) as socket:
            assert (await _next(socket))["type"] == "connection_ack"
        # Queries and mutations are not run over the socket.
        async with connected(
            server, PORTAL, {"authorization": f"Bearer {w.tokens['ann']}"}
        ) as socket:
            assert (await _next(socket))["type"] == "connection_ack"
            await socket.send(
                json.dumps(
                    {"id": "q", "type": "subscribe", "payload": {"query": "{ unreadMessageCount }"}}
                )
            )
            refused = await _next(socket)
            assert refused["type"] == "error"
            assert refused["payload"][0]["extensions"]["code"] == "BAD_REQUEST"


async def _switch(db: Database, statement: Any) -> None:
    async with db.transaction(SYSTEM) as session:
        await session.execute(statement)


@pytest.mark.parametrize("switch", ["contact", "tenant", "sign_out"])
async def test_sec37_switching_off_or_signing_out_ends_the_subscription_at_once(
    db: Database, database_url: str, settings: Settings, switch: str
) -> None:
    w = await world(db, settings)
    with server_on(database_url) as server:
        async with (
            httpx.AsyncClient(base_url=server.url, timeout=30) as http,
            subscribed(server, w, "ann") as socket,
            subscribed(server, w, "ben") as ben,
        ):
            await _send(http, w, "dispatcher", "job", "before")
            assert (await _next(socket))["payload"]["data"]["messageAdded"]["body"] == "before"
            assert (await _next(ben))["payload"]["data"]["messageAdded"]["body"] == "before"
            if switch == "contact":
                await _switch(
                    db,
                    sa.update(Contact)
                    .where(col(Contact.email) == "ann@a.example")
                    .values(portal_access=False),
                )
            elif switch == "tenant":
                await _switch(
                    db,
                    sa.update(Tenant)
                    .where(col(Tenant.id) == w.tenant.id)
                    .values(portal_enabled=False),
                )
            else:
                out = await http.post(
                    PORTAL,
                    json={"query": "mutation { signOut }"},
                    headers={"authorization": f"Bearer {w.tokens['ann']}"},
                )
                assert "errors" not in out.json(), out.text
            # Without any event: the next check closes it.
            assert await _close_code(socket, wait=5) == 4403
            await _send(http, w, "dispatcher", "job", "after")
            if switch == "tenant":
                assert await _close_code(ben, wait=5) == 4403
            else:
                # Another user of the same customer keeps theirs.
                assert await _bodies(ben, 1) == ["after"]


async def test_h8_limits_close_or_refuse_what_is_over_them(
    db: Database, database_url: str, settings: Settings
) -> None:
    w = await world(db, settings)
    limits = {
        "PORTAL_LIVE_CONNECTIONS_PER_VIEWER": "2",
        "PORTAL_LIVE_SUBSCRIPTIONS_PER_CONNECTION": "2",
        "PORTAL_LIVE_MAX_MESSAGE_BYTES": "2048",
        "PORTAL_LIVE_SIGN_IN_SECONDS": "1",
    }
    bearer = {"authorization": f"Bearer {w.tokens['ann']}"}
    with server_on(database_url, **limits) as server:
        async with (
            connected(server, PORTAL, bearer) as one,
            connected(server, PORTAL, bearer) as two,
        ):
            assert (await _next(one))["type"] == "connection_ack"
            assert (await _next(two))["type"] == "connection_ack"
            async with connected(server, PORTAL, bearer) as three:
                assert await _close_code(three) == 4429
            for n in range(3):
                await one.send(
                    json.dumps({"id": str(n), "type": "subscribe", "payload": {"query": ADDED}})
                )
            refused = await _next(one)
            assert (refused["id"], refused["type"]) == ("2", "error")
            await two.send(json.dumps({"type": "ping", "payload": {"pad": "x" * 4096}}))
            assert await _close_code(two) == 1009
        # Closed connections count no more.
        async with connected(server, PORTAL, bearer) as again:
            assert (await _next(again))["type"] == "connection_ack"
        # A connection that never signs in is closed.
        async with websockets.connect(
            _ws_url(server, PORTAL),
            subprotocols=["graphql-transport-ws"],  # type: ignore[list-item]
        ) as idle:
            assert await _close_code(idle) == 4408


async def test_h8_an_event_staged_in_a_transaction_that_rolls_back_reaches_nobody(
    db: Database, database_url: str
) -> None:
    settings = make_settings(database_url)
    live = LiveEvents(settings)
    w_tenant = Tenant(slug="rolled", name="Rolled")
    async with db.transaction(SYSTEM) as session:
        session.add(w_tenant)
    ids = [w_tenant.id, w_tenant.id]
    try:
        async with live.listen() as queue:
            gone = LiveEvent("message", ids[0], ids[1], w_tenant.id)
            with pytest.raises(RuntimeError):
                async with db.transaction(SYSTEM) as session:
                    await live.stage(session, gone)
                    raise RuntimeError("the send fails")
            kept = LiveEvent("message", ids[0], ids[1], ids[0])
            async with db.transaction(SYSTEM) as session:
                await live.stage(session, kept)
            await live.committed(kept)
            assert await asyncio.wait_for(queue.get(), 10) == kept
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(queue.get(), QUIET)
    finally:
        await live.close()


REDIS_URL = os.environ.get("PORTAL_TEST_REDIS_URL", "").strip()
# Two servers share events through PostgreSQL's LISTEN/NOTIFY, or through Redis when set.
CROSS_PROCESS = [
    *([("postgresql", "database")] if "postgresql" in BACKENDS else []),
    *([(backend, "redis") for backend in BACKENDS] if REDIS_URL else []),
]


@pytest.mark.parametrize(("database_url", "fanout"), CROSS_PROCESS, indirect=["database_url"])
async def test_h8_a_message_sent_on_one_server_reaches_a_subscriber_on_another(
    db: Database, database_url: str, settings: Settings, fanout: str
) -> None:
    w = await world(db, settings)
    shared = {"PORTAL_REDIS_URL": REDIS_URL} if fanout == "redis" else {}
    with (
        server_on(database_url, **shared) as listening,
        server_on(database_url, **shared) as sending,
    ):
        async with (
            subscribed(listening, w, "ann") as ann,
            subscribed(listening, w, "cat") as cat,
            subscribed(sending, w, "dispatcher") as office,
            httpx.AsyncClient(base_url=sending.url, timeout=30) as http,
        ):
            await _send(http, w, "dispatcher", "job", "from the other worker")
            await _send(http, w, "cat", "other_job", "cat's own")
            assert await _bodies(ann, 1) == ["from the other worker"]
            assert await _bodies(cat, 1) == ["cat's own"]
            assert await _bodies(office, 2) == ["from the other worker", "cat's own"]


LIVE_CLIENT = Path(__file__).resolve().parent / "live_client"
NODE = shutil.which("node")


@pytest.fixture(scope="session")
def live_client() -> Path:
    """The stock graphql-ws client, installed from its lock file when it changed."""
    npm = shutil.which("npm")
    if npm is None or NODE is None:
        if os.environ.get("CI"):
            pytest.fail("CI drives the stock graphql-ws client: install Node and npm")
        pytest.skip("the graphql-ws client needs Node and npm")
    installed = LIVE_CLIENT / "node_modules" / ".package-lock.json"
    lock = LIVE_CLIENT / "package-lock.json"
    if not installed.exists() or installed.stat().st_mtime < lock.stat().st_mtime:
        subprocess.run(  # noqa: S603  (npm from PATH, fixed arguments)
            [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=LIVE_CLIENT,
            check=True,
            timeout=300,
        )
    return LIVE_CLIENT


async def test_h8_the_stock_graphql_ws_client_subscribes_with_the_contract_operation(
    db: Database, database_url: str, settings: Settings, live_client: Path
) -> None:
    w = await world(db, settings)
    assert NODE is not None
    operation = OPERATIONS / "MessageAdded.graphql"
    with server_on(database_url) as server:
        process = await asyncio.create_subprocess_exec(
            NODE,
            "subscribe.mjs",
            _ws_url(server, PORTAL),
            w.tokens["sid"],
            "2",
            str(operation),
            cwd=live_client,
            stdout=asyncio.subprocess.PIPE,
        )
        assert process.stdout is not None
        try:
            first = json.loads(await asyncio.wait_for(process.stdout.readline(), 60))
            assert first == {"connected": True}
            await asyncio.sleep(0.5)
            async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
                await _send(http, w, "dispatcher", "invoice", "not for a site contact")
                await _send(http, w, "dispatcher", "job", "for the site")
                await _send(http, w, "ann", "request", "also for the site")
            lines = [
                json.loads(await asyncio.wait_for(process.stdout.readline(), 60)) for _ in range(3)
            ]
            assert await asyncio.wait_for(process.wait(), 30) == 0
        finally:
            if process.returncode is None:
                process.kill()
    events = [line["next"]["data"]["messageAdded"] for line in lines[:2]]
    assert [(e["body"], e["authorName"], e["fromYou"]) for e in events] == [
        ("for the site", w.tenant.name, False),
        ("also for the site", "Jo Customer", False),
    ]
    assert events[0]["thread"]["title"] == "Job J-1"
    assert lines[2] == {"done": True}


@pytest.mark.parametrize("change", ["staff_switch", "sign_out", "tenant_switch"])
async def test_sec37_an_access_change_ends_subscriptions_without_waiting_for_a_check(
    db: Database, database_url: str, settings: Settings, change: str
) -> None:
    w = await world(db, settings)
    async with db.session(SYSTEM) as session:
        ann = await session.scalar(
            sa.select(col(Contact.id)).where(col(Contact.email) == "ann@a.example")
        )
    # Checks that come only once a minute: what ends the subscription is the change itself.
    with server_on(database_url, PORTAL_LIVE_ACCESS_CHECK_SECONDS="60") as server:
        async with (
            httpx.AsyncClient(base_url=server.url, timeout=30) as http,
            subscribed(server, w, "ann") as socket,
        ):
            if change == "staff_switch":
                query = "mutation($id: ID!) { setContactPortalAccess(contactId: $id, enabled:"
                query += " false) { id } }"
                variables = {"id": to_base64("Contact", str(ann))}
                path, who = STAFF, "owner"
            elif change == "sign_out":
                query, variables, path, who = "mutation { signOut }", {}, PORTAL, "ann"
            else:
                query = "mutation { updatePortalSettings(input: {portalEnabled: false}) {"
                query += " portalEnabled } }"
                variables, path, who = {}, STAFF, "owner"
            done = await http.post(
                path,
                json={"query": query, "variables": variables},
                headers={"authorization": f"Bearer {w.tokens[who]}"},
            )
            assert "errors" not in done.json(), done.text
            assert await _close_code(socket, wait=10) == 4403
