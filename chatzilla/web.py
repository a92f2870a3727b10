"""HTTP handlers: the page and the health check.

Shared objects reach handlers through ``initialize`` arguments from the URL
spec, never through globals.
"""

from __future__ import annotations

import json

import jinja2
import tornado.web

from .backend import Backend
from .hub import Hub


class PageHandler(tornado.web.RequestHandler):
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


class HealthHandler(tornado.web.RequestHandler):
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
