"""A real SMTP server on loopback (aiosmtpd), that keeps what it receives.

``MailCatcher().start()`` listens on a free port of 127.0.0.1, in a thread
of its own; ``link_for(address)`` waits for a sign-in mail to that address
and returns the link in it. ``users={"name": "password"}`` requires those
credentials (over plain SMTP: it is loopback); ``tls=(cert, key)`` speaks
TLS from the start, as an ``smtps://`` server does.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import re
import ssl
import threading
import time

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from .helpers import free_port

LINK = re.compile(r"https?://\S+/signin/link\?t=\S+")


class MailCatcher:
    def __init__(self, users: dict[str, str] | None = None, tls: tuple[str, str] | None = None) -> None:
        self.port = free_port()
        self.messages: list[email.message.EmailMessage] = []
        self.logins: list[str] = []
        self._arrived = threading.Condition()
        self._users = users
        kwargs: dict = {"enable_SMTPUTF8": True}
        if users is not None:
            kwargs.update(auth_required=True, auth_require_tls=False, authenticator=self._authenticate)
        if tls is not None:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(*tls)
            kwargs["ssl_context"] = context
        # Our own loop for its thread, closed on stop (aiosmtpd leaves its own open).
        self._loop = asyncio.new_event_loop()
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port, loop=self._loop, **kwargs)

    def start(self) -> MailCatcher:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()
        self._loop.close()

    def _authenticate(self, server, session, envelope, mechanism, auth_data) -> AuthResult:
        ok = isinstance(auth_data, LoginPassword) and self._users.get(auth_data.login.decode()) == (
            auth_data.password.decode()
        )
        if ok:
            self.logins.append(auth_data.login.decode())
        return AuthResult(success=ok)

    async def handle_DATA(self, server, session, envelope) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self._arrived:
            self.messages.append(message)
            self._arrived.notify_all()
        return "250 OK"

    def wait_for(self, address: str, timeout: float = 10.0) -> email.message.EmailMessage:
        """The latest mail to ``address``, waiting up to ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        with self._arrived:
            while True:
                for message in reversed(self.messages):
                    if message["To"] == address:
                        return message
                left = deadline - time.monotonic()
                assert left > 0, f"no mail to {address} within {timeout}s: {len(self.messages)} others"
                self._arrived.wait(left)

    def link_for(self, address: str, timeout: float = 10.0) -> str:
        """The sign-in link in the latest mail to ``address``."""
        body = self.wait_for(address, timeout).get_content()
        found = LINK.search(body)
        assert found, body
        return found.group(0)
