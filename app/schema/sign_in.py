"""Signing in and out on both schemas, and the emailed-link flows of the portal."""

from __future__ import annotations

from datetime import datetime

import strawberry

from app.auth.cookies import clear_session_cookie, set_session_cookie
from app.auth.sessions import LIFETIMES, Credentials
from app.auth.tokens import Audience
from app.context import Info
from app.db.models import SessionAudience, SessionClient, StaffRole
from app.resolvers import portal_access, sign_in
from app.schema.accounts import PortalAccount, StaffUser
from app.schema.customers import Contact
from app.schema.inputs import EMAIL_MAX_LENGTH, TENANT_MAX_LENGTH, MaxLength
from app.schema.permissions import (
    PortalModuleEnum,
    Public,
    RequiresPortalUser,
    RequiresRole,
    guarded,
)
from app.schema.relay import uuid_of

ClientKind = strawberry.enum(
    SessionClient,
    name="ClientKind",
    description="BROWSER gets an HttpOnly session cookie; MOBILE gets tokens in the answer.",
)


@strawberry.type(description="Credentials for a mobile app; browsers get a cookie instead.")
class SessionTokens:
    access_token: str = strawberry.field(description="Send as `Authorization: Bearer ...`.")
    access_token_expires_at: datetime
    refresh_token: str = strawberry.field(
        description="Trade once for new tokens with `refreshSession`; reusing it ends the session."
    )


@strawberry.type
class StaffSignInPayload:
    viewer: StaffUser
    tokens: SessionTokens | None


@strawberry.type
class PortalSignInPayload:
    viewer: PortalAccount
    tokens: SessionTokens | None


@strawberry.input
class AcceptInvitationInput:
    tenant: str = strawberry.field(description="The tenant slug from the invitation link.")
    token: str
    name: str
    username: str
    password: str
    client: ClientKind = SessionClient.BROWSER  # type: ignore[valid-type]


def hand_over(info: Info, audience: Audience, credentials: Credentials) -> SessionTokens | None:
    """Gives the client its credentials: a cookie for a browser, tokens for a mobile app."""
    if credentials.cookie is not None:
        assert info.context.response is not None
        max_age = int(LIFETIMES[SessionClient.BROWSER].total_seconds())
        set_session_cookie(info.context.response, audience, credentials.cookie, max_age=max_age)
        return None
    assert credentials.access_token and credentials.refresh_token
    assert credentials.access_token_expires_at
    return SessionTokens(
        access_token=credentials.access_token,
        access_token_expires_at=credentials.access_token_expires_at,
        refresh_token=credentials.refresh_token,
    )


def _portal_payload(info: Info, result: sign_in.PortalSignIn) -> PortalSignInPayload:
    return PortalSignInPayload(
        viewer=PortalAccount.from_row(result.account),
        tokens=hand_over(info, Audience.PORTAL, result.credentials),
    )


def _sign_out(info: Info, audience: Audience) -> None:
    if info.context.response is not None:
        clear_session_cookie(info.context.response, audience)


