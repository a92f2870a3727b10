"""Sending sign-in links: by SMTP, or to the server's log when no SMTP is set.

:func:`make_mailer` picks one from the ``smtp_url`` setting:

- empty: :class:`LogMailer` writes one INFO line,
  ``sign-in link for EMAIL: URL``, for the operator to open (``make run`` on
  a fresh machine, with no mail server);
- ``smtp://[user:password@]host[:port]`` (port 25 by default; STARTTLS when
  the server offers it) or ``smtps://...`` (TLS from the start, port 465):
  :class:`SMTPMailer`, with the credentials when the URL has them.

smtplib blocks, so each mail is sent on a thread of the mailer's own: the
event loop never waits for a mail server.
"""

from __future__ import annotations

import asyncio
import logging
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from email.message import EmailMessage

log = logging.getLogger("chatzilla.mail")

#: Seconds a mail server has to answer each step.
SMTP_TIMEOUT = 20.0


def link_mail(url: str) -> tuple[str, str]:
    """The subject and plain-text body of a sign-in mail."""
    body = (
        "Open this link to sign in to Chatzilla:\n\n"
        f"{url}\n\n"
        "It works once, within 15 minutes. If you did not ask to sign in, "
        "ignore this mail: nobody can sign in as you without it.\n"
    )
    return "Your Chatzilla sign-in link", body


class MailError(Exception):
    """The mail could not be handed to the mail server; the message is for the log."""


class Mailer(Protocol):
    async def send_link(self, email: str, url: str) -> None:
        """Send ``email`` its sign-in link ``url``. Raises :class:`MailError`."""

    def close(self) -> None:
        """Release the mailer's thread; safe to call twice."""


class LogMailer:
    """No mail server: the link goes to the log, for the operator."""

    async def send_link(self, email: str, url: str) -> None:
        log.info("sign-in link for %s: %s", email, url)

    def close(self) -> None:
        pass


class SMTPMailer:
    """Mail through the SMTP server of ``url``, from ``sender``."""

    def __init__(self, url: str, sender: str) -> None:
        parts = urllib.parse.urlsplit(url)
        self._tls = parts.scheme == "smtps"
        self._host = parts.hostname or "localhost"
        self._port = parts.port or (465 if self._tls else 25)
        self._user = urllib.parse.unquote(parts.username) if parts.username else None
        self._password = urllib.parse.unquote(parts.password or "")
        self._sender = sender
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="chatzilla-mail")

    async def send_link(self, email: str, url: str) -> None:
        # Imported on first use: a server without SMTP (or signing in) never
        # pays for smtplib, ssl and email at start-up.
        import smtplib
        from email.message import EmailMessage

        message = EmailMessage()
        message["From"] = self._sender
        message["To"] = email
        subject, body = link_mail(url)
        message["Subject"] = subject
        message.set_content(body)
        try:
            await asyncio.get_running_loop().run_in_executor(self._thread, self._send, message)
        except (smtplib.SMTPException, OSError) as exc:
            raise MailError(
                f"could not send the sign-in mail through {self._host}:{self._port}: {exc}"
            ) from None

    def _send(self, message: EmailMessage) -> None:
        import smtplib
        import ssl

        context = ssl.create_default_context()
        if self._tls:
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                self._host, self._port, timeout=SMTP_TIMEOUT, context=context
            )
        else:
            smtp = smtplib.SMTP(self._host, self._port, timeout=SMTP_TIMEOUT)
        with smtp:
            if not self._tls:
                smtp.ehlo()
                if smtp.has_extn("starttls"):
                    smtp.starttls(context=context)
                    smtp.ehlo()
            if self._user is not None:
                smtp.login(self._user, self._password)
            smtp.send_message(message)

    def close(self) -> None:
        self._thread.shutdown(wait=False)


def make_mailer(smtp_url: str, sender: str) -> Mailer:
    """The mailer the settings ask for (see the module docstring)."""
    if not smtp_url:
        return LogMailer()
    return SMTPMailer(smtp_url, sender)
