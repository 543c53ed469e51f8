"""Email through a durable outbox (H5).

`enqueue_email` renders a template and adds the email to the caller's transaction, so a
change and its email commit together or not at all; `OutboxWorker` sends what is due and
retries failures with back-off until `mail_max_attempts`, then marks the row FAILED, where
it stays until an operator returns it to the queue (`retry_failed`, `portal mail-retry`).
"""

from app.mail.compose import Brand, brand_for, enqueue_email, render
from app.mail.transports import FileTransport, SmtpTransport, Transport, transport_for
from app.mail.worker import OutboxWorker, retry_delay, retry_failed

__all__ = [
    "Brand",
    "FileTransport",
    "OutboxWorker",
    "SmtpTransport",
    "Transport",
    "brand_for",
    "enqueue_email",
    "render",
    "retry_delay",
    "retry_failed",
    "transport_for",
]
