"""A server for the official SockJS protocol suite, built of our transports.

The suite (github.com/sockjs/sockjs-protocol, ``sockjs-protocol.py``; not
ours, never committed here) tests a server that offers four services:
``echo``, ``disabled_websocket_echo``, ``cookie_needed_echo`` and ``close``.
This script serves them at http://127.0.0.1:PORT/ with the very handlers,
session class and settings the chat uses (:mod:`chatzilla.transports`,
:class:`chatzilla.connection.ChatSession`, :func:`chatzilla.app.sockjs_settings`),
only with an echo (or a close) instead of the chat behind them. To run the
suite beside the project (it is Python 2)::

    .venv/bin/python tests/sockjs_conformance.py 8081 &
    cd /path/to/sockjs-protocol
    pip2 install --target deps unittest2 'websocket-client<0.60' ws4py==0.5.1
    SOCKJS_URL=http://127.0.0.1:8081 PYTHONPATH=deps python2 sockjs-protocol.py

What the suite finds that we differ on, on purpose, is listed in
docs/protocol.md ("SockJS conformance").
"""

from __future__ import annotations

import asyncio
import dataclasses
import sys

import tornado.web
from sockjs.tornado import SockJSConnection, SockJSRouter

from chatzilla import compat
from chatzilla.app import STATIC, make_server, sockjs_settings
from chatzilla.connection import ChatSession
from chatzilla.connection_limits import ConnectionLimits
from chatzilla.proxies import TrustedProxies
from chatzilla.settings import Settings
from chatzilla.transports import guard_urls


class EchoConnection(SockJSConnection):
    def on_message(self, message) -> None:
        self.send(message)


class CloseConnection(SockJSConnection):
    def on_open(self, info) -> None:
        self.close()


class ConformanceRouter(SockJSRouter):
    """What :class:`chatzilla.connection.ChatRouter` is, but the hub."""

    def __init__(self, connection, prefix: str, user_settings: dict, settings: Settings) -> None:
        self.allowed_origins = settings.allowed_origins
        self.limits = ConnectionLimits(settings)
        super().__init__(connection, prefix, user_settings, session_kls=ChatSession)
        compat.replace_transport_handlers(self, guard_urls)


class ConformanceApp(tornado.web.Application):
    proxies = TrustedProxies(())  # what make_server asks of an app


async def serve(port: int) -> None:
    # The suite's timings: a session expires 5 s after its last request.
    settings = dataclasses.replace(Settings(), host="127.0.0.1", port=port)
    # As the suite's own test server: a streaming response ends after 4 KiB
    # (the chat keeps sockjs-tornado's 128 KiB). htmlfile stays off.
    base = {**sockjs_settings(settings), "response_limit": 4096}
    services = {
        "echo": (EchoConnection, base),
        "disabled_websocket_echo": (
            EchoConnection,
            {**base, "disabled_transports": [*base["disabled_transports"], "websocket"]},
        ),
        "cookie_needed_echo": (EchoConnection, {**base, "jsessionid": True}),
        "close": (CloseConnection, base),
    }
    urls = []
    for name, (connection, user_settings) in services.items():
        urls += ConformanceRouter(connection, f"/{name}", user_settings, settings).urls
    app = ConformanceApp(urls, static_path=str(STATIC))  # the iframe page's script
    server = make_server(app, settings)  # type: ignore[arg-type]
    server.listen(port, "127.0.0.1")
    print(f"SockJS conformance services on http://127.0.0.1:{port}/", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(serve(int(sys.argv[1]) if len(sys.argv) > 1 else 8081))
