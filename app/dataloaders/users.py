from __future__ import annotations

import enum
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.dataloaders.base import ByIdLoader, ByParentLoader, SessionLoader, one_per_key
from app.db.models import (
    AuthSession,
    Contact,
    OneTimeToken,
    PortalAccount,
    PortalMembership,
    TokenPurpose,
)


class PortalMembershipByIdLoader(ByIdLoader[PortalMembership]):
    model = PortalMembership


class PortalMembershipsByContactIdLoader(ByParentLoader[PortalMembership]):
    """A contact's portal user, as a list of none or one (a contact has at most one)."""

    model = PortalMembership
    parent = "contact_id"
    order_by = "created_at"


class PortalAccountByIdLoader(SessionLoader[uuid.UUID, PortalAccount | None]):
    """Portal accounts by id; one the viewer cannot reach through a membership loads as None."""

    model = PortalAccount

    async def fetch(
        self, session: AsyncSession, keys: list[uuid.UUID]
    ) -> Sequence[PortalAccount | None]:
        rows = await session.scalars(
            sa.select(PortalAccount).where(col(PortalAccount.id).in_(keys))
        )
        return one_per_key(rows, keys, lambda row: row.id)


class PortalStage(enum.StrEnum):
    NOT_INVITED = "NOT_INVITED"
    INVITED = "INVITED"
    ACTIVE = "ACTIVE"
    SWITCHED_OFF = "SWITCHED_OFF"


@dataclass(frozen=True, slots=True)
class PortalState:
    """Where a contact stands with the portal, as staff see it (S11)."""

    stage: PortalStage
    invited_at: datetime | None = None
    invitation_expires_at: datetime | None = None
    last_sign_in_at: datetime | None = None


class PortalStateByContactIdLoader(SessionLoader[uuid.UUID, PortalState]):
    """Each contact's portal state in one statement per batch: its switch, whether its
    portal user has an account, its latest invitation and the account's latest sign-in."""

    async def fetch(self, session: AsyncSession, keys: list[uuid.UUID]) -> Sequence[PortalState]:
        # Invitations and sessions are not tenant rows: each is tied here to the contact's
        # tenant or to the account of its (scoped) membership.
        invitation = (
            sa.select(col(OneTimeToken.created_at), col(OneTimeToken.expires_at))
            .where(
                col(OneTimeToken.purpose) == TokenPurpose.INVITATION,
                col(OneTimeToken.tenant_id) == col(Contact.tenant_id),
                col(OneTimeToken.contact_id) == col(Contact.id),
            )
            .order_by(col(OneTimeToken.created_at).desc())
            .limit(1)
        )
        signed_in = (
            sa.select(sa.func.max(col(AuthSession.created_at)))
            .where(col(AuthSession.account_id) == col(PortalMembership.account_id))
            .scalar_subquery()
        )
        rows = await session.execute(
            sa.select(
                col(Contact.id),
                col(Contact.portal_access),
                col(PortalMembership.id),
                col(PortalMembership.account_id),
                invitation.with_only_columns(col(OneTimeToken.created_at)).scalar_subquery(),
                invitation.with_only_columns(col(OneTimeToken.expires_at)).scalar_subquery(),
                signed_in,
            )
            .outerjoin(
                PortalMembership,
                sa.and_(
                    col(PortalMembership.tenant_id) == col(Contact.tenant_id),
                    col(PortalMembership.contact_id) == col(Contact.id),
                ),
            )
            .where(col(Contact.id).in_(keys))
        )
        states = {row[0]: _state(*row[1:]) for row in rows}
        return [states.get(key, PortalState(PortalStage.NOT_INVITED)) for key in keys]


def _state(
    switched_on: bool,
    membership_id: uuid.UUID | None,
    account_id: uuid.UUID | None,
    invited_at: datetime | None,
    expires_at: datetime | None,
    last_sign_in_at: datetime | None,
) -> PortalState:
    if not switched_on:
        # A contact who once had a portal user was switched off; one who never had, never
        # invited.
        stage = PortalStage.SWITCHED_OFF if membership_id is not None else PortalStage.NOT_INVITED
    else:
        stage = PortalStage.ACTIVE if account_id is not None else PortalStage.INVITED
    return PortalState(
        stage=stage,
        invited_at=_aware(invited_at),
        invitation_expires_at=_aware(expires_at),
        last_sign_in_at=_aware(last_sign_in_at) if account_id is not None else None,
    )


def _aware(value: datetime | None) -> datetime | None:
    """A timestamp read through a subquery, where SQLite hands back no zone: UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)
