"""P2, P3 and SECURITY row 19: asking for a reset or sign-in link answers the same way,
with the same work, for any address; only a real account gets mail."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx
import sqlalchemy as sa
from sqlmodel import col

from app.auth.links import send_requested_links
from app.db.base import utcnow
from app.db.models import EmailLinkRequest, OutboxEmail
from app.db.scope import SYSTEM
from app.db.session import Database
from app.main import create_app
from app.settings import Settings
from tests.conftest import http_client, make_settings
from tests.support import PORTAL, count_statements, gql, make_portal_user, make_tenant


async def _ask(client: httpx.AsyncClient, mutation: str, email: str) -> httpx.Response:
    return await client.post(
        PORTAL,
        json={
            "query": f"mutation ($e: String!) {{ {mutation}(email: $e) }}",
            "variables": {"e": email},
        },
    )


async def _mail_to(db: Database) -> list[str]:
    async with db.session(SYSTEM) as session:
        return list(await session.scalars(sa.select(col(OutboxEmail.to_address))))


async def test_p2_a_reset_request_costs_the_same_for_a_missing_address(
    db: Database, client: httpx.AsyncClient, settings: Settings
) -> None:
    tenant, _ = await make_tenant(db, slug="acme")
    user = await make_portal_user(db, tenant)
    for mutation in ("requestPasswordReset", "requestMagicLink"):
        with count_statements(db) as real:
            known = await _ask(client, mutation, user.account.email)
        with count_statements(db) as made_up:
            unknown = await _ask(client, mutation, "nobody@nowhere.example")
        assert known.status_code == unknown.status_code == 200
        assert known.json() == unknown.json() == {"data": {mutation: True}}
        assert [s.split()[0] for s in real.statements] == [s.split()[0] for s in made_up.statements]
    assert await _mail_to(db) == []
    assert await send_requested_links(db, settings) == 2
    assert sorted(await _mail_to(db)) == [user.account.email] * 2


async def test_p3_links_are_mailed_once_and_only_to_accounts_that_may_sign_in(
    db: Database, client: httpx.AsyncClient, settings: Settings
) -> None:
    tenant, _ = await make_tenant(db, slug="acme")
    user = await make_portal_user(db, tenant)
    blocked = await make_portal_user(db, tenant, email="off@customer.example", username="off")
    async with db.transaction(SYSTEM) as session:
        contact = await session.merge(blocked.contact)
        contact.portal_access = False
    for email in (user.account.email, blocked.account.email, "nobody@nowhere.example"):
        await _ask(client, "requestMagicLink", email)
    assert await send_requested_links(db, settings) == 1
    assert await send_requested_links(db, settings) == 0
    assert await _mail_to(db) == [user.account.email]
    async with db.session(SYSTEM) as session:
        waiting = await session.scalar(
            sa.select(sa.func.count()).where(col(EmailLinkRequest.handled_at).is_(None))
        )
    assert waiting == 0


async def test_p3_a_request_left_waiting_past_a_links_life_is_dropped(
    db: Database, client: httpx.AsyncClient, settings: Settings
) -> None:
    tenant, _ = await make_tenant(db, slug="acme")
    user = await make_portal_user(db, tenant)
    await _ask(client, "requestMagicLink", user.account.email)
    async with db.transaction(SYSTEM) as session:
        await session.execute(
            sa.update(EmailLinkRequest).values(requested_at=utcnow() - timedelta(hours=1))
        )
    assert await send_requested_links(db, settings) == 0
    assert await _mail_to(db) == []


async def test_p2_the_running_server_mails_a_requested_reset_link(
    db: Database, database_url: str
) -> None:
    tenant, _ = await make_tenant(db, slug="acme")
    user = await make_portal_user(db, tenant)
    app = create_app(make_settings(database_url, mail_poll_seconds=0.05), db=db)
    async with app.router.lifespan_context(app), http_client(app) as client:
        body = await gql(
            client, 'mutation { requestPasswordReset(email: "jo@customer.example") }', path=PORTAL
        )
        assert body == {"data": {"requestPasswordReset": True}}
        for _ in range(100):
            if await _mail_to(db):
                break
            await asyncio.sleep(0.05)
    assert await _mail_to(db) == [user.account.email]
