"""H5: email through a durable outbox, delivered to a real SMTP server on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path

import jinja2
import pytest
import sqlalchemy as sa
from pydantic import ValidationError
from sqlmodel import col

from app.cli import main as portal_command
from app.db.base import utcnow
from app.db.models import OutboxEmail, OutboxStatus, Tenant
from app.db.scope import SYSTEM, Scope
from app.db.session import Database, create_engine
from app.errors import AppError, ErrorCode
from app.mail import OutboxWorker, enqueue_email, render
from app.mail.compose import brand_for
from app.main import create_app
from app.settings import Environment, Settings, get_settings
from tests.conftest import make_settings
from tests.smtp import SmtpServer
from tests.support import make_tenant

ACCEPT_URL = "https://portal.example/invitations/accept?token=abc123"


def invitation(name: str = "Jo Customer") -> dict[str, object]:
    return {
        "contact_name": name,
        "accept_url": ACCEPT_URL,
        "expires_at": datetime(2026, 12, 1, 9, 30, tzinfo=UTC),
    }


class Clock:
    """The worker's clock: real time plus however far a test has moved it on."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return utcnow() + self.offset

    def advance(self, **delta: float) -> None:
        self.offset += timedelta(**delta)


async def outbox_rows(db: Database) -> list[OutboxEmail]:
    async with db.session(SYSTEM) as session:
        rows = await session.scalars(
            sa.select(OutboxEmail).order_by(
                col(OutboxEmail.created_at), col(OutboxEmail.to_address)
            )
        )
        return list(rows)


async def invite(db: Database, settings: Settings, tenant: Tenant, *addresses: str) -> None:
    async with db.transaction(Scope.tenant(tenant.id)) as session:
        for address in addresses:
            await enqueue_email(
                session,
                template="invitation",
                to=address,
                context=invitation(),
                tenant=tenant,
                settings=settings,
            )


async def test_h5_rolled_back_email_is_never_sent_and_a_committed_one_is_sent_once(
    db: Database, database_url: str, smtp: SmtpServer
) -> None:
    tenant, _ = await make_tenant(db, slug="acme")
    tenant.name = "Acme Sanitation"
    tenant.accent_colour = "#c0ffee"
    settings = make_settings(database_url, smtp_url=smtp.url)
    worker = OutboxWorker(db, settings)

    with pytest.raises(RuntimeError, match="the change fails"):
        async with db.transaction(Scope.tenant(tenant.id)) as session:
            await enqueue_email(
                session,
                template="invitation",
                to="rolled-back@customer.example",
                context=invitation(),
                tenant=tenant,
                settings=settings,
            )
            raise RuntimeError("the change fails")
    assert await outbox_rows(db) == []
    assert await worker.deliver_due() == 0

    await invite(db, settings, tenant, "jo@customer.example")
    assert await worker.deliver_due() == 1
    assert await worker.deliver_due() == 0

    assert smtp.inbox.recipients == ["jo@customer.example"]
    [message] = smtp.inbox.messages
    assert message["To"] == "jo@customer.example"
    assert message["Subject"] == "Acme Sanitation invites you to its customer portal"
    assert message.get_content_type() == "multipart/alternative"
    text, html = (part.get_content() for part in message.iter_parts())
    assert "Hello Jo Customer," in text and ACCEPT_URL in text
    assert "1 December 2026 at 09:30 UTC" in text
    assert "Acme Sanitation" in html and "#c0ffee" in html
    assert f'<a href="{ACCEPT_URL}"' in html
    [row] = await outbox_rows(db)
    assert (row.status, row.attempts, row.kind) == (OutboxStatus.SENT, 0, "invitation")
    assert row.sent_at is not None and row.tenant_id == tenant.id
    assert message["Message-ID"] == f"<{row.id}@localhost>"


