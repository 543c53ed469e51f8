"""Tenant isolation in the data layer.

Every session is opened with a `Scope`. An ORM statement run in a tenant scope gets
`tenant_id IN (...)` added to every tenant-owned table it touches (roots, joins, loader
queries, UPDATE and DELETE alike), and a flush refuses rows of tenants outside the scope. A
session with no scope refuses to touch tenant tables at all, so a new resolver cannot
forget the tenant: there is no unscoped way to reach tenant data through the ORM.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.orm import ORMExecuteState, Session, UOWTransaction, with_loader_criteria
from sqlalchemy.sql.util import find_tables
from sqlmodel import SQLModel, col

from app.db.base import TenantOwned
from app.db.models import PortalAccount, PortalMembership, Tenant
from app.db.reach import Grant, reach_criteria, reaches

SCOPE_KEY = "portal_scope"


class UnscopedAccess(RuntimeError):
    """A tenant-owned table was reached from a session that has no tenant scope."""


@dataclass(frozen=True, slots=True)
class Scope:
    """Which tenants a session may read and write. `system` is for work that spans every
    tenant by design: migrations, demo data, the mail worker, resolving who signed in."""

    tenant_ids: frozenset[uuid.UUID] | None
    # A portal viewer's grants narrow it further, to customers, sites and modules.
    grants: tuple[Grant, ...] | None = None

    @classmethod
    def tenant(cls, tenant_id: uuid.UUID) -> Scope:
        return cls(frozenset({tenant_id}))

    @classmethod
    def tenants(cls, tenant_ids: Iterable[uuid.UUID]) -> Scope:
        return cls(frozenset(tenant_ids))

    @classmethod
    def portal(cls, grants: Iterable[Grant]) -> Scope:
        grants = tuple(grants)
        return cls(frozenset(grant.tenant_id for grant in grants), grants)

    @property
    def is_system(self) -> bool:
        return self.tenant_ids is None

    def allows(self, tenant_id: uuid.UUID) -> bool:
        return self.tenant_ids is None or tenant_id in self.tenant_ids


SYSTEM = Scope(None)
NOBODY = Scope(frozenset())


def scope_of(session: Session) -> Scope:
    scope = session.info.get(SCOPE_KEY)
    if not isinstance(scope, Scope):
        raise UnscopedAccess("this session was opened without a tenant scope")
    return scope


@cache
def _tenant_models() -> tuple[type[TenantOwned], ...]:
    return tuple(
        mapper.class_
        for mapper in SQLModel._sa_registry.mappers
        if issubclass(mapper.class_, TenantOwned)
    )


@event.listens_for(Session, "do_orm_execute")
def _add_tenant_criteria(state: ORMExecuteState) -> None:
    if not (state.is_select or state.is_update or state.is_delete):
        return
    if state.is_column_load or state.is_relationship_load:
        return
    scope = scope_of(state.session)
    if scope.tenant_ids is None:
        return
    criteria = _criteria(scope)
    state.statement = state.statement.options(
        *(option for table in _tables_in(state.statement) for option in criteria.get(table, ()))
    )


def _tables_in(statement: Any) -> dict[str, None]:
    """Every table a statement touches: selected, joined, in a subquery or an EXISTS, or only
    named by a column, so each gets its criteria and nothing else is walked per statement."""
    # In the order met, so the options, and the statement's cache key, are the same each time.
    return dict.fromkeys(
        table.name
        for table in find_tables(
            statement,
            check_columns=True,
            include_aliases=True,
            include_joins=True,
            include_crud=True,
        )
        if isinstance(table, sa.TableClause)
    )


@lru_cache(maxsize=1024)
def _criteria(scope: Scope) -> dict[str, tuple[Any, ...]]:
    """The criteria of every tenant table, by table name; a statement takes those of the
    tables it touches.

    Built once per scope, not per statement: a scope holds the grants as they were read for
    this request, so a changed grant is a different scope. The values are bound parameters,
    so every scope of the same shape shares SQLAlchemy's compiled statements."""
    assert scope.tenant_ids is not None
    allowed = tuple(scope.tenant_ids)
    criteria: dict[type[Any], list[Any]] = {
        model: [
            with_loader_criteria(
                model, lambda cls: cls.tenant_id.in_(allowed), include_aliases=True
            )
        ]
        for model in _tenant_models()
    }
    # The shared tables: tenants, and the portal accounts that belong to them.
    criteria[Tenant] = [
        with_loader_criteria(Tenant, lambda cls: cls.id.in_(allowed), include_aliases=True)
    ]
    if scope.grants is None:
        criteria[PortalAccount] = [
            with_loader_criteria(
                PortalAccount,
                lambda cls: cls.id.in_(
                    sa.select(col(PortalMembership.account_id)).where(
                        col(PortalMembership.tenant_id).in_(allowed)
                    )
                ),
                include_aliases=True,
            )
        ]
    else:
        grants = scope.grants
        reached: list[type[Any]] = [*_tenant_models(), PortalAccount]
        for model in reached:
            criteria.setdefault(model, []).append(
                with_loader_criteria(model, reach_criteria(model, grants), include_aliases=True)
            )
    return {model.__table__.name: tuple(options) for model, options in criteria.items()}


@event.listens_for(Session, "before_flush")
def _refuse_foreign_rows(session: Session, _flush: UOWTransaction, _instances: Any) -> None:
    for obj in (*session.new, *session.dirty, *session.deleted):
        if not isinstance(obj, TenantOwned):
            continue
        scope = scope_of(session)
        if not scope.allows(obj.tenant_id):
            raise UnscopedAccess(
                f"a {type(obj).__name__} of another tenant cannot be written in this scope"
            )
        if scope.grants is not None and not reaches(obj, scope.grants):
            raise UnscopedAccess(
                f"a {type(obj).__name__} out of this portal user's reach cannot be written"
            )
