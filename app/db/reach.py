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
    # Rows the portal never shows whoever asks (drafts, voided invoices...).
    shown: Callable[[type[Any], Grant], sa.ColumnElement[bool]] | None = None
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
        shown=lambda model, _grant: model.show_in_portal.is_(True),
    ),
    Invoice: Rule(
        customer="customer_id",
        module=PortalModule.INVOICES,
        company_only=True,
        shown=lambda model, grant: model.status.in_(
            [InvoiceStatus.UNPAID, InvoiceStatus.PAID]
            if grant.shows_paid_invoices
            else [InvoiceStatus.UNPAID]
        ),
    ),
    InvoiceLine: Rule(parent=(Invoice, "invoice_id", "id")),
    Payment: Rule(parent=(Invoice, "invoice_id", "id")),
    Quote: Rule(
        customer="customer_id",
        site="site_id",
        module=PortalModule.QUOTES,
        shown=lambda model, _grant: model.status != QuoteStatus.DRAFT,
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
        shown = rule.shown(model, grants[0]) if rule.shown is not None and grants else sa.true()
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
        if rule.shown is not None:
            clause = sa.and_(clause, rule.shown(model, grant))
        clauses.append(clause)
    return sa.or_(*clauses) if clauses else sa.false()


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
