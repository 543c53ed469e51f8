"""Signing in and out, for staff and for portal accounts, and the emailed-link flows:
invitations, password resets and magic links."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.auth import ratelimit
from app.auth.links import record_request
from app.auth.onetime import LIFETIMES, consume_token, issue_token
from app.auth.passwords import check_policy, hash_password, needs_rehash, verify_password
from app.auth.resolve import portal_blocker
from app.auth.sessions import (
    Credentials,
    of_account,
    of_staff_user,
    refresh_session,
    revoke,
    start_session,
)
from app.auth.viewer import PortalViewer, StaffViewer
from app.context import Context
from app.db.base import utcnow
from app.db.models import (
    AuthSession,
    Contact,
    OneTimeToken,
    PortalAccount,
    PortalMembership,
    SessionAudience,
    SessionClient,
    StaffUser,
    Tenant,
    TokenPurpose,
)
from app.db.scope import SYSTEM
from app.errors import AppError, ErrorCode, Unauthenticated
from app.mail import enqueue_email
from app.messages.live import ACCESS_CHANGED, announce
from app.validation import checked_email, checked_text

WRONG_CREDENTIALS = "The sign-in details are not right."
BAD_LINK = "This link is not valid any more. Ask for a new one."


@dataclass(frozen=True, slots=True)
class StaffSignIn:
    user: StaffUser
    credentials: Credentials


@dataclass(frozen=True, slots=True)
class PortalSignIn:
    account: PortalAccount
    credentials: Credentials


def normalise_email(email: str) -> str:
    return email.strip().lower()


async def _within_limits(ctx: Context, *checks: tuple[ratelimit.Limit, str]) -> None:
    # Every check is counted, even when an earlier one already refused.
    results = [await ctx.rate_limiter.hit(limit, subject) for limit, subject in checks]
    if not all(results):
        raise ratelimit.rate_limited()


def _address(ctx: Context) -> str:
    return ratelimit.client_address(ctx.request)


async def _attempt(ctx: Context, account: str) -> ratelimit.SignInAttempt:
    return await ratelimit.sign_in_attempt(ctx.rate_limiter, account=account, address=_address(ctx))


async def staff_sign_in(
    ctx: Context, *, tenant_slug: str, email: str, password: str, client: SessionClient
) -> StaffSignIn:
    email, tenant_slug = normalise_email(email), tenant_slug.strip().lower()
    attempt = await _attempt(ctx, f"staff:{tenant_slug}:{email}")
    async with ctx.db.transaction(SYSTEM) as session:
        user = (
            await session.scalars(
                sa.select(StaffUser)
                .join(Tenant, col(Tenant.id) == col(StaffUser.tenant_id))
                .where(col(Tenant.slug) == tenant_slug, col(StaffUser.email) == email)
            )
        ).first()
        # The check runs even for a missing user, so both answers take as long.
        matched = _password_matches(user, password)
        if user is None or not matched:
            raise AppError(WRONG_CREDENTIALS, code=ErrorCode.INVALID_CREDENTIALS)
        credentials = await start_session(
            session,
            ctx.settings,
            audience=SessionAudience.STAFF,
            client=client,
            tenant_id=user.tenant_id,
            staff_user_id=user.id,
        )
    await attempt.succeeded()
    return StaffSignIn(user=user, credentials=credentials)


def _password_matches(user: StaffUser | PortalAccount | None, password: str) -> bool:
    """Checks the password of an active user, upgrading an old hash on success. Without a
    usable user it spends the same time, so a missing account answers like a wrong password."""
    usable = user is not None and user.is_active
    if not verify_password(user.password_hash if user and usable else None, password):
        return False
    assert user is not None and user.password_hash is not None
    if needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    return True


async def _account_by_login(session: AsyncSession, login: str) -> PortalAccount | None:
    login = login.strip().lower()
    return (
        await session.scalars(
            sa.select(PortalAccount).where(
                sa.or_(col(PortalAccount.email) == login, col(PortalAccount.username) == login)
            )
        )
    ).first()


async def _start_portal_session(
    ctx: Context, session: AsyncSession, account: PortalAccount, client: SessionClient
) -> PortalSignIn:
    if blocker := await portal_blocker(session, account.id):
        raise blocker
    credentials = await start_session(
        session, ctx.settings, audience=SessionAudience.PORTAL, client=client, account_id=account.id
    )
    return PortalSignIn(account=account, credentials=credentials)


async def portal_sign_in(
    ctx: Context, *, login: str, password: str, client: SessionClient
) -> PortalSignIn:
    async with ctx.db.session(SYSTEM) as session:
        account = await _account_by_login(session, login)
    # One counter per account, whether it is named by email or by username.
    who = account.email if account is not None else login.strip().lower()
    attempt = await _attempt(ctx, f"portal:{who}")
    async with ctx.db.transaction(SYSTEM) as session:
        account = await _account_by_login(session, login)
        matched = _password_matches(account, password)
        if account is None or not matched:
            raise AppError(WRONG_CREDENTIALS, code=ErrorCode.INVALID_CREDENTIALS)
        blocker = await portal_blocker(session, account.id)
        if blocker is None:
            credentials = await start_session(
                session,
                ctx.settings,
                audience=SessionAudience.PORTAL,
                client=client,
                account_id=account.id,
            )
    # The right password, even from an account its business has shut out of the portal.
    await attempt.succeeded()
    if blocker is not None:
        raise blocker
    return PortalSignIn(account=account, credentials=credentials)


async def sign_out(ctx: Context) -> bool:
    viewer = ctx.viewer
    if not isinstance(viewer, StaffViewer | PortalViewer):
        return False
    async with ctx.db.transaction(SYSTEM) as session:
        await revoke(session, col(AuthSession.id) == viewer.session_id, reason="sign-out")
    await announce(ctx.live, ctx.db, ACCESS_CHANGED)
    return True


def _portal_viewer(ctx: Context) -> PortalViewer:
    viewer = ctx.viewer
    assert isinstance(viewer, PortalViewer), "guarded by RequiresPortalUser"
    return viewer


async def sign_out_everywhere(ctx: Context) -> bool:
    """Ends every session of the portal user, on every device, this one included."""
    viewer = _portal_viewer(ctx)
    async with ctx.db.transaction(SYSTEM) as session:
        await revoke(session, of_account(viewer.account_id), reason="sign-out-everywhere")
    return True


async def update_profile(ctx: Context, *, name: str | None, username: str | None) -> PortalAccount:
    """A portal user's own name and username; left out (None), each stays."""
    viewer = _portal_viewer(ctx)
    async with ctx.db.transaction(SYSTEM) as session:
        account = (
            await session.scalars(
                sa.select(PortalAccount)
                .where(col(PortalAccount.id) == viewer.account_id)
                .with_for_update()
            )
        ).one()
        if name is not None:
            account.name = checked_text(name, field="name", max_length=200)
        if username is not None:
            chosen = checked_text(username.strip().lower(), field="username", max_length=64)
            if "@" in chosen:
                # A login with @ is read as an email address.
                raise AppError("A username cannot hold @.", field="username")
            holder = await session.scalar(
                sa.select(col(PortalAccount.id)).where(col(PortalAccount.username) == chosen)
            )
            if holder is not None and holder != account.id:
                raise AppError(
                    "This username is taken.", code=ErrorCode.USERNAME_TAKEN, field="username"
                )
            account.username = chosen
        try:
            await session.flush()
        except IntegrityError as error:
            # Someone took the username since the check above.
            raise AppError(
                "This username is taken.", code=ErrorCode.USERNAME_TAKEN, field="username"
            ) from error
    return account


