"""Helpers the API tests share: posting GraphQL, global ids, reading the SDL, signing in by
token, counting SQL, writing the few rows a test needs and reading rows back, free ports."""

from __future__ import annotations

import re
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx
import sqlalchemy as sa
from graphql import (
    GraphQLEnumType,
    GraphQLField,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLNonNull,
    GraphQLSchema,
    build_schema,
    get_named_type,
)
from sqlalchemy import event
from sqlmodel import SQLModel, col
from strawberry.relay import to_base64

from app.auth.links import send_requested_links
from app.auth.sessions import start_session
from app.db.base import utcnow
from app.db.models import (
    Contact,
    ContactKind,
    Customer,
    OutboxEmail,
    Plan,
    PortalAccount,
    PortalMembership,
    RequestableItem,
    RequestableKind,
    RequestStatus,
    ServiceRequest,
    SessionAudience,
    SessionClient,
    Site,
    StaffRole,
    StaffUser,
    Tenant,
)
from app.db.scope import SYSTEM
from app.db.session import Database
from app.settings import Environment, Settings

STAFF = "/graphql"
PORTAL = "/portal/graphql"

T = TypeVar("T", bound=SQLModel)


async def gql(
    client: httpx.AsyncClient,
    query: str,
    variables: dict[str, Any] | None = None,
    *,
    path: str = STAFF,
    token: str | None = None,
) -> dict[str, Any]:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    response = await client.post(
        path, json={"query": query, "variables": variables or {}}, headers=headers
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def error_codes(body: dict[str, Any]) -> list[str]:
    return [error.get("extensions", {}).get("code") for error in body.get("errors", [])]


def gid(type_name: str, row_id: uuid.UUID) -> str:
    """The global id the API gives a row of `type_name`."""
    return to_base64(type_name, str(row_id))


def sdl_schema(path: Path) -> GraphQLSchema:
    """A committed SDL file, built into a schema to read its types, fields and directives."""
    return build_schema(path.read_text())


def root_fields(schema: GraphQLSchema) -> list[tuple[str, str, GraphQLField]]:
    """Every query and mutation field: ("query" or "mutation", its name, the field)."""
    roots = [("query", schema.query_type), ("mutation", schema.mutation_type)]
    return [
        (kind, name, field)
        for kind, root in roots
        if root is not None
        for name, field in root.fields.items()
    ]


def input_value(kind: GraphQLInputType) -> Any:
    """A well-formed value of an input type, with only its required parts filled in."""
    named = get_named_type(kind)
    if isinstance(named, GraphQLInputObjectType):
        return {
            name: input_value(field.type)
            for name, field in named.fields.items()
            if isinstance(field.type, GraphQLNonNull)
        }
    if isinstance(named, GraphQLEnumType):
        return next(iter(named.values))
    return {
        "ID": to_base64("Contact", "00000000-0000-0000-0000-000000000000"),
        "String": "x",
        "Int": 1,
        "Boolean": True,
        "DateTime": "2026-01-01T00:00:00Z",
    }[named.name]


def free_port() -> int:
    """A loopback port nothing listens on now, for a server a test starts."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def staff_token(db: Database, settings: Settings, user: StaffUser) -> str:
    """A bearer token of a real mobile session for `user`, as signing in would give."""
    async with db.transaction(SYSTEM) as session:
        credentials = await start_session(
            session,
            settings,
            audience=SessionAudience.STAFF,
            client=SessionClient.MOBILE,
            tenant_id=user.tenant_id,
            staff_user_id=user.id,
        )
    assert credentials.access_token is not None
    return credentials.access_token


@dataclass
class StatementCounter:
    statements: list[str] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.statements)


_TRANSACTION_CONTROL = {"BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE"}


@contextmanager
def count_statements(db: Database) -> Iterator[StatementCounter]:
    """Counts every SQL statement the database runs inside the block."""
    counter = StatementCounter()

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        # Transaction control is not work; SQLite's explicit BEGIN would double the count.
        if statement.split(None, 1)[0].upper() not in _TRANSACTION_CONTROL:
            counter.statements.append(statement)

    event.listen(db.engine.sync_engine, "before_cursor_execute", record)
    try:
        yield counter
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", record)


async def rows(db: Database, model: type[T], *where: Any) -> list[T]:
    """Every row of `model` that meets `where`, read past tenant scoping."""
    async with db.session(SYSTEM) as session:
        return list(await session.scalars(sa.select(model).where(*where)))


async def make_tenant(
    db: Database, *, slug: str, plan: Plan = Plan.PRO, role: StaffRole = StaffRole.OWNER
) -> tuple[Tenant, StaffUser]:
    tenant = Tenant(slug=slug, name=slug.title())
    user = StaffUser(
        tenant_id=tenant.id,
        email=f"{role.value.lower()}@{slug}.example",
        name="Sam Staff",
        role=role,
    )
    tenant.plan = plan
    async with db.transaction(SYSTEM) as session:
        session.add(tenant)
        await session.flush()
        session.add(user)
    return tenant, user


async def make_customers(
    db: Database, tenant: Tenant, count: int, *, contacts: int = 2, sites: int = 2
) -> list[Customer]:
    """`count` customers, each with company contacts and sites with a site contact each."""
    customers = [
        Customer(
            tenant_id=tenant.id,
            name=f"Customer {n:04d}",
            portal_identifier=f"c{n:04d}-{uuid.uuid4().hex[:6]}",
        )
        for n in range(count)
    ]
    async with db.transaction(SYSTEM) as session:
        session.add_all(customers)
        await session.flush()
        for customer in customers:
            site_rows = [
                Site(
                    tenant_id=tenant.id,
                    customer_id=customer.id,
                    name=f"Site {s}",
                    address_line1=f"{s} High Street",
                )
                for s in range(sites)
            ]
            session.add_all(site_rows)
            await session.flush()
            session.add_all(
                Contact(
                    tenant_id=tenant.id,
                    customer_id=customer.id,
                    kind=ContactKind.COMPANY,
                    name=f"Person {c}",
                )
                for c in range(contacts)
            )
            session.add_all(
                Contact(
                    tenant_id=tenant.id,
                    customer_id=customer.id,
                    site_id=site.id,
                    kind=ContactKind.SITE,
                    name=f"Site person {site.name}",
                )
                for site in site_rows
            )
    return customers


PASSWORD = "correct horse battery staple"


@dataclass
class PortalUser:
    tenant: Tenant
    customer: Customer
    contact: Contact
    account: PortalAccount


async def make_portal_user(
    db: Database,
    tenant: Tenant,
    *,
    email: str = "jo@customer.example",
    username: str | None = "jo",
    password: str = PASSWORD,
    customer: Customer | None = None,
) -> PortalUser:
    """A company contact with portal access, and the signed-up account it signs in with."""
    from app.auth.passwords import hash_password

    async with db.transaction(SYSTEM) as session:
        if customer is None:
            customer = Customer(
                tenant_id=tenant.id,
                name="Jo's Company",
                portal_identifier=f"jo-{uuid.uuid4().hex[:8]}",
            )
            session.add(customer)
            await session.flush()
        contact = Contact(
            tenant_id=tenant.id,
            customer_id=customer.id,
            kind=ContactKind.COMPANY,
            name="Jo Customer",
            email=email,
            portal_access=True,
        )
        account = (
            await session.scalars(sa.select(PortalAccount).where(col(PortalAccount.email) == email))
        ).first()
        if account is None:
            account = PortalAccount(
                email=email,
                username=username,
                name="Jo Customer",
                password_hash=hash_password(password),
            )
        session.add_all([contact, account])
        await session.flush()
        session.add(
            PortalMembership(tenant_id=tenant.id, account_id=account.id, contact_id=contact.id)
        )
    return PortalUser(tenant=tenant, customer=customer, contact=contact, account=account)


async def portal_token(db: Database, settings: Settings, account: PortalAccount) -> str:
    """A bearer token of a real mobile session for a portal account."""
    async with db.transaction(SYSTEM) as session:
        credentials = await start_session(
            session,
            settings,
            audience=SessionAudience.PORTAL,
            client=SessionClient.MOBILE,
            account_id=account.id,
        )
    assert credentials.access_token is not None
    return credentials.access_token


async def emailed_token(db: Database, to: str) -> str:
    """The token in the link of the newest email to `to`, once requested links are mailed."""
    await send_requested_links(db, Settings(env=Environment.TEST))
    async with db.session(SYSTEM) as session:
        body = await session.scalar(
            sa.select(col(OutboxEmail.text_body))
            .where(col(OutboxEmail.to_address) == to)
            .order_by(col(OutboxEmail.created_at).desc())
            .limit(1)
        )
    assert body is not None, f"no email to {to}"
    found = re.search(r"token=([A-Za-z0-9_\-]+)", body)
    assert found is not None, body
    return found.group(1)


async def account_and_contact(db: Database, email: str) -> tuple[PortalAccount, Contact]:
    """A portal account by email, with the (first) contact it signs in as."""
    async with db.session(SYSTEM) as session:
        row = (
            await session.execute(
                sa.select(PortalAccount, Contact)
                .join(PortalMembership, col(PortalMembership.account_id) == col(PortalAccount.id))
                .join(
                    Contact,
                    sa.and_(
                        col(Contact.tenant_id) == col(PortalMembership.tenant_id),
                        col(Contact.id) == col(PortalMembership.contact_id),
                    ),
                )
                .where(col(PortalAccount.email) == email)
                .order_by(col(Contact.id))
                .limit(1)
            )
        ).one()
    account, contact = row
    return account, contact


async def make_requests(
    db: Database,
    tenant: Tenant,
    count: int,
    *,
    status: RequestStatus = RequestStatus.NEW,
    prefix: str = "SR",
) -> list[ServiceRequest]:
    """`count` portal requests, each from its own customer with a site, a site contact, a
    product and a service; the newest is the last."""
    customers = await make_customers(db, tenant, count, contacts=0, sites=1)
    async with db.transaction(SYSTEM) as session:
        product = RequestableItem(tenant_id=tenant.id, kind=RequestableKind.PRODUCT, name="Skip")
        service = RequestableItem(
            tenant_id=tenant.id, kind=RequestableKind.SERVICE, name="Emptying"
        )
        session.add_all([product, service])
        sites = {
            site.customer_id: site
            for site in await session.scalars(
                sa.select(Site).where(col(Site.customer_id).in_([c.id for c in customers]))
            )
        }
        contacts = {
            contact.customer_id: contact
            for contact in await session.scalars(
                sa.select(Contact).where(col(Contact.customer_id).in_([c.id for c in customers]))
            )
        }
        await session.flush()
        start = utcnow() - timedelta(days=1)
        requests = [
            ServiceRequest(
                tenant_id=tenant.id,
                number=f"{prefix}-{n + 1:04d}",
                status=status,
                customer_id=customer.id,
                site_id=sites[customer.id].id,
                contact_id=contacts[customer.id].id,
                product_id=product.id,
                service_id=service.id,
                product_name=product.name,
                service_name=service.name,
                po_number=f"PO-{n + 1:04d}",
                created_at=start + timedelta(seconds=n),
            )
            for n, customer in enumerate(customers)
        ]
        session.add_all(requests)
    return requests
