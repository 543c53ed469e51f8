"""A real SMTP server on loopback (aiosmtpd) for tests that follow an email to delivery."""

from __future__ import annotations

import threading
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy
from typing import Any

from aiosmtpd.controller import Controller

from tests.support import free_port


class Inbox:
    """An aiosmtpd handler that keeps what it accepts and refuses the first `refusals`."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.recipients: list[str] = []
        self.refusals = 0
        self.refused = 0
        # Set from the server's thread when a message is accepted.
        self.arrived = threading.Event()

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:
        if self.refused < self.refusals:
            self.refused += 1
            return "550 5.7.1 Refused for the test"
        message = message_from_bytes(envelope.content, policy=default_policy)
        assert isinstance(message, EmailMessage)
        self.messages.append(message)
        self.recipients.extend(envelope.rcpt_tos)
        self.arrived.set()
        return "250 2.0.0 Accepted"

    @property
    def message_ids(self) -> list[str]:
        return [str(message["Message-ID"]) for message in self.messages]


class SmtpServer:
    """A real SMTP server on 127.0.0.1 that can be stopped and started on the same port.

    As a fixture: `server = SmtpServer(); server.start(); yield server; server.stop()`."""

    def __init__(self) -> None:
        self.port = free_port()
        self.inbox = Inbox()
        self._controller: Any = None

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def start(self) -> None:
        self._controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port)
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None
