"""Portal settings and each customer's overrides of them, as managers set them (S9, T5)."""

from __future__ import annotations

import strawberry

from app.context import Info
from app.db import models
from app.db.models import StaffRole
from app.files import MAX_LOGO_BYTES, checked_logo, logo_url
from app.resolvers import portal_settings
from app.schema.customers import Customer, given
from app.schema.permissions import PortalModuleEnum, RequiresRole, guarded
from app.schema.relay import uuid_of

# S1: portal settings need MANAGER or higher.
SETTINGS_ROLE = StaffRole.MANAGER

InvoiceVisibility = strawberry.enum(
    models.InvoiceVisibility,
    name="InvoiceVisibility",
    description="OUTSTANDING shows unpaid and overdue invoices; OUTSTANDING_AND_PAID adds paid.",
)


@strawberry.type(description="How this business's customer portal works and looks.")
class PortalSettings:
    portal_in_plan: bool = strawberry.field(description="Whether the plan includes the portal.")
    portal_enabled: bool = strawberry.field(
        description="The tenant-wide switch; off stops every portal sign-in and session here."
    )
    default_modules: list[PortalModuleEnum] = strawberry.field(  # type: ignore[valid-type]
        description="What every portal user gets unless a customer or user is narrowed."
    )
    invoice_visibility: InvoiceVisibility  # type: ignore[valid-type]
    accent_colour: str | None = strawberry.field(description="#RRGGBB, or null for the default.")
    logo_url: str | None = strawberry.field(description="Where the logo is served; null for none.")
    stripe_account_id: str | None = strawberry.field(
        description="The Stripe connected account (`acct_...`) customers' card payments go to;"
        " null: invoices cannot be paid by card in the portal."
    )
    message_notice_minutes: int = strawberry.field(
        description="How long a message to a customer waits unread before its users are emailed."
    )
    message_staff_first_names: bool = strawberry.field(
        description="Whether customers see the first name of the staff member who wrote a"
        " message, or only the business's name."
    )
    time_zone: str = strawberry.field(
        description="The IANA time zone (Europe/London) the portal's dates, appointment"
        " ranges, emails and documents are in."
    )
    currency: str = strawberry.field(description="ISO 4217 (GBP): what the business charges in.")

    @classmethod
    def from_row(cls, row: models.Tenant, info: Info) -> PortalSettings:
        return cls(
            portal_in_plan=row.has_portal_plan,
            portal_enabled=row.portal_enabled,
            default_modules=[models.PortalModule(m) for m in row.default_modules],
            invoice_visibility=row.invoice_visibility,
            accent_colour=row.accent_colour,
            logo_url=logo_url(info.context.settings, row.id) if row.logo_file_id else None,
            stripe_account_id=row.stripe_account_id,
            message_notice_minutes=row.message_notice_minutes,
            message_staff_first_names=row.message_staff_first_names,
            time_zone=row.time_zone,
            currency=row.currency,
        )


@strawberry.input(description="Changes to the portal settings; a field left out stays.")
class PortalSettingsChanges:
    portal_enabled: bool | None = strawberry.UNSET
    default_modules: list[PortalModuleEnum] | None = strawberry.UNSET  # type: ignore[valid-type]
    invoice_visibility: InvoiceVisibility | None = strawberry.UNSET  # type: ignore[valid-type]
    accent_colour: str | None = strawberry.field(
        default=strawberry.UNSET, description="#RRGGBB; null goes back to the default."
    )
    stripe_account_id: str | None = strawberry.field(
        default=strawberry.UNSET,
        description="`acct_` and letters and digits, as Stripe shows it; null stops card payments.",
    )
    message_notice_minutes: int | None = strawberry.field(
        default=strawberry.UNSET, description="0 to 10080 (a week)."
    )
    message_staff_first_names: bool | None = strawberry.UNSET
    time_zone: str | None = strawberry.field(
        default=strawberry.UNSET, description="An IANA time zone name, e.g. Europe/London."
    )
    currency: str | None = strawberry.field(
        default=strawberry.UNSET, description="An ISO 4217 code, e.g. GBP."
    )


@strawberry.input(
    description="A customer's portal overrides; a field left out stays, null inherits the "
    "business's setting (the switch and identifier cannot be null)."
)
class CustomerPortalChanges:
    portal_enabled: bool | None = strawberry.UNSET
    portal_identifier: str | None = strawberry.UNSET
    module_override: list[PortalModuleEnum] | None = strawberry.UNSET  # type: ignore[valid-type]
    accent_colour: str | None = strawberry.UNSET


@strawberry.input(
    description=f"A logo image: PNG, JPEG or WebP, base64-encoded, at most "
    f"{MAX_LOGO_BYTES // 1024} KiB."
)
class LogoInput:
    content_type: str = strawberry.field(description="image/png, image/jpeg or image/webp.")
    base64: str


@strawberry.type
class PortalSettingsQuery:
    @strawberry.field(
        description="This business's portal settings.",
        extensions=guarded(RequiresRole(SETTINGS_ROLE)),
    )
    async def portal_settings(self, info: Info) -> PortalSettings:
        return PortalSettings.from_row(await portal_settings.portal_settings(info.context), info)


@strawberry.type
class PortalSettingsMutation:
    @strawberry.mutation(
        description="Change the portal switch, default modules, invoice visibility, accent "
        "colour, Stripe account, time zone or currency, or how messages to customers are"
        " signed and told.",
        extensions=guarded(RequiresRole(SETTINGS_ROLE)),
    )
    async def update_portal_settings(
        self, info: Info, input: PortalSettingsChanges
    ) -> PortalSettings:
        row = await portal_settings.update_settings(info.context, values=given(input))
        return PortalSettings.from_row(row, info)

    @strawberry.mutation(
        description="Upload the business's logo; null removes it.",
        extensions=guarded(RequiresRole(SETTINGS_ROLE)),
    )
    async def set_portal_logo(self, info: Info, logo: LogoInput | None = None) -> PortalSettings:
        checked = checked_logo(logo.content_type, logo.base64) if logo else None
        row = await portal_settings.set_logo(info.context, logo=checked)
        return PortalSettings.from_row(row, info)

    @strawberry.mutation(
        description="Change a customer's portal switch, identifier, modules or accent colour.",
        extensions=guarded(RequiresRole(SETTINGS_ROLE)),
    )
    async def update_customer_portal(
        self, info: Info, customer_id: strawberry.ID, input: CustomerPortalChanges
    ) -> Customer:
        row = await portal_settings.update_customer_portal(
            info.context,
            customer_id=uuid_of(customer_id, "Customer", field="customerId"),
            values=given(input),
        )
        return Customer.from_row(row)

    @strawberry.mutation(
        description="Give a customer its own logo; null goes back to the business's.",
        extensions=guarded(RequiresRole(SETTINGS_ROLE)),
    )
    async def set_customer_logo(
        self, info: Info, customer_id: strawberry.ID, logo: LogoInput | None = None
    ) -> Customer:
        checked = checked_logo(logo.content_type, logo.base64) if logo else None
        row = await portal_settings.set_customer_logo(
            info.context,
            customer_id=uuid_of(customer_id, "Customer", field="customerId"),
            logo=checked,
        )
        return Customer.from_row(row)
