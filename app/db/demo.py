"""The demo: three businesses with everything the portal shows, the same on every run.

Ids come from names (uuid5) and every date from the `today` it is given, so two databases
seeded for the same day hold the same rows.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import SQLModel, col

from app.auth.passwords import hash_password
from app.db.models import (
    ALL_MODULES,
    AuditEntry,
    Certificate,
    Contact,
    ContactKind,
    Customer,
    DiaryEvent,
    Invoice,
    InvoiceLine,
    InvoiceStatus,
    InvoiceVisibility,
    Job,
    JobStatus,
    JobVisit,
    Message,
    MessageThread,
    Payment,
    PaymentStatus,
    Plan,
    PortalAccount,
    PortalMembership,
    Quote,
    QuoteLine,
    QuoteStatus,
    Rental,
    RequestableItem,
    RequestableKind,
    RequestKind,
    RequestStatus,
    ServiceRequest,
    ServiceRequestEvent,
    Site,
    StaffRole,
    StaffUser,
    StoredFile,
    Tenant,
    ThreadSubject,
    VisitStatus,
)
from app.db.scope import SYSTEM
from app.db.session import Database

DEMO_PASSWORD = "portal-demo-2026"  # noqa: S105  (published in the README on purpose)
NAMESPACE = uuid.UUID("6f1d3c2e-8a4b-4f7e-9c55-0d2b7a1e4f10")


@dataclass(frozen=True)
class DemoSignIn:
    kind: str
    tenant_slug: str | None
    email: str
    username: str | None
    role: str


def _id(*parts: object) -> uuid.UUID:
    return uuid.uuid5(NAMESPACE, "/".join(str(part) for part in parts))


Line = tuple[str, int, int]  # description, quantity, unit price in pence


@dataclass
class _Demo:
    """Collects the rows of one seeding, each with its deterministic id and time."""

    today: date
    password_hash: str
    rows: list[list[SQLModel]] = field(default_factory=lambda: [[] for _ in range(7)])

    def at(self, days: int, hour: int = 9, minute: int = 0) -> datetime:
        return datetime.combine(self.today + timedelta(days=days), time(hour, minute), UTC)

    def day(self, days: int) -> date:
        return self.today + timedelta(days=days)

    def add(self, level: int, *rows: SQLModel) -> None:
        # Rows are written level by level, so every parent is in before its children.
        self.rows[level].extend(rows)


def _pdf(text: str) -> bytes:
    """A one-page PDF that says `text`, with a correct cross-reference table."""
    stream = f"BT /F1 18 Tf 72 720 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
        b"/Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{offset:010d} 00000 n \n".encode() for offset in offsets)
    out += (
        f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    )
    return bytes(out)


def _tenant(demo: _Demo, slug: str, name: str, plan: Plan, **settings: Any) -> Tenant:
    tenant = Tenant(
        id=_id("tenant", slug),
        slug=slug,
        name=name,
        plan=plan,
        time_zone="Europe/London",
        currency="GBP",
        default_modules=list(ALL_MODULES),
        created_at=demo.at(-400),
        **settings,
    )
    demo.add(0, tenant)
    return tenant


def _staff(demo: _Demo, tenant: Tenant, role: StaffRole, name: str) -> StaffUser:
    local = role.value.lower().replace("_", ".")
    user = StaffUser(
        tenant_id=tenant.id,
        id=_id(tenant.slug, "staff", role.value),
        email=f"{local}@{tenant.slug}.example",
        name=name,
        role=role,
        password_hash=demo.password_hash,
        created_at=demo.at(-380),
    )
    demo.add(1, user)
    return user


@dataclass
class _Customer:
    row: Customer
    sites: list[Site]
    company: list[Contact]
    site_contacts: list[Contact]


def _customer(
    demo: _Demo,
    tenant: Tenant,
    name: str,
    identifier: str,
    sites: Sequence[tuple[str, str, str]],
    company: Sequence[tuple[str, str | None, str | None]],
    **settings: Any,
) -> _Customer:
    """A customer with its sites (name, town, postcode; the first is the company site), its
    company contacts (name, email, phone) and one contact at each further site."""
    key = (tenant.slug, identifier)
    customer = Customer(
        tenant_id=tenant.id,
        id=_id(*key),
        name=name,
        portal_identifier=identifier,
        created_at=demo.at(-300),
        updated_at=demo.at(-30),
        **settings,
    )
    site_rows = [
        Site(
            tenant_id=tenant.id,
            id=_id(*key, "site", n),
            customer_id=customer.id,
            name=site_name,
            site_number=f"S-{_number(identifier, n)}",
            address_line1=f"{10 + n * 7} {site_name.split()[0]} Road",
            town=town,
            postcode=postcode,
            uprn=None if n == 2 else f"{100000000000 + _number(identifier, n) * 37:012d}",
            is_company_site=n == 0,
            created_at=demo.at(-290),
            updated_at=demo.at(-60),
        )
        for n, (site_name, town, postcode) in enumerate(sites)
    ]
    company_rows = [
        Contact(
            tenant_id=tenant.id,
            id=_id(*key, "contact", contact_name),
            customer_id=customer.id,
            kind=ContactKind.COMPANY,
            name=contact_name,
            email=email,
            phone=phone,
            created_at=demo.at(-280),
            updated_at=demo.at(-40),
        )
        for contact_name, email, phone in company
    ]
    site_contacts = [
        Contact(
            tenant_id=tenant.id,
            id=_id(*key, "site-contact", site.name),
            customer_id=customer.id,
            site_id=site.id,
            kind=ContactKind.SITE,
            name=f"{site.name} Site Lead",
            email=f"lead.{n}@{identifier}.example",
            created_at=demo.at(-270),
            updated_at=demo.at(-40),
        )
        for n, site in enumerate(site_rows[1:], start=1)
    ]
    demo.add(1, customer)
    demo.add(2, *site_rows)
    demo.add(3, *company_rows, *site_contacts)
    return _Customer(customer, site_rows, company_rows, site_contacts)


def _number(identifier: str, n: int) -> int:
    # A stable small number from a name; Python's own hash() changes between runs.
    return int(hashlib.sha256(identifier.encode()).hexdigest()[:4], 16) % 9000 + 1000 + n


def _account(
    demo: _Demo,
    contact: Contact,
    *,
    username: str | None,
    name: str | None = None,
    modules: list[str] | None = None,
    accounts: dict[str, PortalAccount],
) -> PortalAccount:
    """Gives a contact portal access through the account of its email (made once)."""
    assert contact.email is not None
    contact.portal_access = True
    account = accounts.get(contact.email)
    if account is None:
        account = PortalAccount(
            id=_id("account", contact.email),
            email=contact.email,
            username=username,
            name=name or contact.name,
            password_hash=demo.password_hash,
            created_at=demo.at(-200),
        )
        accounts[contact.email] = account
        demo.add(0, account)
    demo.add(
        4,
        PortalMembership(
            tenant_id=contact.tenant_id,
            id=_id("membership", contact.id),
            account_id=account.id,
            contact_id=contact.id,
            module_override=modules,
            created_at=demo.at(-200),
        ),
    )
    return account


def _lines(lines: Sequence[Line]) -> int:
    return sum(quantity * price for _, quantity, price in lines)


def _invoice(
    demo: _Demo,
    customer: _Customer,
    number: str,
    status: InvoiceStatus,
    *,
    issued: int,
    due: int,
    lines: Sequence[Line],
    paid: Sequence[int] = (),
    site: int | None = 0,
    job: Job | None = None,
) -> Invoice:
    row = customer.row
    invoice = Invoice(
        tenant_id=row.tenant_id,
        id=_id(row.tenant_id, "invoice", number),
        customer_id=row.id,
        site_id=customer.sites[site].id if site is not None else None,
        job_id=job.id if job else None,
        number=number,
        description=lines[0][0],
        status=status,
        currency="GBP",
        total_minor=_lines(lines),
        paid_minor=sum(paid),
        issued_on=demo.day(issued),
        due_on=demo.day(due),
        created_at=demo.at(issued),
        updated_at=demo.at(min(issued + 1, 0)),
    )
    demo.add(5, invoice)
    _add_lines(demo, 6, InvoiceLine, "invoice_id", invoice, lines)
    for n, amount in enumerate(paid):
        demo.add(
            6,
            Payment(
                tenant_id=row.tenant_id,
                id=_id(invoice.id, "payment", n),
                invoice_id=invoice.id,
                amount_minor=amount,
                currency="GBP",
                status=PaymentStatus.SUCCEEDED,
                stripe_payment_intent_id=f"pi_demo_{number.lower()}_{n}",
                idempotency_key=f"demo-{number}-{n}",
                succeeded_at=demo.at(issued + 3 + n),
                created_at=demo.at(issued + 3 + n),
                updated_at=demo.at(issued + 3 + n),
            ),
        )
    return invoice


def _add_lines(
    demo: _Demo,
    level: int,
    model: type[InvoiceLine] | type[QuoteLine],
    parent: str,
    owner: Any,
    lines: Sequence[Line],
) -> None:
    for position, (description, quantity, price) in enumerate(lines, start=1):
        demo.add(
            level,
            model(
                tenant_id=owner.tenant_id,
                id=_id(owner.id, "line", position),
                position=position,
                description=description,
                quantity=quantity,
                unit_price_minor=price,
                total_minor=quantity * price,
                created_at=owner.created_at,
                **{parent: owner.id},
            ),
        )


def _quote(
    demo: _Demo,
    customer: _Customer,
    number: str,
    status: QuoteStatus,
    lines: Sequence[Line],
    *,
    created: int,
    decided_by: PortalAccount | None = None,
) -> Quote:
    row = customer.row
    quote = Quote(
        tenant_id=row.tenant_id,
        id=_id(row.tenant_id, "quote", number),
        customer_id=row.id,
        site_id=customer.sites[0].id,
        number=number,
        title=lines[0][0],
        description=f"Quote for {lines[0][0].lower()}.",
        status=status,
        currency="GBP",
        total_minor=_lines(lines),
        valid_until=demo.day(created + 30),
        decided_at=demo.at(created + 5) if decided_by else None,
        decided_by_account_id=decided_by.id if decided_by else None,
        created_at=demo.at(created),
    )
    demo.add(4, quote)
    _add_lines(demo, 5, QuoteLine, "quote_id", quote, lines)
    return quote


def _job(
    demo: _Demo,
    customer: _Customer,
    number: str,
    title: str,
    status: JobStatus,
    visits: Sequence[tuple[int, VisitStatus]],
    technician: StaffUser,
    *,
    site: int = 0,
) -> Job:
    row = customer.row
    job = Job(
        tenant_id=row.tenant_id,
        id=_id(row.tenant_id, "job", number),
        customer_id=row.id,
        site_id=customer.sites[site].id,
        number=number,
        title=title,
        description=f"{title} at {customer.sites[site].name}.",
        status=status,
        po_number=f"PO-{_number(number, 0)}",
        created_at=demo.at(min(day for day, _ in visits) - 7),
    )
    demo.add(4, job)
    demo.add(
        5,
        *(
            JobVisit(
                tenant_id=row.tenant_id,
                id=_id(job.id, "visit", n),
                job_id=job.id,
                starts_at=demo.at(day, 8 + n),
                ends_at=demo.at(day, 10 + n),
                status=visit_status,
                technician_id=technician.id,
                notes="Gate code 4721." if n == 0 else "",
                created_at=job.created_at,
            )
            for n, (day, visit_status) in enumerate(visits)
        ),
    )
    return job


def _acme(demo: _Demo, accounts: dict[str, PortalAccount]) -> None:
    acme = _tenant(
        demo,
        "acme",
        "Acme Sanitation",
        Plan.PRO,
        invoice_visibility=InvoiceVisibility.OUTSTANDING_AND_PAID,
        accent_colour="#0F766E",
    )
    staff = {
        role: _staff(demo, acme, role, name)
        for role, name in [
            (StaffRole.OWNER, "Olivia Owner"),
            (StaffRole.ADMIN, "Adam Admin"),
            (StaffRole.MANAGER, "Maria Manager"),
            (StaffRole.ASSISTANT_MANAGER, "Asha Assistant"),
            (StaffRole.DISPATCHER, "Dev Dispatcher"),
            (StaffRole.TECHNICIAN, "Tom Technician"),
        ]
    }
    technician = staff[StaffRole.TECHNICIAN]
    harbour = _customer(
        demo,
        acme,
        "Harbour View Hotel",
        "harbour-view",
        [
            ("Harbour View Hotel", "Portsmouth", "PO1 2AB"),
            ("Staff Car Park", "Portsmouth", "PO1 2AC"),
        ],
        [
            ("Hannah Facilities", "facilities@harbourview.example", "+44 23 9200 1000"),
            ("Harry Accounts", None, "+44 23 9200 1001"),
        ],
    )
    school = _customer(
        demo,
        acme,
        "Greenfield Primary School",
        "greenfield-primary",
        [
            ("Greenfield Primary", "Winchester", "SO22 4AA"),
            ("Sports Field", "Winchester", "SO22 4AB"),
        ],
        [("Grace Bursar", "bursar@greenfield.example", None)],
    )
    riverside = _customer(
        demo,
        acme,
        "Riverside Construction Ltd",
        "riverside",
        [
            ("Riverside Head Office", "Southampton", "SO14 3TL"),
            ("Quayside Development", "Southampton", "SO14 3QD"),
            ("Itchen Bridge Works", "Southampton", "SO19 9AA"),
        ],
        [("Rita Procurement", "procurement@riverside.example", "+44 23 8000 2000")],
    )
    festival = _customer(
        demo,
        acme,
        "Oakwood Festival Events",
        "oakwood-festival",
        [("Oakwood Park", "Basingstoke", "RG21 7AA"), ("North Meadow", "Basingstoke", "RG21 7AB")],
        [("Owen Events", "owen@oakwoodfestival.example", None)],
        accent_colour="#7C3AED",
        module_override=["INVOICES", "REQUESTS", "PROPERTIES", "USERS", "JOBS"],
    )
    council = _customer(
        demo,
        acme,
        "City Council Parks Dept",
        "city-parks",
        [("Parks Depot", "Portsmouth", "PO4 8AA")],
        [("Carl Parks", "parks@citycouncil.example", None)],
        portal_enabled=False,
    )
    maple = _customer(
        demo,
        acme,
        "Maple Court Apartments",
        "maple-court",
        [("Maple Court", "Fareham", "PO16 7AA"), ("Maple Court Annexe", "Fareham", "PO16 7AB")],
        [("Morgan Operations", "ops@maplecourt.example", "+44 1329 100 200")],
    )
    hannah = _account(demo, harbour.company[0], username="harbourview", accounts=accounts)
    site_lead = riverside.site_contacts[0]
    site_lead.email = "site.manager@riverside.example"
    site_account = _account(demo, site_lead, username="quayside", accounts=accounts)
    _account(
        demo,
        school.company[0],
        username="greenfield",
        modules=["INVOICES", "REQUESTS"],
        accounts=accounts,
    )
    morgan = _account(demo, maple.company[0], username="maplecourt", accounts=accounts)
    owen = _account(demo, festival.company[0], username="oakwood", accounts=accounts)
    _account(demo, council.company[0], username="cityparks", accounts=accounts)

    items = {
        name: RequestableItem(
            tenant_id=acme.id,
            id=_id(acme.id, "item", name),
            kind=kind,
            name=name,
            show_in_portal=shown,
            created_at=demo.at(-360),
        )
        for kind, name, shown in [
            (RequestableKind.PRODUCT, "Standard Portable Toilet", True),
            (RequestableKind.PRODUCT, "Deluxe Flushing Unit", True),
            (RequestableKind.PRODUCT, "Hand Wash Station", True),
            (RequestableKind.PRODUCT, "8 Yard Skip", True),
            (RequestableKind.PRODUCT, "Disabled Access Unit", False),
            (RequestableKind.SERVICE, "Service / Pump Out", True),
            (RequestableKind.SERVICE, "Delivery", True),
            (RequestableKind.SERVICE, "Collection", True),
            (RequestableKind.SERVICE, "Extra Clean", True),
            (RequestableKind.SERVICE, "Overnight Security Check", False),
        ]
    }
    demo.add(2, *items.values())
    rentals = [
        Rental(
            tenant_id=acme.id,
            id=_id(acme.id, "rental", reference),
            customer_id=customer.row.id,
            site_id=customer.sites[site].id,
            product_id=items[product].id,
            reference=reference,
            description=f"{product} at {customer.sites[site].name}",
            starts_on=demo.day(start),
            ends_on=demo.day(end) if end is not None else None,
            created_at=demo.at(start - 2),
        )
        for reference, customer, site, product, start, end in [
            ("R-2001", riverside, 1, "Standard Portable Toilet", -120, None),
            ("R-2002", riverside, 1, "Hand Wash Station", -120, None),
            ("R-2003", riverside, 2, "8 Yard Skip", -45, 15),
            ("R-2004", festival, 0, "Deluxe Flushing Unit", -20, 10),
            ("R-2005", harbour, 1, "Standard Portable Toilet", -200, -100),
            ("R-2006", school, 1, "Hand Wash Station", -60, None),
        ]
    ]
    demo.add(4, *rentals)

    done, booked, off = VisitStatus.COMPLETED, VisitStatus.SCHEDULED, VisitStatus.CANCELLED
    jobs = [
        _job(
            demo,
            harbour,
            "J-3001",
            "Quarterly pump out",
            JobStatus.COMPLETED,
            [(-40, done), (-10, done)],
            technician,
        ),
        _job(
            demo,
            harbour,
            "J-3002",
            "Car park unit swap",
            JobStatus.SCHEDULED,
            [(3, booked)],
            technician,
            site=1,
        ),
        _job(
            demo,
            riverside,
            "J-3003",
            "Weekly service",
            JobStatus.IN_PROGRESS,
            [(-7, done), (0, booked), (7, booked)],
            technician,
            site=1,
        ),
        _job(
            demo,
            riverside,
            "J-3004",
            "Skip exchange",
            JobStatus.PENDING,
            [(12, booked)],
            technician,
            site=2,
        ),
        _job(
            demo,
            festival,
            "J-3005",
            "Festival delivery",
            JobStatus.SCHEDULED,
            [(5, booked), (9, booked)],
            technician,
        ),
        _job(
            demo,
            school,
            "J-3006",
            "Sports day units",
            JobStatus.CANCELLED,
            [(-3, off)],
            technician,
            site=1,
        ),
        _job(
            demo, maple, "J-3007", "Drain jetting", JobStatus.COMPLETED, [(-25, done)], technician
        ),
    ]

    quotes = [
        _quote(
            demo,
            harbour,
            "Q-4001",
            QuoteStatus.DRAFT,
            [("Summer event units", 6, 8500)],
            created=-2,
        ),
        _quote(
            demo,
            harbour,
            "Q-4002",
            QuoteStatus.SENT,
            [("Wedding marquee units", 4, 12000), ("Delivery", 1, 4500)],
            created=-6,
        ),
        _quote(
            demo,
            riverside,
            "Q-4003",
            QuoteStatus.SENT,
            [("Phase two welfare cabins", 2, 65000)],
            created=-4,
        ),
        _quote(
            demo,
            riverside,
            "Q-4004",
            QuoteStatus.APPROVED,
            [("Quayside extra units", 3, 7500)],
            created=-50,
            decided_by=site_account,
        ),
        _quote(
            demo,
            maple,
            "Q-4005",
            QuoteStatus.DECLINED,
            [("Annual drain survey", 1, 48000)],
            created=-35,
            decided_by=morgan,
        ),
        _quote(
            demo,
            school,
            "Q-4006",
            QuoteStatus.EXPIRED,
            [("Sports day hand wash", 2, 3500)],
            created=-90,
        ),
    ]

    paid = InvoiceStatus.PAID
    unpaid = InvoiceStatus.UNPAID
    _invoice(
        demo,
        harbour,
        "INV-5001",
        InvoiceStatus.DRAFT,
        issued=0,
        due=30,
        lines=[("Pump out, December", 2, 9500)],
    )
    _invoice(
        demo,
        harbour,
        "INV-5002",
        unpaid,
        issued=-5,
        due=25,
        lines=[("Quarterly pump out", 2, 9500), ("Extra clean", 1, 3500)],
        job=jobs[0],
    )
    _invoice(
        demo,
        harbour,
        "INV-5003",
        unpaid,
        issued=-50,
        due=-20,
        lines=[("Unit hire, October", 4, 4200)],
    )
    _invoice(
        demo,
        harbour,
        "INV-5004",
        paid,
        issued=-80,
        due=-50,
        lines=[("Unit hire, September", 4, 4200)],
        paid=[16800],
    )
    _invoice(
        demo,
        harbour,
        "INV-5005",
        InvoiceStatus.VOID,
        issued=-70,
        due=-40,
        lines=[("Duplicate hire charge", 1, 4200)],
    )
    _invoice(
        demo,
        harbour,
        "INV-5006",
        unpaid,
        issued=-20,
        due=10,
        lines=[("Car park unit hire", 3, 5000), ("Delivery", 1, 4500)],
        paid=[10000],
        site=1,
    )
    _invoice(
        demo,
        riverside,
        "INV-5007",
        unpaid,
        issued=-35,
        due=-5,
        lines=[("Welfare hire, Quayside", 5, 6500)],
        site=1,
        job=jobs[2],
    )
    _invoice(
        demo,
        riverside,
        "INV-5008",
        unpaid,
        issued=-3,
        due=27,
        lines=[("Skip exchange", 1, 28000)],
        site=2,
    )
    _invoice(
        demo,
        riverside,
        "INV-5009",
        paid,
        issued=-65,
        due=-35,
        lines=[("Welfare hire, August", 5, 6500)],
        paid=[20000, 12500],
        site=1,
    )
    _invoice(
        demo, festival, "INV-5010", unpaid, issued=-1, due=13, lines=[("Festival units", 20, 9000)]
    )
    _invoice(
        demo,
        school,
        "INV-5011",
        unpaid,
        issued=-40,
        due=-10,
        lines=[("Hand wash hire", 2, 3000)],
        site=1,
    )
    _invoice(
        demo,
        maple,
        "INV-5012",
        paid,
        issued=-28,
        due=2,
        lines=[("Drain jetting", 1, 32000)],
        paid=[32000],
        job=jobs[6],
    )
    _invoice(
        demo,
        council,
        "INV-5013",
        unpaid,
        issued=-15,
        due=15,
        lines=[("Depot unit hire", 2, 4200)],
        site=None,
    )

    for n, (customer, site, title, issued, expires) in enumerate(
        [
            (harbour, 0, "Waste Transfer Note", -40, None),
            (harbour, 0, "Legionella Risk Assessment", -120, 245),
            (riverside, 1, "Waste Transfer Note", -7, None),
            (maple, 0, "Drainage Inspection Certificate", -25, 340),
        ]
    ):
        _certificate(
            demo, customer, f"C-{6001 + n}", title, site=site, issued=issued, expires=expires
        )

    for n, (customer, job, quote, title, day, site) in enumerate(
        [
            (harbour, jobs[1], None, "Swap car park unit", 3, 1),
            (riverside, jobs[2], None, "Weekly service", 7, 1),
            (riverside, None, quotes[2], "Estimate visit: welfare cabins", 2, 1),
            (festival, jobs[4], None, "Festival delivery", 5, 0),
            (harbour, jobs[0], None, "Quarterly pump out", -10, 0),
            (harbour, None, quotes[1], "Estimate visit: marquee units", 1, 0),
        ]
    ):
        demo.add(
            5,
            DiaryEvent(
                tenant_id=acme.id,
                id=_id(acme.id, "diary", n),
                customer_id=customer.row.id,
                site_id=customer.sites[site].id,
                job_id=job.id if job else None,
                quote_id=quote.id if quote else None,
                title=title,
                description=f"{title} at {customer.sites[site].name}.",
                starts_at=demo.at(day, 9 + n % 3),
                ends_at=demo.at(day, 11 + n % 3),
                created_at=demo.at(min(day, 0) - 5),
            ),
        )

    assistant = staff[StaffRole.ASSISTANT_MANAGER]
    requests = [
        _request(
            demo,
            riverside,
            site_lead,
            site_account,
            "PR-7001",
            RequestStatus.NEW,
            -1,
            site=1,
            product=items["Standard Portable Toilet"],
            service=items["Service / Pump Out"],
            rental=rentals[0],
            po="PO-88412",
            notes="Unit near gate 2 is full.",
        ),
        _request(
            demo,
            riverside,
            site_lead,
            site_account,
            "PR-7002",
            RequestStatus.READ,
            -3,
            site=1,
            product=items["Hand Wash Station"],
            service=items["Delivery"],
            new_rental=True,
            po="PO-88413",
            reader=assistant,
        ),
        _request(
            demo,
            harbour,
            harbour.company[0],
            hannah,
            "PR-7003",
            RequestStatus.COMPLETED,
            -12,
            site=0,
            product=items["Standard Portable Toilet"],
            service=items["Extra Clean"],
            reader=assistant,
            decider=assistant,
            converted_job=jobs[0],
        ),
        _request(
            demo,
            harbour,
            harbour.company[0],
            hannah,
            "PR-7004",
            RequestStatus.COMPLETED,
            -30,
            site=1,
            product=items["8 Yard Skip"],
            service=items["Delivery"],
            new_rental=True,
            reader=assistant,
            decider=staff[StaffRole.MANAGER],
            converted_rental=rentals[4],
        ),
        _request(
            demo,
            maple,
            maple.company[0],
            morgan,
            "PR-7005",
            RequestStatus.DECLINED,
            -8,
            site=0,
            product=items["Deluxe Flushing Unit"],
            service=items["Delivery"],
            new_rental=True,
            reader=assistant,
            decider=assistant,
            reason="We have no deluxe units free that week.",
        ),
        _request(
            demo,
            harbour,
            harbour.company[0],
            hannah,
            "PR-7006",
            RequestStatus.NEW,
            0,
            site=0,
            kind=RequestKind.QUOTE,
            description="Quote for 10 units for a summer wedding.",
        ),
        _request(
            demo,
            maple,
            maple.company[0],
            morgan,
            "PR-7007",
            RequestStatus.READ,
            -2,
            site=1,
            kind=RequestKind.JOB,
            description="Blocked drain behind the annexe.",
            reader=staff[StaffRole.MANAGER],
        ),
        _request(
            demo,
            festival,
            festival.company[0],
            owen,
            "PR-7008",
            RequestStatus.CANCELLED,
            -6,
            site=1,
            kind=RequestKind.QUOTE,
            description="Quote for 40 units for the June festival.",
            reader=assistant,
            reason="The festival moved to another venue.",
        ),
    ]
    demo.add(5, *requests)

    _thread(
        demo,
        harbour,
        ThreadSubject.JOB,
        jobs[1].id,
        f"Job {jobs[1].number}",
        [
            (technician, None, "We will swap the unit on Thursday morning.", -2),
            (None, hannah, "Thanks, please use the service entrance.", -1),
            (technician, None, "Will do; the driver will call from the gate.", -1),
        ],
    )
    _thread(
        demo,
        riverside,
        ThreadSubject.INVOICE,
        _id(acme.id, "invoice", "INV-5007"),
        "Invoice INV-5007",
        [
            (None, site_account, "Can we pay this one in two parts?", -4),
            (staff[StaffRole.MANAGER], None, "Yes, pay any part from the portal.", -3),
        ],
    )
    demo.add(
        5,
        AuditEntry(
            tenant_id=acme.id,
            id=_id(acme.id, "audit", "harbour-access"),
            actor_staff_id=staff[StaffRole.ASSISTANT_MANAGER].id,
            action="portal_access.enabled",
            subject_type="Contact",
            subject_id=harbour.company[0].id,
            before={"portal_access": False},
            after={"portal_access": True},
            created_at=demo.at(-200),
        ),
    )


def _certificate(
    demo: _Demo,
    customer: _Customer,
    number: str,
    title: str,
    *,
    site: int,
    issued: int,
    expires: int | None,
) -> None:
    tenant_id = customer.row.tenant_id
    content = _pdf(f"{title} {number} - {customer.row.name}")
    document = StoredFile(
        tenant_id=tenant_id,
        id=_id(tenant_id, "file", number),
        filename=f"{number}.pdf",
        content_type="application/pdf",
        byte_size=len(content),
        sha256=hashlib.sha256(content).hexdigest(),
        content=content,
        created_at=demo.at(issued),
    )
    demo.add(4, document)
    demo.add(
        5,
        Certificate(
            tenant_id=tenant_id,
            id=_id(tenant_id, "certificate", number),
            customer_id=customer.row.id,
            site_id=customer.sites[site].id,
            number=number,
            title=title,
            issued_on=demo.day(issued),
            expires_on=demo.day(expires) if expires is not None else None,
            file_id=document.id,
            created_at=demo.at(issued),
        ),
    )


def _request(
    demo: _Demo,
    customer: _Customer,
    contact: Contact,
    account: PortalAccount,
    number: str,
    status: RequestStatus,
    created: int,
    *,
    site: int,
    kind: RequestKind = RequestKind.SERVICE,
    product: RequestableItem | None = None,
    service: RequestableItem | None = None,
    rental: Rental | None = None,
    new_rental: bool = False,
    po: str | None = None,
    notes: str = "",
    description: str = "",
    reader: StaffUser | None = None,
    decider: StaffUser | None = None,
    reason: str | None = None,
    converted_job: Job | None = None,
    converted_rental: Rental | None = None,
) -> ServiceRequest:
    tenant_id = customer.row.tenant_id
    request = ServiceRequest(
        tenant_id=tenant_id,
        id=_id(tenant_id, "request", number),
        number=number,
        kind=kind,
        status=status,
        customer_id=customer.row.id,
        site_id=customer.sites[site].id,
        contact_id=contact.id,
        contact_name=contact.name,
        account_id=account.id,
        product_id=product.id if product else None,
        service_id=service.id if service else None,
        product_name=product.name if product else None,
        service_name=service.name if service else None,
        rental_id=rental.id if rental else None,
        wants_new_rental=new_rental,
        po_number=po,
        notes=notes,
        description=description,
        preferred_date=demo.day(created + 5),
        read_at=demo.at(created, 11) if reader else None,
        read_by_staff_id=reader.id if reader else None,
        decided_at=demo.at(created + 1, 10)
        if decider or status is RequestStatus.CANCELLED
        else None,
        decided_by_staff_id=decider.id if decider else None,
        decline_reason=reason if status is RequestStatus.DECLINED else None,
        cancel_reason=reason if status is RequestStatus.CANCELLED else None,
        converted_job_id=converted_job.id if converted_job else None,
        converted_rental_id=converted_rental.id if converted_rental else None,
        created_at=demo.at(created, 8),
    )
    history: list[tuple[RequestStatus | None, RequestStatus, StaffUser | None, datetime]] = [
        (None, RequestStatus.NEW, None, request.created_at)
    ]
    if reader:
        history.append((RequestStatus.NEW, RequestStatus.READ, reader, demo.at(created, 11)))
    if decider:
        history.append((RequestStatus.READ, status, decider, demo.at(created + 1, 10)))
    cancelled = status is RequestStatus.CANCELLED
    if cancelled:
        # Withdrawn by the customer, after the office had read it.
        history.append((RequestStatus.READ, status, None, demo.at(created + 1, 10)))
    for step, (before, after, staff, at) in enumerate(history):
        demo.add(
            6,
            ServiceRequestEvent(
                tenant_id=tenant_id,
                id=_id(request.id, "event", step),
                request_id=request.id,
                from_status=before,
                to_status=after,
                staff_user_id=staff.id if staff else None,
                account_id=account.id if step == 0 or staff is None else None,
                note=(reason or "")
                if after in (RequestStatus.DECLINED, RequestStatus.CANCELLED)
                else "",
                created_at=at,
            ),
        )
    return request


def _thread(
    demo: _Demo,
    customer: _Customer,
    subject: ThreadSubject,
    subject_id: uuid.UUID,
    title: str,
    messages: Sequence[tuple[StaffUser | None, PortalAccount | None, str, int]],
) -> None:
    tenant_id = customer.row.tenant_id
    thread = MessageThread(
        tenant_id=tenant_id,
        id=_id(tenant_id, "thread", subject.value, subject_id),
        customer_id=customer.row.id,
        subject_type=subject,
        subject_id=subject_id,
        title=title,
        last_message_at=demo.at(messages[-1][3], 15),
        created_at=demo.at(messages[0][3], 15),
    )
    demo.add(4, thread)
    demo.add(
        5,
        *(
            Message(
                tenant_id=tenant_id,
                id=_id(thread.id, "message", n),
                thread_id=thread.id,
                author_staff_id=staff.id if staff else None,
                author_account_id=account.id if account else None,
                author_name=staff.name if staff else account.name if account else "",
                body=body,
                read_by_staff_at=demo.at(day, 16) if account else None,
                read_by_customer_at=demo.at(day, 16) if staff and n < len(messages) - 1 else None,
                created_at=demo.at(day, 15),
            )
            for n, (staff, account, body, day) in enumerate(messages)
        ),
    )


def _brightwater(demo: _Demo) -> None:
    """A business whose plan has no portal: its customers exist but cannot sign in."""
    brightwater = _tenant(demo, "brightwater", "Brightwater Plumbing", Plan.STARTER)
    _staff(demo, brightwater, StaffRole.OWNER, "Ben Brightwater")
    mill = _customer(
        demo,
        brightwater,
        "Old Mill Pub",
        "old-mill",
        [("Old Mill Pub", "Romsey", "SO51 8AA")],
        [("Polly Landlord", "polly@oldmill.example", None)],
    )
    _customer(
        demo,
        brightwater,
        "Romsey Dental Practice",
        "romsey-dental",
        [("Romsey Dental", "Romsey", "SO51 8BB"), ("Car Park", "Romsey", "SO51 8BC")],
        [("Dr Dee Dentist", "practice@romseydental.example", None)],
    )
    _invoice(
        demo,
        mill,
        "BW-101",
        InvoiceStatus.UNPAID,
        issued=-10,
        due=20,
        lines=[("Boiler service", 1, 9500)],
    )


def _northside(demo: _Demo, accounts: dict[str, PortalAccount]) -> None:
    """A second contractor of Maple Court's, so one account sees two contractors."""
    northside = _tenant(
        demo, "northside", "Northside Gas Safety", Plan.PRO, accent_colour="#B45309"
    )
    nia = _staff(demo, northside, StaffRole.OWNER, "Nia Northside")
    maple = _customer(
        demo,
        northside,
        "Maple Court Apartments",
        "maple-court",
        [("Maple Court", "Fareham", "PO16 7AA"), ("Maple Court Annexe", "Fareham", "PO16 7AB")],
        [("Morgan Operations", "ops@maplecourt.example", "+44 1329 100 200")],
    )
    morgan = _account(demo, maple.company[0], username="maplecourt", accounts=accounts)
    meter = Rental(
        tenant_id=northside.id,
        id=_id(northside.id, "rental", "NR-1"),
        customer_id=maple.row.id,
        site_id=maple.sites[0].id,
        reference="NR-1",
        description="Gas meter housing at Maple Court",
        starts_on=demo.day(-90),
        created_at=demo.at(-92),
    )
    demo.add(4, meter)
    demo.add(
        1,
        *(
            RequestableItem(
                tenant_id=northside.id,
                id=_id(northside.id, "item", name),
                kind=RequestableKind.SERVICE,
                name=name,
                created_at=demo.at(-200),
            )
            for name in ("Annual Gas Safety Check", "Boiler Service")
        ),
    )
    _job(
        demo,
        maple,
        "NJ-301",
        "Boiler service",
        JobStatus.SCHEDULED,
        [(6, VisitStatus.SCHEDULED)],
        nia,
    )
    quote = _quote(
        demo, maple, "NQ-201", QuoteStatus.SENT, [("Boiler replacement", 1, 240000)], created=-5
    )
    _thread(
        demo,
        maple,
        ThreadSubject.QUOTE,
        quote.id,
        "Quote NQ-201",
        [
            (None, morgan, "Does the price include taking the old boiler away?", -4),
            (nia, None, "It does, and the flue liner too.", -3),
        ],
    )
    _certificate(
        demo, maple, "GS-901", "Landlord Gas Safety Record", site=0, issued=-30, expires=335
    )
    _certificate(
        demo, maple, "GS-902", "Landlord Gas Safety Record", site=1, issued=-30, expires=335
    )
    _invoice(
        demo,
        maple,
        "NS-1001",
        InvoiceStatus.UNPAID,
        issued=-12,
        due=18,
        lines=[("Gas safety inspections", 2, 7500)],
    )