async def test_h5_smtp_down_is_retried_with_back_off_and_each_email_is_delivered_once(
    db: Database, database_url: str, smtp: SmtpServer
) -> None:
    tenant, _ = await make_tenant(db, slug="acme")
    settings = make_settings(database_url, smtp_url=smtp.url)
    clock = Clock()
    worker = OutboxWorker(db, settings, now=clock)
    addresses = [f"customer{n}@customer.example" for n in range(5)]
    smtp.stop()
    await invite(db, settings, tenant, *addresses)

    assert await worker.deliver_due() == 0
    first = await outbox_rows(db)
    assert {(row.status, row.attempts) for row in first} == {(OutboxStatus.PENDING, 1)}
    assert all(row.next_attempt_at > clock() and row.last_error for row in first)
    assert await worker.deliver_due() == 0  # not due yet: nothing is tried
    assert {row.attempts for row in await outbox_rows(db)} == {1}

    clock.advance(hours=2)
    assert await worker.deliver_due() == 0
    second = await outbox_rows(db)
    assert {(row.status, row.attempts) for row in second} == {(OutboxStatus.PENDING, 2)}
    assert all(
        after.next_attempt_at > before.next_attempt_at
        for before, after in zip(first, second, strict=True)
    )

    smtp.start()
    assert await worker.deliver_due() == 0  # still backing off
    clock.advance(hours=2)
    assert await worker.deliver_due() == 5
    clock.advance(hours=2)
    assert await worker.deliver_due() == 0

    assert sorted(smtp.inbox.recipients) == addresses
    assert len(set(smtp.inbox.message_ids)) == 5
    rows = await outbox_rows(db)
    assert {(row.status, row.attempts) for row in rows} == {(OutboxStatus.SENT, 2)}


async def test_h5_smtp_5xx_is_retried_later_and_delivered_once(
    db: Database, database_url: str, smtp: SmtpServer
) -> None:
    tenant, _ = await make_tenant(db, slug="acme")
    settings = make_settings(database_url, smtp_url=smtp.url)
    clock = Clock()
    worker = OutboxWorker(db, settings, now=clock)
    smtp.inbox.refusals = 1
    await invite(db, settings, tenant, "jo@customer.example")

    assert await worker.deliver_due() == 0
    [row] = await outbox_rows(db)
    assert (row.status, row.attempts) == (OutboxStatus.PENDING, 1)
    assert row.last_error is not None and row.last_error.startswith("SMTP 550")
    assert await worker.deliver_due() == 0

    clock.advance(minutes=1)
    assert await worker.deliver_due() == 1
    clock.advance(hours=2)
    assert await worker.deliver_due() == 0
    assert smtp.inbox.recipients == ["jo@customer.example"]
    [row] = await outbox_rows(db)
    assert (row.status, row.attempts) == (OutboxStatus.SENT, 1)


async def test_h5_an_email_refused_max_attempts_times_is_failed_and_never_retried(
    db: Database, database_url: str, smtp: SmtpServer, caplog: pytest.LogCaptureFixture
) -> None:
    tenant, _ = await make_tenant(db, slug="acme")
    settings = make_settings(database_url, smtp_url=smtp.url, mail_max_attempts=3)
    clock = Clock()
    worker = OutboxWorker(db, settings, now=clock)
    smtp.inbox.refusals = 1_000
    await invite(db, settings, tenant, "nobody@customer.example")

    for _ in range(5):
        assert await worker.deliver_due() == 0
        clock.advance(hours=2)

    [row] = await outbox_rows(db)
    assert (row.status, row.attempts) == (OutboxStatus.FAILED, 3)
    assert smtp.inbox.refused == 3 and smtp.inbox.messages == []
    assert any(
        record.levelno == logging.ERROR and str(row.id) in record.getMessage()
        for record in caplog.records
    )


