"""The data layer: tenant scopes (T1), migrations and tenant-led indexes (H6), and money and
time conventions."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlmodel import SQLModel, col

from app.db import migrate
from app.db.models import Contact, ContactKind, Customer, Site
from app.db.scope import NOBODY, SYSTEM, Scope, UnscopedAccess
from app.db.session import Database
from tests.support import make_customers, make_tenant


async def _two_tenants(db: Database) -> tuple[uuid.UUID, uuid.UUID]:
    tenant_a, _ = await make_tenant(db, slug="alpha")
    tenant_b, _ = await make_tenant(db, slug="beta")
    await make_customers(db, tenant_a, 3)
    await make_customers(db, tenant_b, 2)
    return tenant_a.id, tenant_b.id


async def test_t1_a_tenant_scope_sees_only_its_own_rows_even_through_joins(db: Database) -> None:
    tenant_a, tenant_b = await _two_tenants(db)
    async with db.session(Scope.tenant(tenant_a)) as session:
        customers = list(await session.scalars(sa.select(Customer)))
        joined = list(
            await session.scalars(
                sa.select(col(Contact.name)).join(
                    Site,
                    sa.and_(
                        col(Site.tenant_id) == col(Contact.tenant_id),
                        col(Site.id) == col(Contact.site_id),
                    ),
                )
            )
        )
        counted = await session.scalar(sa.select(sa.func.count()).select_from(Customer))
    assert {row.tenant_id for row in customers} == {tenant_a}
    assert len(customers) == counted == 3
    assert len(joined) == 3 * 2  # two site contacts per customer, tenant A only
    async with db.session(Scope.tenants([tenant_a, tenant_b])) as session:
        assert await session.scalar(sa.select(sa.func.count()).select_from(Customer)) == 5


async def test_t1_a_table_reached_only_inside_a_subquery_or_by_a_column_is_filtered_too(
    db: Database,
) -> None:
    tenant_a, tenant_b = await _two_tenants(db)
    async with db.session(SYSTEM) as session:
        foreign = list(
            await session.scalars(
                sa.select(col(Customer.id)).where(col(Customer.tenant_id) == tenant_b)
            )
        )
    other = sa.orm.aliased(Customer)
    async with db.session(Scope.tenant(tenant_a)) as session:
        # Named only in a subquery, only in an EXISTS, only through an alias, and only
        # by a column: each is narrowed to tenant A like a selected table.
        in_subquery = await session.scalar(
            sa.select(sa.select(sa.func.count()).select_from(Customer).scalar_subquery())
        )
        through_exists = await session.scalar(
            sa.select(sa.func.count()).where(
                sa.select(col(Customer.id)).where(col(Customer.id).in_(foreign)).exists()
            )
        )
        aliased = await session.scalar(
            sa.select(sa.func.count()).select_from(other).where(col(other.id).in_(foreign))
        )
        by_column = list(await session.scalars(sa.select(col(Customer.id))))
    assert in_subquery == 3
    assert through_exists == 0
    assert aliased == 0
    assert len(by_column) == 3 and not set(by_column) & set(foreign)


def test_t1_no_table_loads_related_rows_the_tenant_criteria_would_not_reach() -> None:
    # A statement takes the criteria of the tables it names; a relationship load would reach
    # another table through criteria handed down from its parent, which no longer carries
    # them all. Related rows are read by statements of their own, through loaders.
    related = [
        f"{mapper.class_.__name__}.{name}"
        for mapper in SQLModel._sa_registry.mappers
        for name in mapper.relationships.keys()  # noqa: SIM118
    ]
    assert related == []


async def test_t1_another_tenants_row_by_primary_key_is_not_found(db: Database) -> None:
    tenant_a, tenant_b = await _two_tenants(db)
    async with db.session(SYSTEM) as session:
        foreign = (
            await session.scalars(sa.select(Customer).where(col(Customer.tenant_id) == tenant_b))
        ).first()
    assert foreign is not None
    async with db.session(Scope.tenant(tenant_a)) as session:
        assert (
            await session.scalars(sa.select(Customer).where(col(Customer.id) == foreign.id))
        ).first() is None


async def test_t1_updates_and_deletes_never_reach_another_tenant(db: Database) -> None:
    tenant_a, tenant_b = await _two_tenants(db)
    async with db.transaction(Scope.tenant(tenant_a)) as session:
        await session.execute(sa.update(Customer).values(name="renamed"))
        await session.execute(sa.delete(Contact).where(col(Contact.kind) == ContactKind.SITE))
    async with db.session(SYSTEM) as session:
        names: dict[uuid.UUID, int] = dict(
            (
                await session.execute(
                    sa.select(col(Customer.tenant_id), sa.func.count())
                    .where(col(Customer.name) == "renamed")
                    .group_by(col(Customer.tenant_id))
                )
            )
            .tuples()
            .all()
        )
        site_contacts: dict[uuid.UUID, int] = dict(
            (
                await session.execute(
                    sa.select(col(Contact.tenant_id), sa.func.count())
                    .where(col(Contact.kind) == ContactKind.SITE)
                    .group_by(col(Contact.tenant_id))
                )
            )
            .tuples()
            .all()
        )
    assert names == {tenant_a: 3}
    assert site_contacts == {tenant_b: 4}


async def test_t1_writing_another_tenants_row_is_refused_and_nothing_is_written(
    db: Database,
) -> None:
    tenant_a, tenant_b = await _two_tenants(db)
    with pytest.raises(UnscopedAccess):
        async with db.transaction(Scope.tenant(tenant_a)) as session:
            session.add(Customer(tenant_id=tenant_a, name="mine", portal_identifier="mine"))
            session.add(Customer(tenant_id=tenant_b, name="theirs", portal_identifier="theirs"))
    async with db.session(SYSTEM) as session:
        names = set(await session.scalars(sa.select(col(Customer.name))))
    assert not names & {"mine", "theirs"}


async def test_t1_a_session_without_scope_cannot_touch_tenant_tables(db: Database) -> None:
    await _two_tenants(db)
    async with db._sessions() as session:  # the one way around Database.session, on purpose
        with pytest.raises(UnscopedAccess):
            await session.execute(sa.select(Customer))
    async with db.session(NOBODY) as session:
        assert list(await session.scalars(sa.select(Customer))) == []


async def test_t1_the_database_refuses_a_child_pointing_at_another_tenants_parent(
    db: Database,
) -> None:
    tenant_a, tenant_b = await _two_tenants(db)
    async with db.session(SYSTEM) as session:
        foreign_customer = (
            await session.scalars(sa.select(Customer).where(col(Customer.tenant_id) == tenant_b))
        ).first()
    assert foreign_customer is not None
    with pytest.raises(sa.exc.IntegrityError):
        async with db.transaction(SYSTEM) as session:
            session.add(
                Contact(
                    tenant_id=tenant_a,
                    customer_id=foreign_customer.id,
                    kind=ContactKind.COMPANY,
                    name="x",
                )
            )


async def test_h6_migrations_match_the_models(db: Database) -> None:
    async with db.engine.connect() as connection:
        diff = await connection.run_sync(
            lambda sync: compare_metadata(MigrationContext.configure(sync), SQLModel.metadata)
        )
    assert diff == []


# Indexes of tenant tables that do not lead with tenant_id, on purpose: each serves a lookup
# that starts from something global (a cookie, an emailed token, Stripe's id, an account that
# spans tenants) or rows that have no tenant. Anything else must lead with tenant_id.
CROSS_TENANT_INDEXES = {
    # Portal sessions belong to an account at every tenant it serves; their tenant_id is null.
    "pk_auth_sessions": "a session is found by its own id, carried in the signed token",
    "uq_auth_sessions_cookie_hash": "the cookie is all a browser brings; the tenant is in the row",
    "ix_auth_sessions_account_id": "a password change ends an account's sessions at every tenant",
    # Account-level mail (a password reset) has no tenant.
    "pk_email_outbox": "an email is marked sent by its id, whatever its tenant, or none",
    "ix_email_outbox_status_next_attempt_at": "the worker sends what is due for every tenant",
    "ix_message_threads_customer_notice_due_at": "the notices due are found for every tenant",
    # Reset and sign-in links belong to an account, not a tenant; only invitations have one.
    "pk_one_time_tokens": "tokens of no tenant need a key without one",
    "uq_one_time_tokens_token_hash": "an emailed link brings only its token",
    "ix_one_time_tokens_account_id": "indexes the reference to the account, which has no tenant",
    "uq_payments_stripe_payment_intent_id": "a Stripe event names only the global PaymentIntent id",
    "ix_portal_memberships_account_id": "a signed-in account's memberships at every tenant",
    "pk_stripe_events": "Stripe's event id, recorded before the tenant is known",
}


def _tenant_table_keys(inspector: sa.Inspector) -> dict[str, list[str]]:
    """Every index, unique constraint and primary key of each table with a tenant_id, by
    name, with its columns."""
    keys: dict[str, list[str]] = {}
    for table in inspector.get_table_names():
        if "tenant_id" not in {column["name"] for column in inspector.get_columns(table)}:
            continue
        primary = inspector.get_pk_constraint(table)
        keys[f"{primary['name']}"] = primary["constrained_columns"]
        for unique in inspector.get_unique_constraints(table):
            keys[f"{unique['name']}"] = unique["column_names"]
        for index in inspector.get_indexes(table):
            keys[f"{index['name']}"] = [f"{name}" for name in index["column_names"]]
    return keys


def _not_led_by_tenant(keys: dict[str, list[str]]) -> dict[str, list[str]]:
    return {name: columns for name, columns in keys.items() if columns[:1] != ["tenant_id"]}


def _model_keys() -> dict[str, list[str]]:
    keys: dict[str, list[str]] = {}
    for table in SQLModel.metadata.tables.values():
        if "tenant_id" not in table.c:
            continue
        for key in (*table.indexes, *table.constraints):
            if isinstance(key, sa.Index | sa.UniqueConstraint | sa.PrimaryKeyConstraint):
                keys[f"{key.name}"] = [column.name for column in key.columns]
    return keys


def test_h6_every_index_of_a_tenant_table_in_the_models_leads_with_the_tenant_id() -> None:
    keys = _model_keys()
    assert "pk_customers" in keys and "ix_contacts_email" in keys
    assert _not_led_by_tenant(keys).keys() == CROSS_TENANT_INDEXES.keys()


async def test_h6_every_index_of_a_tenant_table_in_the_database_leads_with_the_tenant_id(
    db: Database,
) -> None:
    async with db.engine.connect() as connection:
        keys = await connection.run_sync(lambda sync: _tenant_table_keys(sa.inspect(sync)))
    assert keys == _model_keys()
    assert _not_led_by_tenant(keys).keys() == CROSS_TENANT_INDEXES.keys()


async def test_h6_times_are_stored_in_utc_and_read_back_aware(db: Database) -> None:
    tenant, _ = await make_tenant(db, slug="tz")
    paris = timezone(timedelta(hours=1))
    moment = datetime(2026, 3, 29, 1, 30, tzinfo=paris)
    async with db.transaction(SYSTEM) as session:
        session.add(
            Customer(tenant_id=tenant.id, name="tz", portal_identifier="tz", created_at=moment)
        )
    async with db.session(Scope.tenant(tenant.id)) as session:
        stored = await session.scalar(sa.select(col(Customer.created_at)))
    assert stored == moment and stored is not None and stored.tzinfo is not None
    assert stored.utcoffset() == timedelta(0) and stored == moment.astimezone(UTC)
    with pytest.raises(sa.exc.StatementError):
        async with db.transaction(SYSTEM) as session:
            session.add(
                Customer(
                    tenant_id=tenant.id,
                    name="naive",
                    portal_identifier="naive",
                    created_at=datetime(2026, 1, 1),
                )
            )


async def test_h6_concurrent_sessions_each_see_their_own_scope(db: Database) -> None:
    tenant_a, tenant_b = await _two_tenants(db)

    async def count(tenant: uuid.UUID) -> int:
        async with db.session(Scope.tenant(tenant)) as session:
            counted = await session.scalar(sa.select(sa.func.count()).select_from(Customer))
        return int(counted or 0)

    results = await asyncio.gather(*(count(t) for t in [tenant_a, tenant_b] * 5))
    assert results == [3, 2] * 5


async def test_h6_migrations_go_down_and_up_again_keeping_every_row(
    demo_db: Database, demo_database_url: str
) -> None:
    """Down to the first schema and back: the tables each migration rebuilds keep their
    rows, and so do the rows that point at them (a request's history, a job's visits)."""
    kept = ("service_request_events", "job_visits", "portal_memberships", "invoice_lines")

    async def counted() -> dict[str, int]:
        async with demo_db.engine.connect() as connection:
            return {
                table.name: (
                    await connection.execute(sa.select(sa.func.count()).select_from(table))
                ).scalar_one()
                for table in (SQLModel.metadata.tables[name] for name in kept)
            }

    before = await counted()
    assert all(before.values()), before
    await demo_db.engine.dispose()
    await asyncio.to_thread(migrate.downgrade, demo_database_url, "0001")
    await asyncio.to_thread(migrate.upgrade, demo_database_url)
    assert await counted() == before
