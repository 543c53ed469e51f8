"""The portal schema, served at /portal/graphql to the customers' web and mobile apps.

It is smaller than the staff schema on purpose: a type exists here only when a portal
screen needs it, so a portal user cannot even name a staff-only field. Every field that
gives a module's data carries `@requiresModule`, and the rows it gives are narrowed in the
data layer to the customers, sites and modules the viewer's grants reach.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated

import strawberry
from strawberry import relay

from app.context import Info
from app.db.models import ContactKind, PortalModule
from app.resolvers.certificates import certificates_page
from app.resolvers.diaries import appointments_page
from app.resolvers.invoices import invoices_page
from app.resolvers.jobs import jobs_page, upcoming_visits
from app.resolvers.portal import viewer_contractors, viewer_customers
from app.resolvers.portal_people import contacts_page, users_page
from app.resolvers.portal_requests import requestable_items, requests_page
from app.resolvers.properties import properties_page
from app.resolvers.quotes import quotes_page
from app.schema import compiled
from app.schema.accounts import PortalAccount, portal_account_of
from app.schema.build import GatewaySchema, build_schema
from app.schema.permissions import (
    Public,
    RequiresContact,
    RequiresModule,
    RequiresPortalUser,
    guarded,
)
from app.schema.portal.branding import BrandingQuery
from app.schema.portal.certificates import Certificate
from app.schema.portal.common import CONTRACTOR_ARGUMENT, Contractor, contractor_filter
from app.schema.portal.customers import Contact, Customer, Rental, Site
from app.schema.portal.diaries import Appointment
from app.schema.portal.invoices import Invoice, InvoiceMutation
from app.schema.portal.jobs import Job, Visit
from app.schema.portal.messages import (
    Message,
    MessagesMutation,
    MessagesQuery,
    MessagesSubscription,
    MessageThread,
)
from app.schema.portal.people import PeopleMutation
from app.schema.portal.properties import PropertiesMutation
from app.schema.portal.quotes import Quote, QuotesMutation
from app.schema.portal.requests import RequestableItem, RequestsMutation, ServiceRequest
from app.schema.portal.users import PortalUser
from app.schema.relay import connection, node_field
from app.schema.sign_in import PortalSignInMutation

Contractor_ = Annotated[strawberry.ID | None, CONTRACTOR_ARGUMENT]


@strawberry.type
class Mutation(
    PortalSignInMutation,
    RequestsMutation,
    QuotesMutation,
    PropertiesMutation,
    InvoiceMutation,
    PeopleMutation,
    MessagesMutation,
):
    pass


# `node` answers in one statement for the ids of types with a SQL form (`app.schema.compiled`).
compiled.ROOTS["node"] = compiled.NodeRoot()


@strawberry.type
class Subscription(MessagesSubscription):
    pass


@strawberry.type
class Query(BrandingQuery, MessagesQuery):
    node: relay.Node | None = node_field()

    @strawberry.field(
        description="The signed-in portal account; null when nobody is signed in.",
        extensions=guarded(Public()),
    )
    def viewer(self, info: Info) -> PortalAccount | None:
        return portal_account_of(info.context.viewer)

    @strawberry.field(
        description="The businesses you are a customer of, by name.",
        extensions=guarded(RequiresPortalUser()),
    )
    async def contractors(self, info: Info) -> list[Contractor]:
        return [Contractor.from_row(row) for row in await viewer_contractors(info.context)]

    @strawberry.field(
        description="The companies you speak for, one per contractor you use, by name.",
        extensions=guarded(RequiresPortalUser()),
    )
    async def customers(self, info: Info, contractor: Contractor_ = None) -> list[Customer]:
        rows = await viewer_customers(info.context, contractor=contractor_filter(contractor))
        return [Customer.from_row(row) for row in rows]

    @strawberry.field(
        description="Your sites, by name.",
        extensions=guarded(RequiresModule(PortalModule.PROPERTIES)),
    )
    async def properties(
        self,
        info: Info,
        contractor: Contractor_ = None,
        first: int | None = None,
        after: str | None = None,
    ) -> relay.Connection[Site]:
        page = await properties_page(
            info.context, contractor=contractor_filter(contractor), first=first, after=after
        )
        return connection(page, Site.from_row)

    @strawberry.field(
        description="Your invoices, newest first: outstanding ones, and paid ones where the"
        " contractor shows them.",
        extensions=guarded(
            RequiresModule(PortalModule.INVOICES), RequiresContact(ContactKind.COMPANY)
        ),
    )
    async def invoices(
        self,
        info: Info,
        contractor: Contractor_ = None,
        unpaid_only: bool = False,
        first: int | None = None,
        after: str | None = None,
    ) -> relay.Connection[Invoice]:
        page = await invoices_page(
            info.context,
            contractor=contractor_filter(contractor),
            unpaid_only=unpaid_only,
            first=first,
            after=after,
        )
        return connection(page, Invoice.from_row)

    @strawberry.field(
        description="Quotes sent to you, newest first.",
        extensions=guarded(RequiresModule(PortalModule.QUOTES)),
    )
    async def quotes(
        self,
        info: Info,
        contractor: Contractor_ = None,
        first: int | None = None,
        after: str | None = None,
    ) -> relay.Connection[Quote]:
        page = await quotes_page(
            info.context, contractor=contractor_filter(contractor), first=first, after=after
        )
        return connection(page, Quote.from_row)

    @strawberry.field(
        description="Your jobs, newest first.",
        extensions=guarded(RequiresModule(PortalModule.JOBS)),
    )
    async def jobs(
        self,
        info: Info,
        contractor: Contractor_ = None,
        first: int | None = None,
        after: str | None = None,
    ) -> relay.Connection[Job]:
        page = await jobs_page(
            info.context, contractor=contractor_filter(contractor), first=first, after=after
        )
        return connection(page, Job.from_row)

    @strawberry.field(
        description="The next scheduled visits on your jobs, soonest first (at most 20).",
        extensions=guarded(RequiresModule(PortalModule.JOBS)),
    )
    async def upcoming_visits(
        self, info: Info, contractor: Contractor_ = None, first: int = 5
    ) -> list[Visit]:
        rows = await upcoming_visits(
            info.context, contractor=contractor_filter(contractor), first=first
        )
        return [Visit.from_row(row) for row in rows]

    @strawberry.field(
        description="Your certificates, newest first, issued within the inclusive range given.",
        extensions=guarded(RequiresModule(PortalModule.CERTIFICATES)),
    )
    async def certificates(
        self,
        info: Info,
        contractor: Contractor_ = None,
        issued_from: date | None = None,
        issued_to: date | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> relay.Connection[Certificate]:
        page = await certificates_page(
            info.context,
            contractor=contractor_filter(contractor),
            issued_from=issued_from,
            issued_to=issued_to,
            first=first,
            after=after,
        )
        return connection(page, Certificate.from_row)

    @strawberry.field(
        description="Appointments starting from one day to another, inclusive, each in its"
        " contractor's time zone; earliest first.",
        extensions=guarded(RequiresModule(PortalModule.DIARIES)),
    )
    async def appointments(
        self,
        info: Info,
        start: Annotated[date, strawberry.argument(name="from")],
        end: Annotated[date, strawberry.argument(name="to")],
        contractor: Contractor_ = None,
        first: int | None = None,
        after: str | None = None,
    ) -> relay.Connection[Appointment]:
        page = await appointments_page(
            info.context,
            contractor=contractor_filter(contractor),
            start=start,
            end=end,
            first=first,
            after=after,
        )
        return connection(page, Appointment.from_row)

    @strawberry.field(
        description="Requests you may follow, newest first.",
        extensions=guarded(RequiresModule(PortalModule.REQUESTS)),
    )
    async def requests(
        self,
        info: Info,
        contractor: Contractor_ = None,
        first: int | None = None,
        after: str | None = None,
    ) -> relay.Connection[ServiceRequest]:
        page = await requests_page(
            info.context, contractor=contractor_filter(contractor), first=first, after=after
        )
        return connection(page, ServiceRequest.from_row)

    @strawberry.field(
        description="What you can ask your contractors for, by kind and name.",
        extensions=guarded(RequiresModule(PortalModule.REQUESTS)),
    )
    async def requestable_items(
        self, info: Info, contractor: Contractor_ = None
    ) -> list[RequestableItem]:
        rows = await requestable_items(info.context, contractor=contractor_filter(contractor))
        return [RequestableItem.from_row(row) for row in rows]

    @strawberry.field(
        description="The contacts you manage at your companies, by name: the whole company's"
        " for a company contact, your site's for a site contact.",
        extensions=guarded(RequiresModule(PortalModule.USERS)),
    )
    async def contacts(
        self,
        info: Info,
        contractor: Contractor_ = None,
        first: int | None = None,
        after: str | None = None,
    ) -> relay.Connection[Contact]:
        page = await contacts_page(
            info.context, contractor=contractor_filter(contractor), first=first, after=after
        )
        return connection(page, Contact.from_row)

    @strawberry.field(
        description="Who may sign in to the portal for your companies, invited or signed up,"
        " newest first.",
        extensions=guarded(RequiresModule(PortalModule.USERS)),
    )
    async def users(
        self,
        info: Info,
        contractor: Contractor_ = None,
        first: int | None = None,
        after: str | None = None,
    ) -> relay.Connection[PortalUser]:
        page = await users_page(
            info.context, contractor=contractor_filter(contractor), first=first, after=after
        )
        return connection(page, PortalUser.from_row)


def portal_schema(*, production: bool) -> GatewaySchema:
    return build_schema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        types=[
            Appointment,
            Certificate,
            Contact,
            Contractor,
            Customer,
            Invoice,
            Job,
            Message,
            MessageThread,
            PortalAccount,
            PortalUser,
            Quote,
            Rental,
            RequestableItem,
            ServiceRequest,
            Site,
        ],
        production=production,
        introspection=not production,
    )
