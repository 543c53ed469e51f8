"""Every table of the service. Importing this module registers them all on the metadata."""

from app.db.models.audit import AuditEntry
from app.db.models.auth import (
    AuthSession,
    EmailLinkRequest,
    OneTimeToken,
    RateLimitCounter,
    RefreshToken,
    SessionAudience,
    SessionClient,
    TokenPurpose,
)
from app.db.models.catalog import RequestableItem, RequestableKind
from app.db.models.certificates import Certificate
from app.db.models.customers import Contact, ContactKind, Customer, Site
from app.db.models.diaries import DiaryEvent
from app.db.models.files import StoredFile
from app.db.models.invoices import (
    Invoice,
    InvoiceLine,
    InvoiceStatus,
    Payment,
    PaymentStatus,
    StripeEvent,
    StripeEventOutcome,
)
from app.db.models.jobs import Job, JobStatus, JobVisit, VisitStatus
from app.db.models.messages import Message, MessageNotice, MessageThread, ThreadSubject
from app.db.models.outbox import OutboxEmail, OutboxStatus
from app.db.models.portal import PortalAccount, PortalMembership
from app.db.models.quotes import Quote, QuoteLine, QuoteStatus
from app.db.models.rentals import Rental
from app.db.models.requests import RequestKind, RequestStatus, ServiceRequest, ServiceRequestEvent
from app.db.models.staff import ActivityEmails, StaffRole, StaffUser
from app.db.models.tenants import ALL_MODULES, InvoiceVisibility, Plan, PortalModule, Tenant

__all__ = [
    "ALL_MODULES",
    "ActivityEmails",
    "AuditEntry",
    "AuthSession",
    "Certificate",
    "Contact",
    "ContactKind",
    "Customer",
    "DiaryEvent",
    "EmailLinkRequest",
    "Invoice",
    "InvoiceLine",
    "InvoiceStatus",
    "InvoiceVisibility",
    "Job",
    "JobStatus",
    "JobVisit",
    "Message",
    "MessageNotice",
    "MessageThread",
    "OneTimeToken",
    "OutboxEmail",
    "OutboxStatus",
    "Payment",
    "PaymentStatus",
    "Plan",
    "PortalAccount",
    "PortalMembership",
    "PortalModule",
    "Quote",
    "QuoteLine",
    "QuoteStatus",
    "RateLimitCounter",
    "RefreshToken",
    "Rental",
    "RequestKind",
    "RequestStatus",
    "RequestableItem",
    "RequestableKind",
    "ServiceRequest",
    "ServiceRequestEvent",
    "SessionAudience",
    "SessionClient",
    "Site",
    "StaffRole",
    "StaffUser",
    "StoredFile",
    "StripeEvent",
    "StripeEventOutcome",
    "Tenant",
    "ThreadSubject",
    "TokenPurpose",
    "VisitStatus",
]
