"""HTTP handlers: the page, the health check, static files and "not found".

Shared objects reach handlers through ``initialize`` arguments from the URL
spec, never through globals. Every handler has :class:`SecureHeaders` first
among its bases: security headers on every response and plain error pages.
"""

from __future__ import annotations

import json

import jinja2
import tornado.web

from .hub import Hub
from .security import SecureHeaders


class PageHandler(SecureHeaders, tornado.web.RequestHandler):
    """``GET /``: the chat page, a Jinja2 template."""

    def initialize(self, templates: jinja2.Environment) -> None:
        self._templates = templates

    def get(self) -> None:
        page = self._templates.get_template("index.html").render(
            static_url=self.static_url,
            sockjs_bundle=self.reverse_url("sockjs-bundle", "sockjs.min.js"),
        )
        self.set_header("Content-Type", "text/html; charset=UTF-8")
        self.write(page)


class HealthHandler(SecureHeaders, tornado.web.RequestHandler):
    """``GET /healthz``: 200 with ``{"status", "connections", "participants"}``."""

    def initialize(self, hub: Hub) -> None:
        self._hub = hub

    def get(self) -> None:
        self.set_header("Content-Type", "application/json")
        self.set_header("Cache-Control", "no-store")
        self.write(json.dumps({"status": "ok", **self._hub.stats()}))


class StaticHandler(SecureHeaders, tornado.web.StaticFileHandler):
    """Our scripts and styles, and the sockjs-client bundle."""


class NotFoundHandler(SecureHeaders, tornado.web.RequestHandler):
    """Every path no other handler serves: a plain 404."""

    def prepare(self) -> None:
        raise tornado.web.HTTPError(404)