DEMO_SIGN_INS: list[DemoSignIn] = [
    *(
        DemoSignIn(
            "staff",
            "acme",
            f"{role.value.lower().replace('_', '.')}@acme.example",
            None,
            role.value,
        )
        for role in StaffRole
    ),
    DemoSignIn(
        "staff", "brightwater", "owner@brightwater.example", None, "OWNER (plan without portal)"
    ),
    DemoSignIn("staff", "northside", "owner@northside.example", None, "OWNER"),
    DemoSignIn("portal", None, "facilities@harbourview.example", "harbourview", "company contact"),
    DemoSignIn("portal", None, "site.manager@riverside.example", "quayside", "site contact"),
    DemoSignIn(
        "portal",
        None,
        "bursar@greenfield.example",
        "greenfield",
        "company contact, INVOICES and REQUESTS only",
    ),
    DemoSignIn(
        "portal", None, "ops@maplecourt.example", "maplecourt", "company contact at two contractors"
    ),
    DemoSignIn(
        "portal",
        None,
        "owen@oakwoodfestival.example",
        "oakwood",
        "company contact, customer with narrowed modules",
    ),
    DemoSignIn(
        "portal",
        None,
        "parks@citycouncil.example",
        "cityparks",
        "company contact, customer portal switched off",
    ),
]


async def database_is_empty(db: Database) -> bool:
    async with db.session(SYSTEM) as session:
        return await session.scalar(sa.select(col(Tenant.id)).limit(1)) is None


async def seed_demo(db: Database, *, today: date) -> list[DemoSignIn]:
    """Writes the demo in one transaction: all of it or nothing."""
    demo = _Demo(today=today, password_hash=hash_password(DEMO_PASSWORD))
    accounts: dict[str, PortalAccount] = {}
    _acme(demo, accounts)
    _brightwater(demo)
    _northside(demo, accounts)
    async with db.transaction(SYSTEM) as session:
        for level in demo.rows:
            session.add_all(level)
            await session.flush()
    return DEMO_SIGN_INS
