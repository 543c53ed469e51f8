"""Where messages go: an SMTP server, or `.eml` files on disk in development."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import SMTP
from functools import partial
from pathlib import Path
from typing import Protocol
from urllib.parse import parse_qs, unquote, urlsplit

import aiosmtplib

from app.settings import Settings

logger = logging.getLogger("app.mail")

_LINK = re.compile(r"https?://[^\s<>\"']+")
_ERROR_MAX = 300


class Transport(Protocol):
    async def send(self, messages: Sequence[EmailMessage]) -> list[str | None]:
        """Sends each message; answers, in order, None for a message that was accepted or
        a short reason (never a secret) why it was not."""
        ...


def _reason(error: Exception) -> str:
    if isinstance(error, aiosmtplib.SMTPResponseException):
        text = f"SMTP {error.code} {error.message}"
    else:
        text = f"{type(error).__name__}: {error}"
    return " ".join(text.split())[:_ERROR_MAX]


def _starttls(query: str, has_password: bool) -> bool | None:
    values = parse_qs(query).get("starttls", [])
    if not values:
        # A password never travels in the clear; without one, STARTTLS when offered.
        return True if has_password else None
    if values[-1].lower() in ("true", "1", "yes"):
        return True
    if values[-1].lower() in ("false", "0", "no"):
        return False
    raise ValueError("the starttls parameter of PORTAL_SMTP_URL must be true or false")


class SmtpTransport:
    """One connection per batch to the server in `url`: `smtp://user:pass@host:587` (with
    `?starttls=true|false`) or `smtps://` for TLS from the first byte."""

    def __init__(self, url: str, *, timeout: float = 10.0) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise ValueError("PORTAL_SMTP_URL must look like smtp://user:pass@host:587")
        implicit_tls = parts.scheme == "smtps"
        password = unquote(parts.password) if parts.password else None
        self._client = partial(
            aiosmtplib.SMTP,
            hostname=parts.hostname,
            port=parts.port,
            username=unquote(parts.username) if parts.username else None,
            password=password,
            use_tls=implicit_tls,
            start_tls=False if implicit_tls else _starttls(parts.query, password is not None),
            timeout=timeout,
        )

    async def send(self, messages: Sequence[EmailMessage]) -> list[str | None]:
        results: list[str | None] = []
        try:
            async with self._client() as client:
                for message in messages:
                    try:
                        await client.send_message(message)
                    except (aiosmtplib.SMTPException, OSError) as error:
                        results.append(_reason(error))
                    else:
                        results.append(None)
        except (aiosmtplib.SMTPException, OSError) as error:
            # Connecting failed: every message not yet tried fails with it.
            results += [_reason(error)] * (len(messages) - len(results))
        return results


class FileTransport:
    """Writes each message to `folder` as an `.eml` file and logs its links, so a developer
    can open an invitation without a mail server."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def _write(self, message: EmailMessage) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        token = str(message["Message-ID"]).strip("<>").partition("@")[0]
        path = self.folder / f"{stamp}-{token}.eml"
        path.write_bytes(message.as_bytes(policy=SMTP))
        return path

    async def send(self, messages: Sequence[EmailMessage]) -> list[str | None]:
        results: list[str | None] = []
        for message in messages:
            try:
                path = await asyncio.to_thread(self._write, message)
            except OSError as error:
                results.append(_reason(error))
                continue
            body = message.get_body(preferencelist=("plain",))
            links = _LINK.findall(body.get_content()) if body else []
            logger.info(
                "email to %s: %s | links: %s | saved as %s",
                message["To"],
                message["Subject"],
                " ".join(links) or "none",
                path,
            )
            results.append(None)
        return results


def transport_for(settings: Settings) -> Transport:
    if settings.smtp_url is not None:
        return SmtpTransport(settings.smtp_url.get_secret_value())
    return FileTransport(settings.var_dir / "mail")
