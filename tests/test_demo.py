"""The demo that `make run` seeds: complete, consistent, the same on every run, and every
demo sign-in in the README works."""

from __future__ import annotations

from collections import Counter

import httpx
import sqlalchemy as sa
from sqlmodel import SQLModel, col

from app.db.demo import DEMO_PASSWORD, DEMO_SIGN_INS, database_is_empty, seed_demo
from app.db.models import (
    Certificate,
    Invoice,
    InvoiceLine,
    InvoiceStatus,
    Payment,
    Quote,
    QuoteLine,
    QuoteStatus,
    RequestStatus,
    ServiceRequest,
    StaffRole,
    StaffUser,
    StoredFile,
    Tenant,
)
from app.db.scope import SYSTEM
from app.db.session import Database
from tests.conftest import DEMO_TODAY
from tests.support import PORTAL, error_codes, gql

HASHES = {"password_hash"}


async def _rows(db: Database) -> dict[str, list[tuple[object, ...]]]:
    """Every row of every table, except password hashes (salted, so never the same twice)."""
    dump = {}
    async with db.session(SYSTEM) as session:
        for table in SQLModel.metadata.sorted_tables:
            columns = [column for column in table.columns if column.name not in HASHES]
            result = await session.execute(sa.select(*columns).order_by(*table.primary_key.columns))
            dump[table.name] = [tuple(row) for row in result]
    return dump


async def test_h6_the_demo_is_the_same_on_every_run(db: Database, demo_db: Database) -> None:
    assert await database_is_empty(db)
    await seed_demo(db, today=DEMO_TODAY)
    assert not await database_is_empty(db)
    assert await _rows(db) == await _rows(demo_db)


async def test_h6_the_demo_has_every_state_a_screen_can_show(demo_db: Database) -> None:
    async with demo_db.session(SYSTEM) as session:
        invoices = list(await session.scalars(sa.select(Invoice)))
        lines = Counter[object]()
        for line in await session.scalars(sa.select(InvoiceLine)):
            assert line.total_minor == line.quantity * line.unit_price_minor
            lines[line.invoice_id] += line.total_minor
        quote_lines = Counter[object]()
        for quote_line in await session.scalars(sa.select(QuoteLine)):
            quote_lines[quote_line.quote_id] += quote_line.total_minor
        quotes = list(await session.scalars(sa.select(Quote)))
        paid = Counter[object]()
        for payment in await session.scalars(sa.select(Payment)):
            paid[payment.invoice_id] += payment.amount_minor
        requests = set(await session.scalars(sa.select(col(ServiceRequest.status))))
        roles = set(await session.scalars(sa.select(col(StaffUser.role))))
        plans = set(await session.scalars(sa.select(col(Tenant.plan))))
        documents = list(await session.scalars(sa.select(StoredFile)))
        certificates = list(await session.scalars(sa.select(Certificate)))

    states = {invoice.status for invoice in invoices}
    assert states == set(InvoiceStatus)
    unpaid = [invoice for invoice in invoices if invoice.status is InvoiceStatus.UNPAID]
    assert any(invoice.due_on < DEMO_TODAY for invoice in unpaid), "an overdue invoice"
    assert any(invoice.due_on >= DEMO_TODAY for invoice in unpaid), "one not yet due"
    assert any(0 < invoice.paid_minor < invoice.total_minor for invoice in unpaid), "part-paid"
    for invoice in invoices:
        assert invoice.total_minor == lines[invoice.id]
        assert invoice.paid_minor == paid[invoice.id]
    for quote in quotes:
        assert quote.total_minor == quote_lines[quote.id]
    assert {quote.status for quote in quotes} == set(QuoteStatus)
    assert requests == set(RequestStatus)
    assert roles == set(StaffRole)
    assert len(plans) == 2
    assert len(certificates) == len(documents) > 0
    for document in documents:
        assert document.content.startswith(b"%PDF-1.4") and document.content.rstrip().endswith(
            b"%%EOF"
        )
        assert document.byte_size == len(document.content)


async def test_p2_every_demo_sign_in_works(demo_client: httpx.AsyncClient) -> None:
    for sign_in in DEMO_SIGN_INS:
        if sign_in.kind == "staff":
            body = await gql(
                demo_client,
                "mutation ($t: String!, $e: String!, $p: String!) "
                "{ signIn(tenant: $t, email: $e, password: $p) { viewer { email } } }",
                {"t": sign_in.tenant_slug, "e": sign_in.email, "p": DEMO_PASSWORD},
            )
            assert body["data"]["signIn"]["viewer"]["email"] == sign_in.email, sign_in
            continue
        body = await gql(
            demo_client,
            "mutation ($l: String!, $p: String!) "
            "{ signIn(login: $l, password: $p) { viewer { email } } }",
            {"l": sign_in.username or sign_in.email, "p": DEMO_PASSWORD},
            path=PORTAL,
        )
        if "switched off" in sign_in.role:
            assert error_codes(body) == ["PORTAL_DISABLED"], sign_in
        else:
            assert body["data"]["signIn"]["viewer"]["email"] == sign_in.email, sign_in
