"""The sign-in pages (``--auth link``): plain HTML forms, no script needed.

- ``GET /signin?room=R``: the address form; ``POST /signin`` mails a link
  (:meth:`chatzilla.signin.SignIn.ask`) and says "check your mail", the same
  words whether or not the address is known;
- ``GET /signin/link?t=SECRET``: the link's landing page, which asks for the
  name the others will see and does not use the link up (mail scanners open
  links too); its ``POST`` does, sets the session cookie and goes to the room;
- ``POST /signout``: ends this browser's session (Leave);
- ``POST /tokens``: mints a bot token for the signed-in person, shown once;
- ``POST /me/name``: changes the signed-in person's name.

Every POST carries Tornado's XSRF token (``_xsrf``, checked here rather than
application-wide: SockJS's own POSTs carry none). The session cookie is
HttpOnly, SameSite=Lax, Secure when the request came over HTTPS (as the
trusted proxies tell, see :mod:`chatzilla.proxies`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import jinja2
import tornado.web

from . import compat, identity, protocol
from .backends.base import StorageError
from .mailer import MailError
from .security import SecureHeaders
from .signin import SESSION_COOKIE, SignIn, SignInError
from .web import PageErrors

log = logging.getLogger("chatzilla.signin")


def room_path(room: str) -> str:
    """The page of ``room``: ``/`` for the lobby."""
    return "/" if room == protocol.DEFAULT_ROOM else f"/r/{room}"


def checked_room(raw: str | None) -> str:
    """``raw`` if it is a room's name, else the lobby."""
    try:
        return protocol.check_room(raw or "")
    except protocol.ProtocolError:
        return protocol.DEFAULT_ROOM


# PathOnlySummary: the access log without the query, which holds a sign-in
# link's secret (whoever reads the log could use a link a mail scanner opened).
class SignInPage(PageErrors, SecureHeaders, compat.PathOnlySummary, tornado.web.RequestHandler):
    """What the sign-in handlers share: the template, the sign-in service,
    the session cookie."""

    def initialize(
        self,
        templates: jinja2.Environment,
        signin: SignIn,
        public_url: str,
        signed_out: Callable[[str], None],
    ) -> None:
        self._templates = templates
        self._signin = signin
        self._public_url = public_url
        self._signed_out = signed_out

    def prepare(self) -> None:
        if self.request.method == "POST":
            self.check_xsrf_cookie()
        # Links and tokens on these pages are secrets: never kept by a cache.
        self.set_header("Cache-Control", "no-store")

    def show(self, step: str, status: int = 200, **values) -> None:
        """Render ``templates/signin.html`` at ``step`` (see the template)."""
        values = {"room": protocol.DEFAULT_ROOM, "email": "", "error": "", "problem": "", **values}
        page = self._templates.get_template("signin.html").render(
            step=step, xsrf=self.xsrf_form_html(), static_url=self.static_url, **values
        )
        self.set_status(status)
        self.set_header("Content-Type", "text/html; charset=UTF-8")
        self.finish(page)

    def base_url(self) -> str:
        """Where links in mail lead: the ``public_url`` setting, else this
        request's scheme and host."""
        return self._public_url or f"{self.request.protocol}://{self.request.host}"

    def session_secret(self) -> str | None:
        return self.get_cookie(SESSION_COOKIE)

    async def person(self) -> identity.Person | None:
        """Who this browser is signed in as, or None."""
        try:
            return await self._signin.session(self.session_secret())
        except StorageError:
            raise tornado.web.HTTPError(503) from None


class AskHandler(SignInPage):
    """``/signin``: ask for a link."""

    def get(self) -> None:
        self.show("ask", room=checked_room(self.get_argument("room", None)))

    async def post(self) -> None:
        room = checked_room(self.get_argument("room", None))
        raw = self.get_argument("email", "")
        try:
            email = await self._signin.ask(raw, self.request.remote_ip or "", room, self.base_url())
        except SignInError as error:
            if error.retry_after is not None:
                self.set_header("Retry-After", str(max(1, round(error.retry_after))))
            status = 429 if error.code == "rate_limited" else 400
            self.show("ask", status, room=room, email=raw, error=error.reason)
            return
        except (MailError, StorageError) as error:
            log.error("sign-in link not sent: %s", error)
            problem = "The sign-in mail cannot be sent now: try again."
            self.show("ask", 503, room=room, email=raw, error=problem)
            return
        self.show("sent", room=room, email=email, again=f"/signin?room={room}")


