"""Signing in by e-mail link: links, sessions and bot tokens.

A person asks for a link with their address; :meth:`SignIn.ask` mails them
a one-time link (it works once, for :data:`LINK_TTL` seconds). Opening it
(:meth:`SignIn.open_link`) makes them a person if they were none (a public
id, a display name of their choosing) and starts a session: a secret the
browser keeps in a cookie, valid for ``session_days``. A signed-in person
may mint bot tokens, secrets a script sends in its ``join`` frame instead.

Secrets are 256 random bits; what is kept is their SHA-256 digest
(:func:`digest`), never the secret. Asking is limited per address and per
client address (:class:`AskLimits`), so nobody can flood someone's inbox or
the mail server. Storage and mail are passed in (:mod:`chatzilla.accounts`,
:mod:`chatzilla.mailer`); the rules here do no I/O of their own.
"""

from __future__ import annotations

import hashlib
import secrets
import time
import urllib.parse
from collections.abc import Callable

from . import identity
from .accounts import Accounts, Link
from .identity import IdentityError, Person
from .limits import RateLimiter
from .mailer import Mailer
from .protocol import ProtocolError, normalize_email
from .proxies import address_key
from .shared_reads import SharedReads

#: A sign-in link works for this many seconds (and once).
LINK_TTL = 15 * 60
#: Links one address may be sent, and how many seconds refill them.
PER_ADDRESS = (3, 15 * 60)
#: Links one client address may ask for, and how many seconds refill them.
PER_CLIENT = (10, 15 * 60)
#: What starts every bot token, so one found in a log or a repository is
#: recognised for what it is.
TOKEN_PREFIX = "czb_"
#: The cookie that holds a browser's session secret.
SESSION_COOKIE = "chatzilla_session"
#: Where a sign-in link leads (``?t=SECRET``).
LINK_PATH = "/signin/link"


class SignInError(Exception):
    """A sign-in step refused: ``code`` (``invalid_email``, ``invalid_name``,
    ``rate_limited``, ``link_invalid``), ``reason`` for people, and
    ``retry_after`` seconds with ``rate_limited``."""

    def __init__(self, code: str, reason: str, retry_after: float | None = None) -> None:
        super().__init__(f"{code}: {reason}")
        self.code = code
        self.reason = reason
        self.retry_after = retry_after


def new_secret() -> str:
    """256 random bits, URL-safe."""
    return secrets.token_urlsafe(32)


def digest(secret: str) -> str:
    """What is kept of a secret: its SHA-256, in hex."""
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


class AskLimits:
    """How often links may be asked for: per e-mail address (the inbox) and
    per client address (the asker). ``clock`` is monotonic seconds."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        count, window = PER_ADDRESS
        self._addresses = RateLimiter(count / window, count, clock)
        count, window = PER_CLIENT
        self._clients = RateLimiter(count / window, count, clock)

    def take(self, email: str, client: str) -> float:
        """0.0 when a link may be sent (both budgets are used), else the
        seconds to wait. ``client`` is the asker's IP address."""
        # One inbox whatever the case of its local part (mail servers treat
        # Alice@ and alice@ as one): its budget is shared by every spelling.
        # A client is counted as every per-address limit counts it: an IPv6
        # one by its /64, which one machine may fill with addresses.
        return self._clients.take(address_key(client)) or self._addresses.take(email.casefold())


def _name(raw: str) -> str:
    try:
        return identity.check_name(raw)
    except IdentityError as error:
        raise SignInError("invalid_name", error.reason) from None


