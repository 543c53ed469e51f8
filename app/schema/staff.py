"""The staff schema, served at /graphql to the office dashboard and to integrators."""

from __future__ import annotations

import strawberry
from strawberry import relay

from app.auth.viewer import StaffViewer
from app.context import Info
from app.db.models import StaffRole
from app.resolvers.customers import customers_page
from app.schema.accounts import PortalActor, StaffUser
from app.schema.audit import AuditEntry, AuditQuery
from app.schema.build import GatewaySchema, build_schema
from app.schema.catalog import CatalogMutation, CatalogQuery, RequestableItem
from app.schema.customers import Contact, Customer, CustomerMutation, Site
from app.schema.jobs import Job
from app.schema.messages import (
    Message,
    MessagesMutation,
    MessagesQuery,
    MessagesSubscription,
    MessageThread,
)
from app.schema.notifications import (
    NotificationsMutation,
    NotificationsQuery,
    NotificationsSubscription,
)
from app.schema.permissions import Public, RequiresRole, guarded
from app.schema.portal_settings import PortalSettingsMutation, PortalSettingsQuery
from app.schema.relay import connection, node_field
from app.schema.rentals import Rental
from app.schema.requests import RequestsMutation, RequestsQuery, ServiceRequest
from app.schema.sign_in import StaffSignInMutation


@strawberry.type
class Mutation(
    StaffSignInMutation,
    CustomerMutation,
    CatalogMutation,
    RequestsMutation,
    PortalSettingsMutation,
    MessagesMutation,
    NotificationsMutation,
):
    pass


@strawberry.type
class Subscription(MessagesSubscription, NotificationsSubscription):
    pass


@strawberry.type
class Query(
    CatalogQuery, RequestsQuery, PortalSettingsQuery, AuditQuery, MessagesQuery, NotificationsQuery
):
    node: relay.Node | None = node_field()

    @strawberry.field(
        description="The signed-in staff user; null when nobody is signed in.",
        extensions=guarded(Public()),
    )
    def viewer(self, info: Info) -> StaffUser | None:
        viewer = info.context.viewer
        if not isinstance(viewer, StaffViewer):
            return None
        return StaffUser(
            id=str(viewer.user_id), name=viewer.name, email=viewer.email, role=viewer.role
        )

    @strawberry.field(
        description="The business's customers, by name.",
        extensions=guarded(RequiresRole(StaffRole.TECHNICIAN)),
    )
    async def customers(
        self, info: Info, first: int | None = None, after: str | None = None
    ) -> relay.Connection[Customer]:
        page = await customers_page(info.context, first=first, after=after)
        return connection(page, Customer.from_row)


def staff_schema(*, production: bool) -> GatewaySchema:
    return build_schema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        types=[
            AuditEntry,
            Contact,
            Customer,
            Job,
            Message,
            MessageThread,
            Rental,
            RequestableItem,
            ServiceRequest,
            Site,
            StaffUser,
            PortalActor,
        ],
        production=production,
        introspection=True,
    )
