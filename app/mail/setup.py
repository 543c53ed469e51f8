"""The delivery worker as the server and `portal mail-worker` run it."""

from __future__ import annotations

from functools import partial

from app.auth.links import send_requested_links
from app.db.session import Database
from app.mail.worker import OutboxWorker
from app.messages.activity_emails import send_activity_emails
from app.messages.notices import send_message_notices
from app.settings import Settings


def mail_worker(db: Database, settings: Settings) -> OutboxWorker:
    # Requested reset and sign-in links, notices of unread messages and what customers did
    # become emails first, so one pass sends them.
    return OutboxWorker(
        db,
        settings,
        prepare=[
            partial(send_requested_links, db, settings),
            partial(send_message_notices, db, settings),
            partial(send_activity_emails, db, settings),
        ],
    )