class LinkHandler(SignInPage):
    """``/signin/link``: the link's landing page, then the sign-in itself."""

    async def get(self) -> None:
        secret = self.get_argument("t", "")
        try:
            link, person = await self._signin.link(secret)
        except SignInError as error:
            self.show("invalid", 410, problem=error.reason)
            return
        except StorageError:
            raise tornado.web.HTTPError(503) from None
        name = person.name if person else identity.default_name(link.email)
        self._name_step(secret, link.email, name, person)

    def _name_step(self, secret, email, name, person, problem="", status=200) -> None:
        self.show(
            "name",
            status,
            secret=secret,
            email=email,
            name=name,
            person=person,
            problem=problem,
            max_name=identity.MAX_NAME,
        )

    async def post(self) -> None:
        secret = self.get_argument("t", "")
        name = self.get_argument("name", "")
        try:
            try:
                session, _person, room = await self._signin.open_link(secret, name)
            except SignInError as error:
                if error.code != "invalid_name":
                    raise
                # The name is checked before the link: a bad name with a
                # link that is no more (or never was) says the link is gone.
                link, known = await self._signin.link(secret)
                self._name_step(secret, link.email, name, known, error.reason, 400)
                return
        except SignInError as error:
            self.show("invalid", 410, problem=error.reason)
            return
        except StorageError:
            raise tornado.web.HTTPError(503) from None
        self.set_cookie(
            SESSION_COOKIE,
            session,
            path="/",
            expires_days=self._signin.session_seconds / 86400,
            httponly=True,
            samesite="Lax",
            secure=self.request.protocol == "https",
        )
        self.redirect(room_path(room), status=303)


class SignOutHandler(SignInPage):
    """``POST /signout``: this browser signs out, and goes back to ``room``'s page."""

    async def post(self) -> None:
        secret = self.session_secret()
        try:
            await self._signin.sign_out(secret)
        except StorageError:
            raise tornado.web.HTTPError(503) from None
        if secret:
            self._signed_out(secret)
        self.clear_cookie(SESSION_COOKIE, path="/")
        self.redirect(room_path(checked_room(self.get_argument("room", None))), status=303)


class TokenHandler(SignInPage):
    """``POST /tokens``: a bot token for the signed-in person, shown once."""

    async def post(self) -> None:
        person = await self.person()
        if person is None:
            self.explanation = "Sign in first: a bot token is made for a signed-in person."
            raise tornado.web.HTTPError(403)
        try:
            token = await self._signin.mint_token(person, self.get_argument("label", ""))
        except StorageError:
            raise tornado.web.HTTPError(503) from None
        self.show("token", token=token, name=person.name)


class NameHandler(SignInPage):
    """``POST /me/name``: the signed-in person changes their name; back to ``room``."""

    async def post(self) -> None:
        person = await self.person()
        if person is None:
            raise tornado.web.HTTPError(403)
        room = checked_room(self.get_argument("room", None))
        try:
            await self._signin.rename(person, self.get_argument("name", ""))
        except SignInError as error:
            self.explanation = error.reason
            raise tornado.web.HTTPError(400) from None
        except StorageError:
            raise tornado.web.HTTPError(503) from None
        self.redirect(room_path(room), status=303)


def signin_handlers(
    templates: jinja2.Environment, signin: SignIn, public_url: str, signed_out: Callable[[str], None]
) -> list:
    """The URL specs of the sign-in pages; ``signed_out(secret)`` is called
    when the session ``secret`` signs out (to close its connections)."""
    args = {"templates": templates, "signin": signin, "public_url": public_url, "signed_out": signed_out}
    return [
        (r"/signin", AskHandler, args),
        (r"/signin/link", LinkHandler, args),
        (r"/signout", SignOutHandler, args),
        (r"/tokens", TokenHandler, args),
        (r"/me/name", NameHandler, args),
    ]