async def fail_for_good(
    worker: OutboxWorker, clock: Clock, smtp: SmtpServer, attempts: int
) -> None:
    """Runs the worker until every queued email has been refused `attempts` times."""
    smtp.inbox.refusals = smtp.inbox.refused + 1_000
    for _ in range(attempts):
        assert await worker.deliver_due() == 0
        clock.advance(hours=2)
    smtp.inbox.refusals = smtp.inbox.refused


def mail_retry(
    monkeypatch: pytest.MonkeyPatch, settings: Settings, *arguments: str
) -> Callable[[], str]:
    """`portal mail-retry ...` as an operator runs it, against the test's database; answers
    a function that runs it and gives what it printed."""
    monkeypatch.setenv("PORTAL_ENV", "test")
    monkeypatch.setenv("DATABASE_URL", settings.database_url)
    monkeypatch.setenv("PORTAL_VAR_DIR", str(settings.var_dir))

    def run() -> str:
        get_settings.cache_clear()
        output = io.StringIO()
        try:
            with contextlib.redirect_stdout(output):
                portal_command(["mail-retry", *arguments])
        finally:
            get_settings.cache_clear()
        return output.getvalue().strip()

    return run


async def test_h5_mail_retry_delivers_an_email_that_failed_for_good_exactly_once(
    db: Database, database_url: str, smtp: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    tenant, _ = await make_tenant(db, slug="acme")
    settings = make_settings(database_url, smtp_url=smtp.url, mail_max_attempts=3)
    clock = Clock()
    worker = OutboxWorker(db, settings, now=clock)
    await invite(db, settings, tenant, "jo@customer.example")
    await fail_for_good(worker, clock, smtp, attempts=3)
    [failed] = await outbox_rows(db)
    assert (failed.status, failed.attempts) == (OutboxStatus.FAILED, 3)
    assert await worker.deliver_due() == 0, "the server is back, but a failed email stays"

    retry = mail_retry(monkeypatch, settings)
    assert await asyncio.to_thread(retry) == "Returned 1 failed email to the queue."
    assert await asyncio.to_thread(retry) == "Returned 0 failed emails to the queue."
    [queued] = await outbox_rows(db)
    assert (queued.status, queued.attempts) == (OutboxStatus.PENDING, 0)
    assert queued.last_error == failed.last_error, "the last failure stays on record"

    assert await worker.deliver_due() == 1
    for _ in range(3):
        clock.advance(hours=2)
        assert await worker.deliver_due() == 0
    assert smtp.inbox.recipients == ["jo@customer.example"]
    assert smtp.inbox.message_ids == [f"<{failed.id}@localhost>"]
    [sent] = await outbox_rows(db)
    assert sent.status is OutboxStatus.SENT and sent.sent_at is not None
    assert await asyncio.to_thread(retry) == "Returned 0 failed emails to the queue."


async def test_h5_mail_retry_returns_only_the_failed_emails_asked_for(
    db: Database, database_url: str, smtp: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    tenant, _ = await make_tenant(db, slug="acme")
    settings = make_settings(database_url, smtp_url=smtp.url, mail_max_attempts=1)
    clock = Clock()
    worker = OutboxWorker(db, settings, now=clock)
    await invite(db, settings, tenant, "early@customer.example")
    await fail_for_good(worker, clock, smtp, attempts=1)
    between = utcnow()
    await invite(db, settings, tenant, "late1@customer.example", "late2@customer.example")
    await fail_for_good(worker, clock, smtp, attempts=1)
    await invite(db, settings, tenant, "waiting@customer.example")
    early, late1, late2, waiting = await outbox_rows(db)
    assert [row.status for row in (early, late1, late2)] == [OutboxStatus.FAILED] * 3
    assert waiting.status is OutboxStatus.PENDING

    by_id = mail_retry(monkeypatch, settings, "--id", str(late1.id), "--id", str(waiting.id))
    assert await asyncio.to_thread(by_id) == "Returned 1 failed email to the queue."
    assert await worker.deliver_due() == 2
    assert sorted(smtp.inbox.recipients) == [late1.to_address, waiting.to_address]

    since = mail_retry(monkeypatch, settings, "--since", between.isoformat())
    assert await asyncio.to_thread(since) == "Returned 1 failed email to the queue."
    assert await worker.deliver_due() == 1
    assert smtp.inbox.recipients[-1] == late2.to_address
    statuses = {row.to_address: row.status for row in await outbox_rows(db)}
    assert statuses.pop(early.to_address) is OutboxStatus.FAILED
    assert set(statuses.values()) == {OutboxStatus.SENT}


async def test_h5_three_workers_deliver_each_email_exactly_once(
    database_url: str, smtp: SmtpServer
) -> None:
    # PostgreSQL: rows claimed with SKIP LOCKED; SQLite: each batch holds the write lock.
    settings = make_settings(database_url, smtp_url=smtp.url)
    databases = [Database(create_engine(database_url)) for _ in range(3)]
    try:
        async with databases[0].transaction(SYSTEM) as session:
            for n in range(60):
                await enqueue_email(
                    session,
                    template="message_waiting",
                    to=f"customer{n}@customer.example",
                    context={
                        "recipient_name": "Jo",
                        "subject": f"token-{n:02d}",
                        "url": "https://portal.example/messages/1",
                    },
                    settings=settings,
                )
        workers = [OutboxWorker(db, settings, batch_size=5) for db in databases]
        sent = await asyncio.gather(*(worker.deliver_due() for worker in workers))
        assert sum(sent) == 60
        assert await asyncio.gather(*(worker.deliver_due() for worker in workers)) == [0, 0, 0]
    finally:
        for db in databases:
            await db.dispose()

    tokens = sorted(str(message["Subject"]).rsplit(" ", 1)[1] for message in smtp.inbox.messages)
    assert tokens == [f"token-{n:02d}" for n in range(60)]
    assert len(set(smtp.inbox.message_ids)) == 60


async def test_h5_without_smtp_each_email_is_an_eml_file_and_its_links_are_logged(
    db: Database, database_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="app.mail")
    tenant, _ = await make_tenant(db, slug="acme")
    settings = make_settings(database_url, var_dir=tmp_path)
    await invite(db, settings, tenant, "jo@customer.example")

    assert await OutboxWorker(db, settings).deliver_due() == 1

    [path] = (tmp_path / "mail").glob("*.eml")
    message = message_from_bytes(path.read_bytes(), policy=default_policy)
    assert isinstance(message, EmailMessage)
    assert message["To"] == "jo@customer.example"
    assert message["Subject"] == "Acme invites you to its customer portal"
    plain = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert plain is not None and ACCEPT_URL in plain.get_content()
    assert html is not None and "Acme" in html.get_content()
    [line] = [
        record.getMessage()
        for record in caplog.records
        if "jo@customer.example" in record.getMessage()
    ]
    assert ACCEPT_URL in line and "Acme invites you to its customer portal" in line


async def test_h5_a_missing_template_variable_is_refused_and_nothing_is_queued(
    db: Database, database_url: str
) -> None:
    settings = make_settings(database_url)
    context = invitation()
    del context["expires_at"]
    async with db.transaction(SYSTEM) as session:
        with pytest.raises(jinja2.UndefinedError, match="expires_at"):
            await enqueue_email(
                session,
                template="invitation",
                to="jo@customer.example",
                context=context,
                settings=settings,
            )
        assert not session.new


async def test_h5_a_bad_recipient_is_refused(db: Database, database_url: str) -> None:
    settings = make_settings(database_url)
    bad = [
        "jo@customer.example\r\nBcc: everyone@customer.example",
        "jo@customer.example\n",
        "Jo <jo@customer.example>",
        "jo customer@customer.example",
        "jo@localhost",
        "",
    ]
    async with db.transaction(SYSTEM) as session:
        for address in bad:
            with pytest.raises(AppError) as refused:
                await enqueue_email(
                    session,
                    template="invitation",
                    to=address,
                    context=invitation(),
                    settings=settings,
                )
            assert (refused.value.code, refused.value.field) == (ErrorCode.INVALID_INPUT, "email")
        assert not session.new


def test_h5_a_line_break_in_the_data_never_reaches_the_subject_header() -> None:
    rendered = render(
        "message_waiting",
        {
            "recipient_name": "Jo",
            "subject": "Hello\r\nBcc: everyone@customer.example",
            "url": "https://portal.example/messages/1",
        },
        brand_for(None, Settings()),
    )
    assert rendered.subject == (
        "New message from Customer Portal: Hello Bcc: everyone@customer.example"
    )


TEMPLATE_CONTEXTS: dict[str, dict[str, object]] = {
    "invitation": invitation(),
    "password_reset": {
        "account_name": "Jo",
        "reset_url": "https://portal.example/reset?token=r",
        "expires_minutes": 30,
    },
    "magic_link": {
        "account_name": "Jo",
        "sign_in_url": "https://portal.example/magic?token=m",
        "expires_minutes": 15,
    },
    "request_declined": {
        "contact_name": "Jo",
        "request_number": "REQ-0042",
        "reason": "We do not cover <that> area",
    },
    "payment_receipt": {
        "contact_name": "Jo",
        "invoice_number": "INV-0007",
        "amount": "£12.50",
        "balance": "£0.00",
    },
    "message_waiting": {
        "recipient_name": "Jo",
        "subject": "Your next visit",
        "url": "https://portal.example/messages/1",
    },
}


@pytest.mark.parametrize("template", sorted(TEMPLATE_CONTEXTS))
def test_h5_every_template_renders_with_the_tenant_brand_or_the_neutral_one(template: str) -> None:
    settings = Settings(public_url="https://portal.example/")
    tenant = Tenant(
        slug="acme", name="Acme & Sons", accent_colour="#123abc", logo_file_id=uuid.uuid4()
    )
    context = TEMPLATE_CONTEXTS[template]
    branded = render(template, context, brand_for(tenant, settings))
    assert "Acme & Sons" in branded.subject and "Acme & Sons" in branded.text
    assert "Acme &amp; Sons" in branded.html and "#123abc" in branded.html
    assert f'src="https://portal.example/files/logo/{tenant.id}"' in branded.html
    assert "<p>" not in branded.text and "<p>" in branded.html

    neutral = render(template, context, brand_for(None, settings))
    assert "Customer Portal" in neutral.html and "Acme" not in neutral.html
    assert "<img" not in neutral.html


def test_h5_production_refuses_to_start_without_an_smtp_server() -> None:
    secret = "k" * 40
    with pytest.raises(ValidationError, match="PORTAL_SMTP_URL"):
        Settings(env=Environment.PRODUCTION, secret_key=secret)
    with pytest.raises(ValidationError, match="PORTAL_SMTP_URL"):
        Settings(smtp_url="http://mail.example")
    production = Settings(
        env=Environment.PRODUCTION, secret_key=secret, smtp_url="smtp://u:p@mail.example:587"
    )
    assert production.smtp_url is not None and "p@" not in repr(production)


async def test_h5_the_server_runs_the_worker_in_process_and_stops_it_on_shutdown(
    db: Database, database_url: str, smtp: SmtpServer
) -> None:
    tenant, _ = await make_tenant(db, slug="acme")
    settings = make_settings(database_url, smtp_url=smtp.url, mail_poll_seconds=0.05)
    app = create_app(settings, db=db)
    async with app.router.lifespan_context(app):
        await invite(db, settings, tenant, "jo@customer.example")
        assert await asyncio.to_thread(smtp.inbox.arrived.wait, 5)
        stopping = time.monotonic()
    assert time.monotonic() - stopping < 1
    assert smtp.inbox.recipients == ["jo@customer.example"]
    assert [row.status for row in await outbox_rows(db)] == [OutboxStatus.SENT]
