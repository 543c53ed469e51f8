"""The office's live activity (E15): the feed behind the dashboard's badges."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from datetime import datetime

import strawberry
from strawberry import relay

from app.context import Info
from app.db.models import ActivityEmails, StaffRole
from app.resolvers import notifications
from app.schema.permissions import RequiresRole, guarded
from app.websocket import closed_when_refused

ActivityKind = strawberry.enum(
    notifications.ActivityKind,
    name="ActivityKind",
    description="A new portal request, a customer's message, a customer's quote decision, or"
    " a card payment received.",
)


@strawberry.type(description="Something a customer did, and the badges as they stand after it.")
class OfficeActivity:
    kind: ActivityKind  # type: ignore[valid-type]
    subject_id: strawberry.ID = strawberry.field(
        description="The request, message, quote or payment it is about."
    )
    at: datetime
    new_requests: int | None = strawberry.field(
        description="Requests nobody has opened; null below the inbox's role."
    )
    unread_messages: int = strawberry.field(
        description="Customers' messages the office has not read, of threads you may read."
    )

    @classmethod
    def of(cls, activity: notifications.Activity) -> OfficeActivity:
        return cls(
            kind=activity.kind,
            subject_id=strawberry.ID(
                relay.to_base64(activity.subject_type, str(activity.subject_id))
            ),
            at=activity.at,
            new_requests=activity.new_requests,
            unread_messages=activity.unread_messages,
        )


ActivityEmailsEnum = strawberry.enum(
    ActivityEmails,
    name="ActivityEmails",
    description="Emails of what customers do: INSTANT (within moments), DAILY (a digest a day)"
    " or NONE.",
)


@strawberry.type
class NotificationsQuery:
    @strawberry.field(
        description="How you are emailed what customers do.",
        extensions=guarded(RequiresRole(StaffRole.TECHNICIAN)),
    )
    async def activity_emails(self, info: Info) -> ActivityEmailsEnum:  # type: ignore[valid-type]
        return await notifications.activity_emails(info.context)


@strawberry.type
class NotificationsMutation:
    @strawberry.mutation(
        description="Choose how you are emailed what customers do; from now on, not before.",
        extensions=guarded(RequiresRole(StaffRole.TECHNICIAN)),
    )
    async def set_activity_emails(
        self,
        info: Info,
        preference: ActivityEmailsEnum,  # type: ignore[valid-type]
    ) -> ActivityEmailsEnum:  # type: ignore[valid-type]
        return await notifications.set_activity_emails(info.context, preference)


@strawberry.type
class NotificationsSubscription:
    @strawberry.subscription(
        description="What customers do, as it happens: new requests and quote decisions (from"
        " the inbox's role), payments received (from MANAGER), and messages on threads you"
        " may read.",
        extensions=guarded(RequiresRole(StaffRole.TECHNICIAN)),
    )
    async def office_activity(self, info: Info) -> AsyncGenerator[OfficeActivity, None]:
        async for activity in closed_when_refused(
            info.context, notifications.office_activity(info.context)
        ):
            yield OfficeActivity.of(activity)