async def request_email_change(ctx: Context, *, new_email: str, current_password: str) -> bool:
    """Mails a confirmation link to the new address; the account keeps its address until the
    link is opened. The current password is asked for, so a session left open is not enough
    to take the account over. Whether the new address has an account already is told only
    when the link is opened, and only to whoever holds that mailbox."""
    viewer = _portal_viewer(ctx)
    email = checked_email(new_email, field="newEmail")
    if email is None:
        raise AppError("Give the new email address.", field="newEmail")
    await _within_limits(ctx, (ratelimit.PASSWORD_CHECK_PER_USER, viewer.email))
    async with ctx.db.transaction(SYSTEM) as session:
        account = await session.get(PortalAccount, viewer.account_id)
        if account is None or not verify_password(account.password_hash, current_password):
            raise AppError(
                "The current password is not right.",
                code=ErrorCode.INVALID_CREDENTIALS,
                field="currentPassword",
            )
        if email == account.email:
            raise AppError("This is already your email address.", field="newEmail")
        secret, _ = await issue_token(
            session, purpose=TokenPurpose.EMAIL_CHANGE, email=email, account_id=account.id
        )
        await enqueue_email(
            session,
            template="email_change",
            to=email,
            context={
                "account_name": account.name,
                "confirm_url": f"{ctx.settings.portal_app_url}/confirm-email?token={secret}",
                "expires_hours": int(LIFETIMES[TokenPurpose.EMAIL_CHANGE].total_seconds() // 3600),
            },
            settings=ctx.settings,
        )
    return True


async def confirm_email_change(ctx: Context, *, token: str) -> bool:
    """Moves the account to the address the link was sent to, once, and tells the old
    address it no longer signs in there."""
    await _within_limits(ctx, (ratelimit.TOKEN_PER_ADDRESS, _address(ctx)))
    async with ctx.db.transaction(SYSTEM) as session:
        used = await consume_token(session, token, purpose=TokenPurpose.EMAIL_CHANGE)
        account = (
            await session.get(PortalAccount, used.account_id, with_for_update=True)
            if used is not None and used.account_id is not None
            else None
        )
        if used is None or account is None or not account.is_active:
            raise AppError(BAD_LINK, code=ErrorCode.INVALID_TOKEN, field="token")
        holder = await session.scalar(
            sa.select(col(PortalAccount.id)).where(col(PortalAccount.email) == used.email)
        )
        if holder is not None and holder != account.id:
            raise AppError(
                "Another account already signs in with this address.",
                code=ErrorCode.EMAIL_TAKEN,
                field="token",
            )
        old = account.email
        account.email = used.email
        try:
            await session.flush()
        except IntegrityError as error:
            raise AppError(
                "Another account already signs in with this address.",
                code=ErrorCode.EMAIL_TAKEN,
                field="token",
            ) from error
        await enqueue_email(
            session,
            template="email_changed",
            to=old,
            context={"account_name": account.name, "new_email": account.email},
            settings=ctx.settings,
        )
    return True


async def refresh(ctx: Context, *, refresh_token: str, audience: SessionAudience) -> Credentials:
    await _within_limits(ctx, (ratelimit.TOKEN_PER_ADDRESS, _address(ctx)))
    # The outcome commits even when it is a refusal: a replayed token's revocation must stick.
    async with ctx.db.transaction(SYSTEM) as session:
        credentials = await refresh_session(session, ctx.settings, refresh_token, audience=audience)
    if credentials is None:
        raise Unauthenticated("This refresh token is not valid. Sign in again.")
    return credentials


async def change_password(ctx: Context, *, current_password: str, new_password: str) -> Credentials:
    """Sets a new password and ends every session of the user, this one included; the
    client carries on with the fresh credentials returned."""
    viewer = ctx.viewer
    check_policy(new_password, field="newPassword")
    if isinstance(viewer, StaffViewer | PortalViewer):
        await _within_limits(ctx, (ratelimit.PASSWORD_CHECK_PER_USER, viewer.email))
    async with ctx.db.transaction(SYSTEM) as session:
        current = await session.get(AuthSession, getattr(viewer, "session_id", None))
        user: StaffUser | PortalAccount | None
        if isinstance(viewer, StaffViewer):
            user = await session.get(StaffUser, (viewer.tenant_id, viewer.user_id))
            everywhere = of_staff_user(viewer.tenant_id, viewer.user_id)
        elif isinstance(viewer, PortalViewer):
            user = await session.get(PortalAccount, viewer.account_id)
            everywhere = of_account(viewer.account_id)
        else:
            raise Unauthenticated("Sign in to change your password.")
        if (
            user is None
            or current is None
            or not verify_password(user.password_hash, current_password)
        ):
            raise AppError(
                "The current password is not right.",
                code=ErrorCode.INVALID_CREDENTIALS,
                field="currentPassword",
            )
        user.password_hash = hash_password(new_password)
        user.password_changed_at = utcnow()
        await revoke(session, everywhere, reason="password-changed")
        return await start_session(
            session,
            ctx.settings,
            audience=current.audience,
            client=current.client,
            account_id=current.account_id,
            tenant_id=current.tenant_id,
            staff_user_id=current.staff_user_id,
        )


async def _email_link(ctx: Context, *, email: str, purpose: TokenPurpose) -> None:
    """Records the wish for a reset or magic link; the mail worker sends it when the address
    has an account. Nothing here depends on whether it has one."""
    email = normalise_email(email)
    await _within_limits(
        ctx,
        (ratelimit.EMAIL_LINK_PER_ACCOUNT, f"{purpose.value}:{email}"),
        (ratelimit.EMAIL_LINK_PER_ADDRESS, _address(ctx)),
    )
    async with ctx.db.transaction(SYSTEM) as session:
        record_request(session, purpose=purpose, email=email)


async def request_password_reset(ctx: Context, *, email: str) -> None:
    await _email_link(ctx, email=email, purpose=TokenPurpose.PASSWORD_RESET)


async def request_magic_link(ctx: Context, *, email: str) -> None:
    await _email_link(ctx, email=email, purpose=TokenPurpose.MAGIC_LINK)


async def reset_password(ctx: Context, *, token: str, new_password: str) -> None:
    check_policy(new_password, field="newPassword")
    await _within_limits(ctx, (ratelimit.TOKEN_PER_ADDRESS, _address(ctx)))
    async with ctx.db.transaction(SYSTEM) as session:
        used = await consume_token(session, token, purpose=TokenPurpose.PASSWORD_RESET)
        account = (
            await session.get(PortalAccount, used.account_id) if used and used.account_id else None
        )
        if account is None:
            raise AppError(BAD_LINK, code=ErrorCode.INVALID_TOKEN, field="token")
        account.password_hash = hash_password(new_password)
        account.password_changed_at = utcnow()
        await revoke(session, of_account(account.id), reason="password-reset")


async def redeem_magic_link(ctx: Context, *, token: str, client: SessionClient) -> PortalSignIn:
    await _within_limits(ctx, (ratelimit.TOKEN_PER_ADDRESS, _address(ctx)))
    async with ctx.db.transaction(SYSTEM) as session:
        used = await consume_token(session, token, purpose=TokenPurpose.MAGIC_LINK)
        account = (
            await session.get(PortalAccount, used.account_id) if used and used.account_id else None
        )
        if account is None or not account.is_active:
            raise AppError(BAD_LINK, code=ErrorCode.INVALID_TOKEN, field="token")
        return await _start_portal_session(ctx, session, account, client)


async def accept_invitation(
    ctx: Context,
    *,
    tenant_slug: str,
    token: str,
    name: str,
    username: str,
    password: str,
    client: SessionClient,
) -> PortalSignIn:
    """Turns an invitation into a portal account (or links an existing one, for a person
    already invited by another contractor) and signs it in. Nothing is used up or written
    unless all of it succeeds."""
    check_policy(password)
    name, username = name.strip(), username.strip().lower()
    if not name or not username:
        raise AppError(
            "Give a name and a username.",
            code=ErrorCode.INVALID_INPUT,
            field="name" if not name else "username",
        )
    name = checked_text(name, field="name", max_length=200)
    username = checked_text(username, field="username", max_length=64)
    await _within_limits(ctx, (ratelimit.TOKEN_PER_ADDRESS, _address(ctx)))
    async with ctx.db.transaction(SYSTEM) as session:
        invitation, contact = await _invitation(session, tenant_slug, token)
        account = await _claim_account(session, invitation.email, name, username, password)
        membership = (
            await session.scalars(
                sa.select(PortalMembership).where(
                    col(PortalMembership.tenant_id) == contact.tenant_id,
                    col(PortalMembership.contact_id) == contact.id,
                )
            )
        ).first()
        if membership is None:
            session.add(
                PortalMembership(
                    tenant_id=contact.tenant_id, account_id=account.id, contact_id=contact.id
                )
            )
        else:
            membership.account_id = account.id
        await session.flush()
        return await _start_portal_session(ctx, session, account, client)


async def _invitation(
    session: AsyncSession, tenant_slug: str, token: str
) -> tuple[OneTimeToken, Contact]:
    """Uses up an invitation of this tenant whose contact still has access at the address
    it was sent to; anything else is a link that does not work."""
    tenant_id = await session.scalar(
        sa.select(col(Tenant.id)).where(col(Tenant.slug) == tenant_slug.strip().lower())
    )
    used = (
        await consume_token(session, token, purpose=TokenPurpose.INVITATION, tenant_id=tenant_id)
        if tenant_id is not None
        else None
    )
    contact = (
        await session.get(Contact, (used.tenant_id, used.contact_id))
        if used is not None and used.contact_id is not None
        else None
    )
    if used is None or contact is None or not contact.portal_access or contact.email != used.email:
        raise AppError(BAD_LINK, code=ErrorCode.INVALID_TOKEN, field="token")
    return used, contact


async def _claim_account(
    session: AsyncSession, email: str, name: str, username: str, password: str
) -> PortalAccount:
    """The account of this email with the chosen name, username and password; a person
    already invited by another contractor keeps one account, and its old sessions end."""
    account = (
        await session.scalars(sa.select(PortalAccount).where(col(PortalAccount.email) == email))
    ).first()
    holder = await session.scalar(
        sa.select(col(PortalAccount.id)).where(col(PortalAccount.username) == username)
    )
    if holder is not None and (account is None or holder != account.id):
        raise AppError("This username is taken.", code=ErrorCode.USERNAME_TAKEN, field="username")
    if account is None:
        account = PortalAccount(email=email, name=name)
        session.add(account)
    else:
        await revoke(session, of_account(account.id), reason="password-changed")
    account.name, account.username = name, username
    account.password_hash = hash_password(password)
    account.password_changed_at = utcnow()
    await session.flush()
    return account