class SignIn:
    """Sign-in as the server carries it out; see the module docstring.

    ``accounts`` keeps people, links, sessions and tokens; ``mailer`` sends
    links; sessions last ``session_days``; ``clock`` is the time in seconds
    since the epoch (links and sessions expire by it).
    """

    def __init__(
        self,
        accounts: Accounts,
        mailer: Mailer,
        *,
        session_days: float,
        clock: Callable[[], float] = time.time,
        limits: AskLimits | None = None,
    ) -> None:
        self.accounts = accounts
        self.mailer = mailer
        self.session_seconds = session_days * 86400
        self._clock = clock
        self._limits = limits or AskLimits()
        # A person's tabs (or a bot's connections) joining at once share
        # the look-up of their session or token (chatzilla.shared_reads).
        self._sessions: SharedReads[str, Person | None] = SharedReads(
            lambda key: self.accounts.session_person(key, self._clock())
        )
        self._tokens: SharedReads[str, Person | None] = SharedReads(
            lambda key: self.accounts.token_person(key)
        )

    async def ask(self, raw_email: str, client: str, room: str, base_url: str) -> str:
        """Mail a sign-in link for ``raw_email`` that leads to ``room``; the
        link starts with ``base_url`` (scheme and host). Returns the address
        as kept. Raises :class:`SignInError` ``invalid_email`` or
        ``rate_limited``; :class:`~chatzilla.mailer.MailError` when the mail
        could not be handed over; :class:`~chatzilla.backends.base.StorageError`.
        """
        try:
            email = normalize_email(raw_email)
        except ProtocolError as error:
            raise SignInError("invalid_email", error.reason) from None
        wait = self._limits.take(email, client)
        if wait:
            minutes = max(1, round(wait / 60))
            raise SignInError(
                "rate_limited",
                f"too many sign-in links asked for; try again in about {minutes} minute"
                + ("s" if minutes > 1 else ""),
                retry_after=wait,
            )
        secret = new_secret()
        await self.accounts.add_link(digest(secret), Link(email, room, self._clock() + LINK_TTL))
        url = f"{base_url}{LINK_PATH}?{urllib.parse.urlencode({'t': secret})}"
        await self.mailer.send_link(email, url)
        return email

    async def link(self, secret: str) -> tuple[Link, Person | None]:
        """The link behind ``secret`` and the person it signs in (None: a
        newcomer), without using it up. Raises ``link_invalid``."""
        link = await self.accounts.peek_link(digest(secret), self._clock())
        if link is None:
            raise _link_invalid()
        return link, await self.accounts.person_by_email(link.email)

    async def open_link(self, secret: str, raw_name: str) -> tuple[str, Person, str]:
        """Use the link up and sign its address in as ``raw_name``: returns
        the session's secret, the person and the link's room. Raises
        ``invalid_name`` (the link stays usable) or ``link_invalid``."""
        name = _name(raw_name)
        link = await self.accounts.take_link(digest(secret), self._clock())
        if link is None:
            raise _link_invalid()
        person = await self.accounts.person_by_email(link.email)
        if person is None:
            person = await self.accounts.add_person(Person(identity.new_person_id(), link.email, name))
        if person.name != name:
            person = await self.accounts.rename(person.id, name) or person
        session = new_secret()
        await self.accounts.add_session(digest(session), person.id, self._clock() + self.session_seconds)
        return session, person, link.room

    async def session(self, secret: str | None) -> Person | None:
        """Who the session ``secret`` (a cookie's value) is, or None."""
        if not secret:
            return None
        return await self._sessions.get(digest(secret))

    async def sign_out(self, secret: str | None) -> None:
        """End the session ``secret`` (this browser only)."""
        if secret:
            await self.accounts.drop_session(digest(secret))

    async def rename(self, person: Person, raw_name: str) -> Person:
        """Give ``person`` a new display name. Raises ``invalid_name``."""
        return await self.accounts.rename(person.id, _name(raw_name)) or person

    async def mint_token(self, person: Person, label: str = "") -> str:
        """A new bot token for ``person``: shown once, kept as its digest."""
        token = TOKEN_PREFIX + new_secret()
        await self.accounts.add_token(digest(token), person.id, label[:64], self._clock())
        return token

    async def bot(self, token: str) -> Person | None:
        """Whose bot ``token`` is, or None."""
        if not token.startswith(TOKEN_PREFIX):
            return None
        return await self._tokens.get(digest(token))


def _link_invalid() -> SignInError:
    return SignInError(
        "link_invalid", "this sign-in link has expired or has been used already: ask for a new one"
    )
