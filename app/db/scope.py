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
from functools import cache
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import ORMExecuteState, Session, UOWTransaction, with_loader_criteria
from sqlmodel import SQLModel

from app.db.base import TenantOwned

SCOPE_KEY = "portal_scope"


class UnscopedAccess(RuntimeError):
    """A tenant-owned table was reached from a session that has no tenant scope."""


@dataclass(frozen=True, slots=True)
class Scope:
    """Which tenants a session may read and write. `system` is for work that spans every
    tenant by design: migrations, demo data, the mail worker, resolving who signed in."""

    tenant_ids: frozenset[uuid.UUID] | None

    @classmethod
    def tenant(cls, tenant_id: uuid.UUID) -> Scope:
        return cls(frozenset({tenant_id}))

    @classmethod
    def tenants(cls, tenant_ids: Iterable[uuid.UUID]) -> Scope:
        return cls(frozenset(tenant_ids))

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
    allowed = tuple(scope.tenant_ids)
    # Criteria for every tenant table, not just the selected ones: a table reached only
    # through a join or an EXISTS is filtered too. Each applies only where its table appears.
    state.statement = state.statement.options(
        *(
            with_loader_criteria(
                model, lambda cls: cls.tenant_id.in_(allowed), include_aliases=True
            )
            for model in _tenant_models()
        )
    )


@event.listens_for(Session, "before_flush")
def _refuse_foreign_rows(session: Session, _flush: UOWTransaction, _instances: Any) -> None:
    for obj in (*session.new, *session.dirty, *session.deleted):
        if isinstance(obj, TenantOwned) and not scope_of(session).allows(obj.tenant_id):
            raise UnscopedAccess(
                f"a {type(obj).__name__} of another tenant cannot be written in this scope"
            )