@strawberry.type
class StaffSignInMutation:
    @strawberry.mutation(
        description="Sign in as staff of one business.",
        extensions=[
            MaxLength(tenant=TENANT_MAX_LENGTH, email=EMAIL_MAX_LENGTH),
            *guarded(Public()),
        ],
    )
    async def sign_in(
        self,
        info: Info,
        tenant: str,
        email: str,
        password: str,
        client: ClientKind = SessionClient.BROWSER,  # type: ignore[valid-type]
    ) -> StaffSignInPayload:
        result = await sign_in.staff_sign_in(
            info.context, tenant_slug=tenant, email=email, password=password, client=client
        )
        return StaffSignInPayload(
            viewer=StaffUser.from_row(result.user),
            tokens=hand_over(info, Audience.STAFF, result.credentials),
        )

    @strawberry.mutation(
        description="End this session.", extensions=guarded(RequiresRole(StaffRole.TECHNICIAN))
    )
    async def sign_out(self, info: Info) -> bool:
        _sign_out(info, Audience.STAFF)
        return await sign_in.sign_out(info.context)

    @strawberry.mutation(
        description="Trade a refresh token for new tokens.", extensions=guarded(Public())
    )
    async def refresh_session(self, info: Info, refresh_token: str) -> SessionTokens:
        credentials = await sign_in.refresh(
            info.context, refresh_token=refresh_token, audience=SessionAudience.STAFF
        )
        tokens = hand_over(info, Audience.STAFF, credentials)
        assert tokens is not None
        return tokens

    @strawberry.mutation(
        description="Change your password; every other session of yours ends.",
        extensions=guarded(RequiresRole(StaffRole.TECHNICIAN)),
    )
    async def change_password(
        self, info: Info, current_password: str, new_password: str
    ) -> SessionTokens | None:
        credentials = await sign_in.change_password(
            info.context, current_password=current_password, new_password=new_password
        )
        return hand_over(info, Audience.STAFF, credentials)

    @strawberry.mutation(
        description="Switch a contact's portal access. On sends an invitation email; off ends "
        "their portal sessions here at once.",
        extensions=guarded(RequiresRole(StaffRole.ASSISTANT_MANAGER)),
    )
    async def set_contact_portal_access(
        self, info: Info, contact_id: strawberry.ID, enabled: bool
    ) -> Contact:
        contact = await portal_access.set_portal_access(
            info.context,
            contact_id=uuid_of(contact_id, "Contact", field="contactId"),
            enabled=enabled,
        )
        return Contact.from_row(contact)

    @strawberry.mutation(
        description="Narrow the portal modules a contact may use, within its customer's; null"
        " or left out narrows nothing. Takes effect on their next request.",
        extensions=guarded(RequiresRole(StaffRole.MANAGER)),
    )
    async def set_contact_portal_modules(
        self,
        info: Info,
        contact_id: strawberry.ID,
        modules: list[PortalModuleEnum] | None = None,  # type: ignore[valid-type]
    ) -> Contact:
        contact = await portal_access.set_contact_modules(
            info.context,
            contact_id=uuid_of(contact_id, "Contact", field="contactId"),
            modules=modules,
        )
        return Contact.from_row(contact)

    @strawberry.mutation(
        description="Send a contact a new invitation; the earlier link stops working.",
        extensions=guarded(RequiresRole(StaffRole.ASSISTANT_MANAGER)),
    )
    async def resend_invitation(self, info: Info, contact_id: strawberry.ID) -> Contact:
        contact = await portal_access.resend_invitation(
            info.context, contact_id=uuid_of(contact_id, "Contact", field="contactId")
        )
        return Contact.from_row(contact)


