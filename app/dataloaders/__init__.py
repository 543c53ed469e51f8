"""The per-request registry of DataLoaders, each built the first time it is asked for.

It lives on the request's context, never on a WebSocket connection's: a loader caches
what it loaded, and a connection outlives any one answer.
"""

from __future__ import annotations

from functools import cached_property

from app.dataloaders.audit import AuditEntryByIdLoader, LastChangeBySubjectIdLoader
from app.dataloaders.catalog import RequestableItemByIdLoader
from app.dataloaders.certificates import CertificateByIdLoader
from app.dataloaders.customers import (
    ContactByIdLoader,
    ContactsByCustomerIdLoader,
    ContactsBySiteIdLoader,
    CustomerByIdLoader,
    SiteByIdLoader,
    SitesByCustomerIdLoader,
)
from app.dataloaders.diaries import DiaryEventByIdLoader
from app.dataloaders.invoices import (
    InvoiceByIdLoader,
    InvoiceLinesByInvoiceIdLoader,
    InvoicesByCustomerIdLoader,
    OutstandingByCustomerIdLoader,
)
from app.dataloaders.jobs import JobByIdLoader, JobVisitsByJobIdLoader
from app.dataloaders.messages import (
    MessageByIdLoader,
    MessageThreadByIdLoader,
    UnreadByThreadIdLoader,
)
from app.dataloaders.quotes import QuoteByIdLoader, QuoteLinesByQuoteIdLoader
from app.dataloaders.rentals import RentalByIdLoader, RentalsBySiteIdLoader
from app.dataloaders.requests import (
    EventsByRequestIdLoader,
    OpenRequestCountByCustomerIdLoader,
    ServiceRequestByIdLoader,
)
from app.dataloaders.staff import StaffUserByIdLoader
from app.dataloaders.tenants import TenantByIdLoader
from app.dataloaders.users import (
    PortalAccountByIdLoader,
    PortalMembershipByIdLoader,
    PortalMembershipsByContactIdLoader,
    PortalStateByContactIdLoader,
)
from app.db.scope import Scope
from app.db.session import Database


class Loaders:
    def __init__(self, db: Database, scope: Scope) -> None:
        self._db = db
        self._scope = scope

    @cached_property
    def customer_by_id(self) -> CustomerByIdLoader:
        return CustomerByIdLoader(self._db, self._scope)

    @cached_property
    def contact_by_id(self) -> ContactByIdLoader:
        return ContactByIdLoader(self._db, self._scope)

    @cached_property
    def site_by_id(self) -> SiteByIdLoader:
        return SiteByIdLoader(self._db, self._scope)

    @cached_property
    def contacts_by_customer_id(self) -> ContactsByCustomerIdLoader:
        return ContactsByCustomerIdLoader(self._db, self._scope)

    @cached_property
    def contacts_by_site_id(self) -> ContactsBySiteIdLoader:
        return ContactsBySiteIdLoader(self._db, self._scope)

    @cached_property
    def sites_by_customer_id(self) -> SitesByCustomerIdLoader:
        return SitesByCustomerIdLoader(self._db, self._scope)

    @cached_property
    def staff_user_by_id(self) -> StaffUserByIdLoader:
        return StaffUserByIdLoader(self._db, self._scope)

    @cached_property
    def tenant_by_id(self) -> TenantByIdLoader:
        return TenantByIdLoader(self._db, self._scope)

    @cached_property
    def invoice_by_id(self) -> InvoiceByIdLoader:
        return InvoiceByIdLoader(self._db, self._scope)

    @cached_property
    def invoice_lines_by_invoice_id(self) -> InvoiceLinesByInvoiceIdLoader:
        return InvoiceLinesByInvoiceIdLoader(self._db, self._scope)

    @cached_property
    def invoices_by_customer_id(self) -> InvoicesByCustomerIdLoader:
        return InvoicesByCustomerIdLoader(self._db, self._scope)

    @cached_property
    def quote_by_id(self) -> QuoteByIdLoader:
        return QuoteByIdLoader(self._db, self._scope)

    @cached_property
    def quote_lines_by_quote_id(self) -> QuoteLinesByQuoteIdLoader:
        return QuoteLinesByQuoteIdLoader(self._db, self._scope)

    @cached_property
    def job_by_id(self) -> JobByIdLoader:
        return JobByIdLoader(self._db, self._scope)

    @cached_property
    def job_visits_by_job_id(self) -> JobVisitsByJobIdLoader:
        return JobVisitsByJobIdLoader(self._db, self._scope)

    @cached_property
    def certificate_by_id(self) -> CertificateByIdLoader:
        return CertificateByIdLoader(self._db, self._scope)

    @cached_property
    def diary_event_by_id(self) -> DiaryEventByIdLoader:
        return DiaryEventByIdLoader(self._db, self._scope)

    @cached_property
    def service_request_by_id(self) -> ServiceRequestByIdLoader:
        return ServiceRequestByIdLoader(self._db, self._scope)

    @cached_property
    def portal_membership_by_id(self) -> PortalMembershipByIdLoader:
        return PortalMembershipByIdLoader(self._db, self._scope)

    @cached_property
    def portal_memberships_by_contact_id(self) -> PortalMembershipsByContactIdLoader:
        return PortalMembershipsByContactIdLoader(self._db, self._scope)

    @cached_property
    def portal_state_by_contact_id(self) -> PortalStateByContactIdLoader:
        return PortalStateByContactIdLoader(self._db, self._scope)

    @cached_property
    def portal_account_by_id(self) -> PortalAccountByIdLoader:
        return PortalAccountByIdLoader(self._db, self._scope)

    @cached_property
    def outstanding_by_customer_id(self) -> OutstandingByCustomerIdLoader:
        return OutstandingByCustomerIdLoader(self._db, self._scope)

    @cached_property
    def open_request_count_by_customer_id(self) -> OpenRequestCountByCustomerIdLoader:
        return OpenRequestCountByCustomerIdLoader(self._db, self._scope)

    @cached_property
    def audit_entry_by_id(self) -> AuditEntryByIdLoader:
        return AuditEntryByIdLoader(self._db, self._scope)

    @cached_property
    def last_change_by_subject_id(self) -> LastChangeBySubjectIdLoader:
        return LastChangeBySubjectIdLoader(self._db, self._scope)

    @cached_property
    def requestable_item_by_id(self) -> RequestableItemByIdLoader:
        return RequestableItemByIdLoader(self._db, self._scope)

    @cached_property
    def rental_by_id(self) -> RentalByIdLoader:
        return RentalByIdLoader(self._db, self._scope)

    @cached_property
    def rentals_by_site_id(self) -> RentalsBySiteIdLoader:
        return RentalsBySiteIdLoader(self._db, self._scope)

    @cached_property
    def events_by_request_id(self) -> EventsByRequestIdLoader:
        return EventsByRequestIdLoader(self._db, self._scope)

    @cached_property
    def message_thread_by_id(self) -> MessageThreadByIdLoader:
        return MessageThreadByIdLoader(self._db, self._scope)

    @cached_property
    def message_by_id(self) -> MessageByIdLoader:
        return MessageByIdLoader(self._db, self._scope)

    @cached_property
    def unread_by_thread_id(self) -> UnreadByThreadIdLoader:
        return UnreadByThreadIdLoader(self._db, self._scope)
