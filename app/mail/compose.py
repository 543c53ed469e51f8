"""Writing an email: the recipient checked, the templates rendered with the tenant's
branding, and the row added to the caller's transaction."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import jinja2
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import OutboxEmail, Tenant
from app.errors import AppError, ErrorCode
from app.files import logo_url
from app.settings import Settings
from app.validation import one_line

PRODUCT_NAME = "Customer Portal"
DEFAULT_ACCENT = "#2f5d8a"
SUBJECT_MAX = 255
# ASCII atoms only: no whitespace, control character or quoting can reach a header.
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_ADDRESS = re.compile(rf"[A-Za-z0-9!#$%&'*+/=?^_`{{|}}~.-]{{1,64}}@(?:{_LABEL}\.)+{_LABEL}")
_COLOUR = re.compile(r"#[0-9A-Fa-f]{6}|#[0-9A-Fa-f]{3}")


@dataclass(frozen=True, slots=True)
class Brand:
    name: str
    accent_colour: str
    logo_url: str | None
    # The IANA zone the email's times are written in: the business's (T7).
    time_zone: str = "UTC"


def brand_for(tenant: Tenant | None, settings: Settings) -> Brand:
    if tenant is None:
        return Brand(name=PRODUCT_NAME, accent_colour=DEFAULT_ACCENT, logo_url=None)
    colour = tenant.accent_colour or ""
    # The colour goes into a style attribute, where HTML escaping does not stop CSS.
    return Brand(
        name=tenant.name,
        accent_colour=colour if _COLOUR.fullmatch(colour) else DEFAULT_ACCENT,
        logo_url=logo_url(settings, tenant.id) if tenant.logo_file_id else None,
        time_zone=tenant.time_zone,
    )


@jinja2.pass_context
def _local(context: jinja2.runtime.Context, value: datetime) -> str:
    """A moment as the business's customers read it: in its time zone, named."""
    if value.tzinfo is None:
        raise ValueError("email templates take aware datetimes")
    value = value.astimezone(ZoneInfo(context["brand"].time_zone))
    return f"{value.day} {value:%B %Y at %H:%M} {value:%Z}"


_templates = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=jinja2.select_autoescape(enabled_extensions=("html",), default=False),
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
_templates.filters["local"] = _local


@dataclass(frozen=True, slots=True)
class RenderedEmail:
    subject: str
    text: str
    html: str


def render(template: str, context: Mapping[str, object], brand: Brand) -> RenderedEmail:
    """Renders `template`'s subject, text and HTML; a missing variable raises
    `jinja2.UndefinedError`."""
    values = {**context, "brand": brand}
    # A header is one line: no data in it (a name, a subject) may start another header.
    subject = one_line(_templates.get_template(f"{template}.subject.txt").render(values))
    if len(subject) > SUBJECT_MAX:
        subject = subject[: SUBJECT_MAX - 1] + "…"
    return RenderedEmail(
        subject=subject,
        text=_templates.get_template(f"{template}.txt").render(values) + "\n",
        html=_templates.get_template(f"{template}.html").render(values) + "\n",
    )


def check_address(address: str) -> str:
    if len(address) > 254 or not _ADDRESS.fullmatch(address):
        raise AppError(
            "That is not a valid email address.", code=ErrorCode.INVALID_INPUT, field="email"
        )
    return address


async def enqueue_email(
    session: AsyncSession,
    *,
    template: str,
    to: str,
    context: Mapping[str, object],
    tenant: Tenant | None = None,
    settings: Settings,
) -> OutboxEmail:
    """Adds an email to the caller's transaction: it is sent only if that transaction
    commits. `template` names a template under app/mail/templates and is stored as the
    row's kind; `context` holds exactly that template's variables."""
    to_address = check_address(to)
    rendered = render(template, context, brand_for(tenant, settings))
    email = OutboxEmail(
        tenant_id=tenant.id if tenant else None,
        kind=template,
        to_address=to_address,
        subject=rendered.subject,
        text_body=rendered.text,
        html_body=rendered.html,
    )
    session.add(email)
    return email
