"""HTTP handlers: the page, the health check, static files and "not found".

Shared objects reach handlers through ``initialize`` arguments from the URL
spec, never through globals. Every handler has :class:`SecureHeaders` first
among its bases: security headers on every response and plain error pages.
"""

from __future__ import annotations

import json
from pathlib import Path

import jinja2
import tornado.web

from . import protocol
from .backend import Backend
from .hub import Hub
from .security import SecureHeaders


class PageHandler(SecureHeaders, tornado.web.RequestHandler):
    """``GET /`` (the lobby) and ``GET /r/ROOM``: the chat page, a Jinja2 template.

    The room's name goes into the page as ``<body data-room>``, which the
    script joins. A name the protocol would refuse (``protocol.check_room``)
    is a plain 404: the page never offers a room it cannot join. ``page``
    holds what every page shows the same: ``modules``, the script's module
    URLs (the first one is the entry), and ``max_content``, the longest
    message.
    """

    def initialize(self, templates: jinja2.Environment, page: dict) -> None:
        self._templates = templates
        self._page = page

    def decode_argument(self, value: bytes, name: str | None = None) -> str:
        # Tornado answers 400 for a path that is not UTF-8; for a room that is
        # just one more name that does not exist.
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            raise tornado.web.HTTPError(404) from None

    def get(self, room: str | None = None) -> None:
        if room is None:
            room = protocol.DEFAULT_ROOM
        else:
            try:
                protocol.check_room(room)
            except protocol.ProtocolError:
                raise tornado.web.HTTPError(404) from None
        page = self._templates.get_template("index.html").render(
            room=room,
            static_url=self.static_url,
            sockjs_bundle=self.reverse_url("sockjs-bundle", "sockjs.min.js"),
            **self._page,
        )
        self.set_header("Content-Type", "text/html; charset=UTF-8")
        self.write(page)


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


class StaticHandler(SecureHeaders, tornado.web.StaticFileHandler):
    """Our scripts and styles, and the sockjs-client bundle.

    A URL with ``?v=`` (from ``static_url``) names one version of a file and
    is cached for good; one without (the script's modules import each other
    by plain name) is checked with the server on every use, so a page never
    runs modules of two versions together.
    """

    def set_extra_headers(self, path: str) -> None:
        if "v" not in self.request.arguments:
            self.set_header("Cache-Control", "no-cache")


class NotFoundHandler(SecureHeaders, tornado.web.RequestHandler):
    """Every path no other handler serves: a plain 404."""

    def prepare(self) -> None:
        raise tornado.web.HTTPError(404)


def module_urls(static: Path, entry: str) -> list[str]:
    """The URLs of the page's script modules under ``static``/js, ``entry``
    (a path under static) first: the page preloads them all at once rather
    than finding them one import at a time."""
    found = sorted(p.relative_to(static).as_posix() for p in (static / "js").rglob("*.js"))
    return ["/static/" + path for path in [entry, *(p for p in found if p != entry)]]
