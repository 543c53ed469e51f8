"""The portal schema, served at /portal/graphql to the customers' web and mobile apps.

It is smaller than the staff schema on purpose: a type exists here only when a portal
screen needs it, so a portal user cannot even name a staff-only field.
"""

from __future__ import annotations

import strawberry
from strawberry import relay

from app.context import Info
from app.schema.accounts import PortalAccount, portal_account_of
from app.schema.build import GatewaySchema, build_schema
from app.schema.permissions import Public, guarded
from app.schema.relay import node_field
from app.schema.sign_in import PortalSignInMutation


@strawberry.type
class Mutation(PortalSignInMutation):
    pass


@strawberry.type
class Query:
    node: relay.Node | None = node_field()

    @strawberry.field(
        description="The signed-in portal account; null when nobody is signed in.",
        extensions=guarded(Public()),
    )
    def viewer(self, info: Info) -> PortalAccount | None:
        return portal_account_of(info.context.viewer)


def portal_schema(*, production: bool) -> GatewaySchema:
    return build_schema(
        query=Query,
        mutation=Mutation,
        types=[PortalAccount],
        production=production,
        introspection=not production,
    )
