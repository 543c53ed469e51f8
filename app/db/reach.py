"""How far a portal viewer reaches inside a tenant: which customers, which sites, which modules.

A staff viewer sees the whole of its tenant. A portal viewer sees, at each tenant, only what
its memberships grant: a company contact the whole customer, a site contact its own site,
and in either case only the modules in effect for that user there. Like the tenant itself
this is enforced in the data layer (`app.db.scope` adds these criteria to every statement),
so a resolver, a loader or a nested edge cannot reach past it: an invoice a site contact
asks for by id, or reaches through request -> site -> customer -> invoices, is not found.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from app.db.models import (
    AuditEntry,
    Certificate,
    Contact,
    Customer,
    DiaryEvent,
    Invoice,
    InvoiceLine,
    InvoiceStatus,
    Job,
    JobVisit,
    Message,
    MessageNotice,
    MessageThread,
    Payment,
    PortalAccount,
    PortalMembership,
    PortalModule,
    Quote,
    QuoteLine,
    QuoteStatus,
    Rental,
    RequestableItem,
    ServiceRequest,
    ServiceRequestEvent,
    Site,
    StaffUser,
    StoredFile,
    ThreadSubject,
)


@dataclass(frozen=True, slots=True)
class Grant:
    """What one portal membership reaches: one customer of one tenant, or one site of it."""

    tenant_id: uuid.UUID
    customer_id: uuid.UUID
    contact_id: uuid.UUID
    # None for a company contact, who sees the whole customer.
    site_id: uuid.UUID | None
    modules: frozenset[PortalModule]
    # The tenant's choice: outstanding invoices only, or paid ones too.
    shows_paid_invoices: bool = False

    @property
    def is_company(self) -> bool:
        return self.site_id is None


def effective_modules(
    tenant_defaults: Iterable[str],
    *,
    customer: Iterable[str] | None,
    user: Iterable[str] | None,
) -> frozenset[PortalModule]:
    """The tenant's default modules, narrowed by the customer's override, then the user's;
    an override of None narrows nothing."""
    modules = _known(tenant_defaults)
    for override in (customer, user):
        if override is not None:
            modules &= _known(override)
    return frozenset(modules)


def _known(values: Iterable[str]) -> set[PortalModule]:
    # A stored module name this release does not know grants nothing.
    names = {module.value for module in PortalModule}
    return {PortalModule(value) for value in values if value in names}


@dataclass(frozen=True, slots=True)
class Rule:
    """How rows of one table are reached from a grant.

    `customer` names the column holding the customer id; `site`, when given, the column a site
    contact is narrowed by (rows with no site there are the company's and hidden from it).
    `parent` reaches a row through another table's reachable rows instead.
    """

    customer: str | None = None
    site: str | None = None
    module: PortalModule | None = None
    company_only: bool = False
    parent: tuple[type[Any], str, str] | None = None  # (table, our column, its column)
    tenant_wide: bool = False
    # Rows the portal writes but never reads back (the audit trail of its own changes).
    written_only: bool = False
    # Rows the portal never shows whoever asks (drafts, voided invoices...): given the row's
    # columns and whether the grant shows paid invoices (a condition, so the same rule reads
    # a grant's value or a grant row's column, see `reach_through`).
    shown: Callable[[Any, sa.ColumnElement[bool]], sa.ColumnElement[bool]] | None = None
    # Rows about one row of another table, named by a kind column and an id column, are
    # reached exactly when that row is: (kind column, id column, {kind: table}).
    about: tuple[str, str, Mapping[str, type[Any]]] | None = None


DENIED = Rule()

# Every table a portal viewer can reach, and how; anything else it cannot reach at all.
RULES: dict[type[Any], Rule] = {
    Customer: Rule(customer="id"),
    Site: Rule(customer="customer_id", site="id"),
    Contact: Rule(customer="customer_id", site="site_id"),
    PortalMembership: Rule(parent=(Contact, "contact_id", "id"), module=PortalModule.USERS),
    Rental: Rule(customer="customer_id", site="site_id", module=PortalModule.REQUESTS),
    RequestableItem: Rule(
        tenant_wide=True,
        module=PortalModule.REQUESTS,
        shown=lambda model, _paid: model.show_in_portal.is_(True),
    ),
    Invoice: Rule(
        customer="customer_id",
        module=PortalModule.INVOICES,
        company_only=True,
        shown=lambda model, paid: sa.or_(
            model.status == InvoiceStatus.UNPAID,
            sa.and_(paid, model.status == InvoiceStatus.PAID),
        ),
    ),
    InvoiceLine: Rule(parent=(Invoice, "invoice_id", "id")),
    Payment: Rule(parent=(Invoice, "invoice_id", "id")),
    Quote: Rule(
        customer="customer_id",
        site="site_id",
        module=PortalModule.QUOTES,
        shown=lambda model, _paid: model.status != QuoteStatus.DRAFT,
    ),
    QuoteLine: Rule(parent=(Quote, "quote_id", "id")),
    Job: Rule(customer="customer_id", site="site_id", module=PortalModule.JOBS),
    JobVisit: Rule(parent=(Job, "job_id", "id")),
    Certificate: Rule(customer="customer_id", site="site_id", module=PortalModule.CERTIFICATES),
    StoredFile: Rule(parent=(Certificate, "id", "file_id")),
    DiaryEvent: Rule(customer="customer_id", site="site_id", module=PortalModule.DIARIES),
    ServiceRequest: Rule(customer="customer_id", site="site_id", module=PortalModule.REQUESTS),
    ServiceRequestEvent: Rule(parent=(ServiceRequest, "request_id", "id")),
    # A conversation is seen by whoever sees what it is about: a site contact those of its
    # own site's requests and jobs, never an invoice's; a module's only with that module.
    MessageThread: Rule(
        customer="customer_id",
        about=(
            "subject_type",
            "subject_id",
            {
                ThreadSubject.JOB: Job,
                ThreadSubject.QUOTE: Quote,
                ThreadSubject.INVOICE: Invoice,
                ThreadSubject.REQUEST: ServiceRequest,
            },
        ),
    ),
    Message: Rule(parent=(MessageThread, "thread_id", "id")),
    # Reading a thread ends the notices about it.
    MessageNotice: Rule(parent=(MessageThread, "thread_id", "id")),
    StaffUser: DENIED,
    # Portal users' changes are audited like the office's; only staff read the trail.
    AuditEntry: Rule(written_only=True),
    PortalAccount: Rule(parent=(PortalMembership, "id", "account_id")),
}


def _grants_for(rule: Rule, grants: Iterable[Grant]) -> list[Grant]:
    return [
        grant
        for grant in grants
        if (rule.module is None or rule.module in grant.modules)
        and (grant.is_company or not rule.company_only)
    ]


def reach_criteria(model: type[Any], grants: tuple[Grant, ...]) -> sa.ColumnElement[bool]:
    """The rows of `model` these grants reach, as a WHERE clause on `model`'s columns."""
    rule = RULES.get(model, DENIED)
    if rule.parent is not None:
        parent, ours, theirs = rule.parent
        # Only through grants that have this table's module, if it belongs to one.
        narrowed = tuple(_grants_for(rule, grants))
        reachable = sa.select(getattr(parent, theirs)).where(reach_criteria(parent, narrowed))
        within: sa.ColumnElement[bool] = getattr(model, ours).in_(reachable)
        return within
    if rule.about is not None:
        kind, subject, tables = rule.about
        return sa.or_(
            *(
                sa.and_(
                    getattr(model, kind) == value,
                    getattr(model, subject).in_(
                        sa.select(getattr(table, "id")).where(reach_criteria(table, grants))  # noqa: B009
                    ),
                )
                for value, table in tables.items()
            )
        )
    tenant = getattr(model, "tenant_id")  # noqa: B009  (every table with a rule has one)
    if rule.tenant_wide:
        tenants = {grant.tenant_id for grant in _grants_for(rule, grants)}
        # Every grant shows the same rows here: `shown` may only look at the row.
        shown = _shown(rule, model, grants[0]) if grants else sa.true()
        return sa.and_(sa.or_(sa.false(), *(tenant == t for t in tenants)), shown)
    if rule.customer is None:
        return sa.false()
    customer = getattr(model, rule.customer)
    clauses = []
    for grant in _grants_for(rule, grants):
        clause = sa.and_(tenant == grant.tenant_id, customer == grant.customer_id)
        # A site contact is narrowed to its site where the table knows the site.
        if not grant.is_company and rule.site is not None:
            clause = sa.and_(clause, getattr(model, rule.site) == grant.site_id)
        clauses.append(sa.and_(clause, _shown(rule, model, grant)))
    return sa.or_(*clauses) if clauses else sa.false()


def _shown(rule: Rule, model: Any, grant: Grant) -> sa.ColumnElement[bool]:
    if rule.shown is None:
        return sa.true()
    return rule.shown(model, sa.true() if grant.shows_paid_invoices else sa.false())


# The columns of a relation of grants, one row per grant (see `reach_through`).
GRANT_COLUMNS = ("tenant", "customer", "site", "modules", "paid")


def grant_rows(grants: Iterable[Grant]) -> list[dict[str, Any]]:
    """The grants as the rows of a grants relation, JSON-ready."""
    return [
        {
            "tenant": str(grant.tenant_id),
            "customer": str(grant.customer_id),
            "site": str(grant.site_id) if grant.site_id is not None else None,
            "modules": sorted(module.value for module in grant.modules),
            "paid": grant.shows_paid_invoices,
        }
        for grant in grants
    ]


GrantCondition = Callable[[Any], sa.ColumnElement[bool]]


def reach_through(
    model: type[Any],
    row: sa.FromClause,
    grants: Callable[[], sa.FromClause],
    narrowed: tuple[GrantCondition, ...] = (),
) -> sa.ColumnElement[bool]:
    """The rows of `model`, read as `row`, that a relation of grants reaches: the rules of
    `reach_criteria` with the grants as the rows of a relation (`grants()` gives a fresh
    one, with `GRANT_COLUMNS`) rather than as values, so one statement serves every viewer
    and the grants are bound with it. `narrowed` are conditions on the grant row (given its
    columns) that a child table's rule adds, its module, when reached through this one."""
    rule = RULES.get(model, DENIED)
    if rule.about is not None:
        raise NotImplementedError(f"{model.__name__} rows are not read through a grants relation")
    conditions = list(narrowed)
    if rule.module is not None:
        module = rule.module.value
        conditions.append(lambda g: g.modules.any_() == module)
    if rule.company_only:
        conditions.append(lambda g: g.site.is_(None))
    if rule.parent is not None:
        parent, ours, theirs = rule.parent
        above = parent.__table__.alias()
        # The same grant row must reach the parent, with the child's conditions too.
        within: sa.ColumnElement[bool] = row.c[ours].in_(
            sa.select(above.c[theirs]).where(
                reach_through(parent, above, grants, tuple(conditions))
            )
        )
        return within
    if rule.customer is None and not rule.tenant_wide:
        return sa.false()
    relation = grants()
    g = relation.c
    where = [condition(g) for condition in conditions]
    where.append(g.tenant == row.c.tenant_id)
    # Implied by the grant rows matched below, and written out so PostgreSQL reads the rows
    # through the tenant's indexes (`= ANY` of the grants' values), never a whole table.
    implied = [_among(row.c.tenant_id, "tenant", grants, conditions)]
    if rule.customer is not None:
        where.append(g.customer == row.c[rule.customer])
        implied.append(_among(row.c[rule.customer], "customer", grants, conditions))
    if rule.site is not None:
        # A site contact is narrowed to its site where the table knows the site.
        where.append(sa.or_(g.site.is_(None), row.c[rule.site] == g.site))
    if rule.shown is not None:
        where.append(rule.shown(row.c, g.paid))
    return sa.and_(
        *implied, sa.exists(sa.select(sa.literal(1)).select_from(relation).where(*where))
    )


def _among(
    value: sa.ColumnElement[Any],
    name: str,
    grants: Callable[[], sa.FromClause],
    conditions: list[GrantCondition],
) -> sa.ColumnElement[bool]:
    relation = grants()
    values = sa.select(sa.func.array_agg(relation.c[name])).where(
        *(condition(relation.c) for condition in conditions)
    )
    # An array of one row, not a row per grant: `= ANY (array)`, which an index can take.
    return value == sa.any_(sa.cast(values.scalar_subquery(), sa.ARRAY(sa.Uuid)))


def reaches(obj: Any, grants: tuple[Grant, ...]) -> bool:
    """Whether a row about to be written lies within these grants. Rows reached through a
    parent pass here: their parent was read through `reach_criteria` first."""
    rule = RULES.get(type(obj), DENIED)
    if rule.parent is not None:
        return True
    if rule.tenant_wide or rule.written_only:
        return any(grant.tenant_id == obj.tenant_id for grant in grants)
    if rule.about is not None and rule.customer is not None:
        # What it is about was read through `reach_criteria` first; it is of the customer.
        return any(
            grant.tenant_id == obj.tenant_id and getattr(obj, rule.customer) == grant.customer_id
            for grant in grants
        )
    if rule.customer is None:
        return False
    return any(
        grant.tenant_id == obj.tenant_id
        and getattr(obj, rule.customer) == grant.customer_id
        and (grant.is_company or rule.site is None or getattr(obj, rule.site) == grant.site_id)
        for grant in _grants_for(rule, grants)
    )