@strawberry.type
class PortalSignInMutation:
    @strawberry.mutation(
        description="Sign in with your email or username and password.",
        extensions=[MaxLength(login=EMAIL_MAX_LENGTH), *guarded(Public())],
    )
    async def sign_in(
        self,
        info: Info,
        login: str,
        password: str,
        client: ClientKind = SessionClient.BROWSER,  # type: ignore[valid-type]
    ) -> PortalSignInPayload:
        result = await sign_in.portal_sign_in(
            info.context, login=login, password=password, client=client
        )
        return _portal_payload(info, result)

    @strawberry.mutation(description="End this session.", extensions=guarded(RequiresPortalUser()))
    async def sign_out(self, info: Info) -> bool:
        _sign_out(info, Audience.PORTAL)
        return await sign_in.sign_out(info.context)

    @strawberry.mutation(
        description="Trade a refresh token for new tokens.", extensions=guarded(Public())
    )
    async def refresh_session(self, info: Info, refresh_token: str) -> SessionTokens:
        credentials = await sign_in.refresh(
            info.context, refresh_token=refresh_token, audience=SessionAudience.PORTAL
        )
        tokens = hand_over(info, Audience.PORTAL, credentials)
        assert tokens is not None
        return tokens

    @strawberry.mutation(
        description="Change your password; every other session of yours ends.",
        extensions=guarded(RequiresPortalUser()),
    )
    async def change_password(
        self, info: Info, current_password: str, new_password: str
    ) -> SessionTokens | None:
        credentials = await sign_in.change_password(
            info.context, current_password=current_password, new_password=new_password
        )
        return hand_over(info, Audience.PORTAL, credentials)

    @strawberry.mutation(
        description="End every session of yours, on every device, this one included.",
        extensions=guarded(RequiresPortalUser()),
    )
    async def sign_out_everywhere(self, info: Info) -> bool:
        _sign_out(info, Audience.PORTAL)
        return await sign_in.sign_out_everywhere(info.context)

    @strawberry.mutation(
        description="Change your name or username; a field left out stays.",
        extensions=[MaxLength(name=200, username=64), *guarded(RequiresPortalUser())],
    )
    async def update_profile(
        self, info: Info, name: str | None = None, username: str | None = None
    ) -> PortalAccount:
        account = await sign_in.update_profile(info.context, name=name, username=username)
        return PortalAccount.from_row(account)

    @strawberry.mutation(
        description="Email a confirmation link to a new address; your address changes only once"
        " it is opened (`confirmEmailChange`), and the old address is told.",
        extensions=[MaxLength(new_email=EMAIL_MAX_LENGTH), *guarded(RequiresPortalUser())],
    )
    async def request_email_change(self, info: Info, new_email: str, current_password: str) -> bool:
        return await sign_in.request_email_change(
            info.context, new_email=new_email, current_password=current_password
        )

    @strawberry.mutation(
        description="Confirm a new email address with the emailed link's token, once.",
        extensions=guarded(Public()),
    )
    async def confirm_email_change(self, info: Info, token: str) -> bool:
        return await sign_in.confirm_email_change(info.context, token=token)

    @strawberry.mutation(
        description="Email a password reset link. The answer is the same whether or not the "
        "address has an account.",
        extensions=[MaxLength(email=EMAIL_MAX_LENGTH), *guarded(Public())],
    )
    async def request_password_reset(self, info: Info, email: str) -> bool:
        await sign_in.request_password_reset(info.context, email=email)
        return True

    @strawberry.mutation(
        description="Set a new password with the emailed link's token; every session ends.",
        extensions=guarded(Public()),
    )
    async def reset_password(self, info: Info, token: str, new_password: str) -> bool:
        await sign_in.reset_password(info.context, token=token, new_password=new_password)
        return True

    @strawberry.mutation(
        description="Email a one-time sign-in link. The answer is the same whether or not the "
        "address has an account.",
        extensions=[MaxLength(email=EMAIL_MAX_LENGTH), *guarded(Public())],
    )
    async def request_magic_link(self, info: Info, email: str) -> bool:
        await sign_in.request_magic_link(info.context, email=email)
        return True

    @strawberry.mutation(
        description="Sign in with the emailed link's token, once.", extensions=guarded(Public())
    )
    async def redeem_magic_link(
        self,
        info: Info,
        token: str,
        client: ClientKind = SessionClient.BROWSER,  # type: ignore[valid-type]
    ) -> PortalSignInPayload:
        result = await sign_in.redeem_magic_link(info.context, token=token, client=client)
        return _portal_payload(info, result)

    @strawberry.mutation(
        description="Accept an invitation: choose a name, username and password, and sign in.",
        extensions=guarded(Public()),
    )
    async def accept_invitation(
        self, info: Info, input: AcceptInvitationInput
    ) -> PortalSignInPayload:
        result = await sign_in.accept_invitation(
            info.context,
            tenant_slug=input.tenant,
            token=input.token,
            name=input.name,
            username=input.username,
            password=input.password,
            client=input.client,
        )
        return _portal_payload(info, result)
