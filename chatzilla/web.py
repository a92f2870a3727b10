"""HTTP handlers: the page, the health check, static files and "not found".

Shared objects reach handlers through ``initialize`` arguments from the URL
spec, never through globals. Every handler has :class:`SecureHeaders` among
its bases: security headers on every response and error pages that say
nothing of the server's insides. The handlers a person reaches with a
browser add :class:`PageErrors`: their errors are pages with a way back to
the lobby.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import json
from http import HTTPStatus
from pathlib import Path

import jinja2
import tornado.web

from . import protocol
from .backends.base import Backend, StorageError
from .hub import Hub
from .metrics import CONTENT_TYPE_LATEST, Metrics
from .security import HandlerMixin, SecureHeaders, content_security_policy
from .signin import SESSION_COOKIE, SignIn

#: What an error page says, by status; anything else gets its phrase only.
EXPLANATIONS = {
    404: "There is no page at this address.",
    405: "This page cannot be used that way.",
    500: "Something went wrong on our side. The chat itself may still work: try the lobby.",
}


class PageErrors(HandlerMixin):
    """Mixin, before :class:`SecureHeaders`: a browser asking for a page
    (``Accept`` names text/html) gets an error page in the page's style,
    with a link to the lobby; anything else gets SecureHeaders' one line.

    The handler's ``initialize`` sets ``self._templates``; ``self.explanation``,
    when a handler sets it before raising, replaces the status's usual words.
    """

    _templates: jinja2.Environment
    explanation: str | None = None

    def write_error(self, status_code: int, **kwargs) -> None:
        if "text/html" not in self.request.headers.get("Accept", ""):
            super().write_error(status_code, **kwargs)
            return
        try:
            phrase = HTTPStatus(status_code).phrase
        except ValueError:
            phrase = "Error"
        page = self._templates.get_template("error.html").render(
            status=status_code,
            phrase=phrase,
            explanation=self.explanation or EXPLANATIONS.get(status_code, ""),
            static_url=self.static_url,
        )
        self.set_header("Content-Type", "text/html; charset=UTF-8")
        self.finish(page)


class PageHandler(PageErrors, SecureHeaders, tornado.web.RequestHandler):
    """``GET /`` (the lobby) and ``GET /r/ROOM``: the chat page, a Jinja2 template.

    The room's name goes into the page as ``<body data-room>``, which the
    script joins. Room names are case-insensitive: a name that is valid once
    lower-cased is redirected (301) to that; any other name the protocol
    would refuse (``protocol.check_room``) is a 404: the page never offers a
    room it cannot join. ``script`` is the page's script (:class:`PageScript`);
    ``max_content`` the longest message.
    """

    def initialize(
        self,
        templates: jinja2.Environment,
        script: PageScript,
        max_content: int,
        signin: SignIn | None = None,
    ) -> None:
        self._templates = templates
        self._script = script
        self._max_content = max_content
        self._signin = signin

    def decode_argument(self, value: bytes, name: str | None = None) -> str:
        # Tornado answers 400 for a path that is not UTF-8; for a room that is
        # just one more name that does not exist.
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            raise tornado.web.HTTPError(404) from None

    async def get(self, room: str | None = None) -> None:
        if room is None:
            room = protocol.DEFAULT_ROOM
        else:
            try:
                protocol.check_room(room)
            except protocol.ProtocolError:
                self._elsewhere(room)
        # The import map is the page's one inline script: allowed by its hash.
        self.set_header(
            "Content-Security-Policy",
            content_security_policy(
                self.request.headers.get("Host"), script_hashes=[self._script.import_map_hash]
            ),
        )
        page = self._templates.get_template("index.html").render(
            room=room,
            static_url=self.static_url,
            script=self._script,
            max_content=self._max_content,
            **await self._identity(),
        )
        self.set_header("Content-Type", "text/html; charset=UTF-8")
        self.write(page)

    async def _identity(self) -> dict:
        """The page's sign-in state: ``auth`` ("open" or "link") and, with
        link, ``me`` (the signed-in person's public self as JSON, or "") and
        ``xsrf`` for its forms."""
        if self._signin is None:
            return {"auth": "open", "me": "", "xsrf": "", "email": "", "error": ""}
        # The page holds who is signed in: no cache may keep it.
        self.set_header("Cache-Control", "no-store")
        try:
            person = await self._signin.session(self.get_cookie(SESSION_COOKIE))
        except StorageError:
            person = None  # the page offers to sign in; the chat says what is wrong
        me = json.dumps(person.public(), ensure_ascii=False) if person else ""
        return {"auth": "link", "me": me, "xsrf": self.xsrf_form_html(), "email": "", "error": ""}

    def _elsewhere(self, room: str) -> None:
        """``room`` is no room name: redirect to the room it names in another
        case, or raise 404."""
        lower = room.lower()
        try:
            protocol.check_room(lower)
        except protocol.ProtocolError:
            self.explanation = (
                "There is no room with this name: a room's name is 1 to 64 characters of a-z, 0-9, - and _."
            )
            raise tornado.web.HTTPError(404) from None
        query = self.request.query
        self.redirect(f"/r/{lower}" + (f"?{query}" if query else ""), permanent=True)
        raise tornado.web.Finish()


class MetricsHandler(SecureHeaders, tornado.web.RequestHandler):
    """``GET /metrics``: the Prometheus text exposition of ``metrics``.

    With a ``token`` (on the public port), only a request that carries
    ``Authorization: Bearer <token>`` gets it; any other gets 404, as if
    there were nothing here. Without one (its own port), anyone who reaches
    the port does.
    """

    def initialize(self, metrics: Metrics, token: str = "") -> None:
        self._metrics = metrics
        self._token = token

    def get(self) -> None:
        if self._token:
            given = self.request.headers.get("Authorization", "")
            if not hmac.compare_digest(given.encode(), f"Bearer {self._token}".encode()):
                raise tornado.web.HTTPError(404)
        self.set_header("Content-Type", CONTENT_TYPE_LATEST)
        self.set_header("Cache-Control", "no-store")
        self.write(self._metrics.render())


class HealthHandler(SecureHeaders, tornado.web.RequestHandler):
    """``GET /healthz``: 200 with ``{"status", "connections", "participants"}``.

    ``status`` is "ok", or "degraded" while the backend cannot store (Redis
    down): pages still load and the chat recovers by itself.
    """

    def initialize(self, hub: Hub, backend: Backend) -> None:
        self._hub = hub
        self._backend = backend

    def get(self) -> None:
        self.set_header("Content-Type", "application/json")
        self.set_header("Cache-Control", "no-store")
        status = "ok" if self._backend.healthy else "degraded"
        self.write(json.dumps({"status": status, **self._hub.stats()}))


class StaticHandler(PageErrors, SecureHeaders, tornado.web.StaticFileHandler):
    """Our scripts and styles, and the sockjs-client bundle.

    A URL with ``?v=`` (from ``static_url``) names one version of a file and
    is cached for good; one without (the script's modules import each other
    by plain name) is checked with the server on every use, so a page never
    runs modules of two versions together.
    """

    # Tornado passes the URL spec's arguments to initialize, whatever they are.
    def initialize(  # type: ignore[override]
        self, path: str, templates: jinja2.Environment, default_filename: str | None = None
    ) -> None:
        super().initialize(path, default_filename)
        self._templates = templates

    def set_extra_headers(self, path: str) -> None:
        if "v" not in self.request.arguments:
            self.set_header("Cache-Control", "no-cache")


class NotFoundHandler(PageErrors, SecureHeaders, tornado.web.RequestHandler):
    """Every path no other handler serves: 404."""

    def initialize(self, templates: jinja2.Environment) -> None:
        self._templates = templates

    def prepare(self) -> None:
        raise tornado.web.HTTPError(404)


class BadHostHandler(PageErrors, SecureHeaders, tornado.web.RequestHandler):
    """Any request whose ``Host`` is not one of ``allowed_hosts``: 400."""

    explanation = "This server does not answer to that name."

    def initialize(self, templates: jinja2.Environment) -> None:
        self._templates = templates

    def prepare(self) -> None:
        raise tornado.web.HTTPError(400)


@dataclasses.dataclass(frozen=True)
class PageScript:
    """The page's script: ES modules under ``static``/js, ``entry`` first.

    Each module's URL carries its version (``?v=``, a hash of its content),
    so browsers keep it for good. The modules import each other by plain
    name; ``import_map`` (inline in the page, allowed by ``import_map_hash``)
    maps each plain name to its versioned URL, so a page loads one version of
    every module, and a reload loads none again. ``modules`` lists every
    versioned URL, the entry first, for the page to preload them all at once
    rather than one level of imports at a time.
    """

    modules: tuple[str, ...]
    import_map: str
    import_map_hash: str
    #: sockjs-client's bundle, versioned the same way.
    sockjs_bundle: str

    @classmethod
    def of(cls, static: Path, entry: str, sockjs_bundle: Path) -> PageScript:
        paths = sorted(p.relative_to(static).as_posix() for p in (static / "js").rglob("*.js"))
        paths.remove(entry)
        urls = {"/static/" + path: f"/static/{path}?v={_version(static / path)}" for path in [entry, *paths]}
        import_map = json.dumps({"imports": urls}, separators=(",", ":"))
        digest = base64.b64encode(hashlib.sha256(import_map.encode()).digest()).decode()
        bundle = f"/vendor/sockjs/{sockjs_bundle.name}?v={_version(sockjs_bundle)}"
        return cls(tuple(urls.values()), import_map, f"'sha256-{digest}'", bundle)


def _version(path: Path) -> str:
    """A version for ``path``'s URL: a hash of its content, or "none" if it is missing."""
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()[:20]
    except OSError:
        return "none"
