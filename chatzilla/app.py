"""The app factory: :func:`make_app` builds one complete, independent chat.

Everything with state (the backend, the hub, the SockJS router and its
timers) is created here, inside the running event loop, and handed to the
handlers; two apps in one process share nothing.
"""

from __future__ import annotations

import logging
from pathlib import Path

import jinja2
import tornado.web

from .accounts import Accounts, MemoryAccounts, PostgresAccounts, RedisAccounts, SQLiteAccounts
from .backends.base import Backend
from .backends.memory import MemoryBackend
from .backends.retention import Retention
from .backends.sqlite import SQLiteBackend
from .connection import ChatRouter
from .connection_limits import PACKET_FACTOR
from .frames import V1, V2
from .hub import Hub
from .limits import flood_limiter
from .mailer import make_mailer
from .metrics import Metrics
from .moderating import Moderation
from .moderation_store import make_store
from .proxies import TrustedProxies
from .rooms_list import RoomsList
from .security import host_allowed
from .server import ChatHTTPServer, max_sockets_per_address
from .settings import Settings
from .signin import SignIn
from .signin_web import signin_handlers
from .web import (
    BadHostHandler,
    HealthHandler,
    MetricsHandler,
    NotFoundHandler,
    PageHandler,
    PageScript,
    StaticHandler,
)

log = logging.getLogger("chatzilla")

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = ROOT / "templates"
STATIC = ROOT / "static"
#: The browser bundle of the npm package sockjs-client, installed by `npm ci`.
SOCKJS_DIST = ROOT / "node_modules" / "sockjs-client" / "dist"
SOCKJS_BUNDLE = SOCKJS_DIST / "sockjs.min.js"

SOCKJS_PREFIX = "/chat"
#: The page's script: an ES module (under STATIC) that imports the others.
ENTRY_MODULE = "js/main.js"


class ChatApplication(tornado.web.Application):
    """A Tornado application that owns its hub, backend and SockJS router."""

    def __init__(
        self,
        handlers,
        *,
        hub: Hub,
        backend: Backend,
        router: ChatRouter,
        proxies: TrustedProxies,
        allowed_hosts: tuple[str, ...] = (),
        signin: SignIn | None = None,
        moderation: Moderation | None = None,
        **kw,
    ) -> None:
        super().__init__(handlers, **kw)
        #: Roles, mutes and bans (``--auth link``), or None.
        self.moderation = moderation
        self.hub = hub
        self.backend = backend
        self.router = router
        self.proxies = proxies
        self.allowed_hosts = allowed_hosts
        #: Sign-in by e-mail link (``--auth link``), or None (``--auth open``).
        self.signin = signin

    def find_handler(self, request, **kwargs):
        """Route ``request`` once its ``remote_ip`` and ``protocol`` are the
        client's: read from a trusted proxy's X-Forwarded-* headers, else
        our own connection's (see :mod:`chatzilla.proxies`). Every handler,
        the SockJS ones and their per-address limits included, sees these.
        A ``Host`` that is not one of ``allowed_hosts`` gets 400 (but on
        ``/healthz``, which load balancers ask by address)."""
        peer = request.remote_ip
        request.remote_ip = self.proxies.client_address(peer, request.headers.get("X-Forwarded-For"))
        request.protocol = self.proxies.scheme(
            peer, request.headers.get("X-Forwarded-Proto"), request.protocol
        )
        if request.path != "/healthz" and not host_allowed(request.headers.get("Host"), self.allowed_hosts):
            return self.get_handler_delegate(request, BadHostHandler, self.settings["default_handler_args"])
        return super().find_handler(request, **kwargs)

    async def shutdown(self) -> None:
        """Stop the router's timers and release the backend."""
        self.router.shutdown()
        await self.backend.close()
        if self.moderation is not None:
            await self.moderation.close()
        if self.signin is not None:
            self.signin.mailer.close()
            await self.signin.accounts.close()


def sockjs_settings(settings: Settings) -> dict:
    """sockjs-tornado settings, each chosen on purpose rather than defaulted.

    (Origins are not among them: our handlers check them for every
    transport, see :mod:`chatzilla.transports`.)
    """
    return {
        # 1.0.7's htmlfile transport strips '_' and '.' from the callback
        # name, so sockjs-client 1.x cannot use it; the iframe transports
        # cover the same browsers.
        "disabled_transports": ["htmlfile"],
        # The iframe transports load this script; it must be our own copy of
        # the client (1.x), not sockjs-tornado's default CDN 0.3 URL.
        "sockjs_url": "/vendor/sockjs/sockjs.min.js",
        # No JSESSIONID cookie: we keep no state in cookies, and a load
        # balancer's stickiness is configured there, not here.
        "jsessionid": False,
        "heartbeat_delay": settings.heartbeat_delay,
        "disconnect_delay": settings.disconnect_delay,
    }


def hard_limit(settings: Settings) -> int:
    """Bytes past which Tornado itself drops a WebSocket message or a request
    body without reading it (below it, our handlers close the session with a
    close frame)."""
    return 2 * PACKET_FACTOR * settings.max_frame


def http_server_options(settings: Settings) -> dict:
    """Keyword arguments for the :class:`tornado.httpserver.HTTPServer`."""
    return {
        # Off: Tornado would believe X-Forwarded-For and X-Real-IP from any
        # peer. ChatApplication.find_handler reads them from trusted proxies only.
        "xheaders": False,
        "max_body_size": hard_limit(settings),
        # Tornado's defaults (an hour for a head, no limit for a body) let
        # a few thousand half-sent requests hold the server (slowloris).
        "idle_connection_timeout": settings.header_timeout,
        "body_timeout": settings.body_timeout,
    }


def make_server(app: ChatApplication, settings: Settings) -> ChatHTTPServer:
    """The HTTP server for ``app``: :func:`http_server_options`, a cap on raw
    connections per client address, and accepting that survives the file
    limit (see :mod:`chatzilla.server`). Add its sockets to serve."""
    return ChatHTTPServer(
        app,
        max_per_address=max_sockets_per_address(settings.max_connections_per_address),
        proxies=app.proxies,
        **http_server_options(settings),
    )


def make_metrics_app(app: ChatApplication) -> tornado.web.Application:
    """``/metrics`` of ``app``, alone, with no token: for ``--metrics-port``,
    a port that only the operator's network reaches."""
    return tornado.web.Application([(r"/metrics", MetricsHandler, {"metrics": app.hub.metrics})])


def make_backend(settings: Settings) -> Backend:
    """The backend the settings ask for: Postgres when ``database_url`` is
    set (not yet open: see :func:`open_backend`), with Redis for fan-out and
    presence when ``redis_url`` is too; else Redis alone when ``redis_url``
    is set; else the embedded one ``storage`` names (no outside service)."""
    grace = settings.presence_grace
    retention = Retention(settings.retention_days, settings.retention_messages)
    if settings.database_url and settings.redis_url:
        # Imported here: the embedded default needs no Postgres or Redis client.
        from .backends.postgres_redis import PostgresRedisBackend

        return PostgresRedisBackend(
            settings.database_url, settings.redis_url, settings.redis_prefix, grace=grace, retention=retention
        )
    if settings.database_url:
        from .backends.postgres import PostgresBackend

        return PostgresBackend(settings.database_url, grace=grace, retention=retention)
    if settings.redis_url:
        # Imported here: the embedded default needs no Redis client.
        from .backends.redis import RedisBackend

        return RedisBackend(settings.redis_url, settings.redis_prefix, grace=grace, retention=retention)
    if settings.storage == "memory":
        # Twice the rooms in use: rooms stay available to catch up on for a
        # while after everyone left, but not every room ever named.
        return MemoryBackend(retention, grace=grace, rooms=2 * settings.max_rooms)
    return SQLiteBackend(settings.db, grace=grace, retention=retention)


def make_accounts(settings: Settings) -> Accounts:
    """Where sign-in keeps people, links, sessions and tokens: beside the
    messages, in the same Postgres, Redis, SQLite file or memory."""
    if settings.database_url:
        return PostgresAccounts(settings.database_url)
    if settings.redis_url:
        return RedisAccounts(settings.redis_url, settings.redis_prefix)
    if settings.storage == "memory":
        return MemoryAccounts()
    return SQLiteAccounts(settings.db)


def make_signin(settings: Settings) -> SignIn | None:
    """Sign-in by e-mail link, or None with ``--auth open``."""
    if settings.auth != "link":
        return None
    mailer = make_mailer(settings.smtp_url, settings.mail_from)
    return SignIn(make_accounts(settings), mailer, session_days=settings.session_days)


async def open_backend(settings: Settings) -> Backend:
    """:func:`make_backend`, opened: Postgres connects and migrates its
    schema here. Raises :class:`~chatzilla.backends.base.StorageError`."""
    backend = make_backend(settings)
    opening = getattr(backend, "open", None)
    if opening is not None:
        await opening()
    return backend


def make_app(settings: Settings, *, backend: Backend | None = None, io_loop=None) -> ChatApplication:
    """Build the chat: the page (``/`` and ``/r/ROOM``), static files,
    ``/healthz`` and SockJS at ``/chat``.

    Call it with the event loop running (the SockJS router starts timers on
    the current loop; pytest-tornado passes ``io_loop``). ``backend``
    defaults to the one ``settings.storage`` names; opening SQLite may raise
    :class:`~chatzilla.backends.base.StorageError`.
    """
    if backend is None:
        if settings.database_url:
            raise ValueError("a Postgres backend is opened first: pass open_backend(settings)")
        backend = make_backend(settings)
    signin = make_signin(settings)
    metrics = Metrics()
    hub = Hub(
        backend,
        metrics=metrics,
        history_limit=settings.history_limit,
        history_bytes=settings.history_bytes,
        max_content=settings.max_content,
        max_rooms=settings.max_rooms,
        max_rooms_per_address=settings.max_rooms_per_address,
        messages=flood_limiter(settings.rate_limit),
        wire=V1 if signin is None else V2,
    )
    router = ChatRouter(
        hub,
        SOCKJS_PREFIX,
        sockjs_settings(settings),
        settings,
        RoomsList(hub, backend),
        io_loop=io_loop,
        signin=signin,
    )
    moderation = None
    if signin is not None:
        moderation = router.moderation = Moderation(
            hub, make_store(settings), signin.accounts, backend, settings.admins
        )
    elif settings.admins:
        log.warning("--admins is ignored under --auth open: anyone could join as an admin's address")
    metrics.watch(lambda: {**hub.stats(), "rooms": hub.room_count()}, lambda: backend.healthy)
    templates = jinja2.Environment(
        # Read once: a check of the file on every page load would be disk I/O
        # on the event loop.
        auto_reload=False,
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    # Read once, at start-up: the modules' versions and the import map.
    page = {
        "templates": templates,
        "script": PageScript.of(STATIC, ENTRY_MODULE, SOCKJS_BUNDLE),
        "max_content": settings.max_content,
        "signin": signin,
    }
    handlers = [
        (r"/", PageHandler, page),
        # Any one path segment; PageHandler redirects or answers 404 for a bad room name.
        (r"/r/([^/]+)", PageHandler, page),
        (r"/healthz", HealthHandler, {"hub": hub, "backend": backend}),
        # Only behind its token on the public port; else on --metrics-port alone.
        *(
            [(r"/metrics", MetricsHandler, {"metrics": metrics, "token": settings.metrics_token})]
            if settings.metrics_token
            else []
        ),
        tornado.web.url(
            r"/vendor/sockjs/(.*)",
            StaticHandler,
            {"path": str(SOCKJS_DIST), "templates": templates},
            name="sockjs-bundle",
        ),
        *router.urls,
    ]
    if signin is not None:
        handlers += signin_handlers(templates, signin, settings.public_url, router.signed_out)
    return ChatApplication(
        handlers,
        hub=hub,
        backend=backend,
        router=router,
        proxies=TrustedProxies(settings.trusted_proxies),
        allowed_hosts=settings.allowed_hosts,
        signin=signin,
        moderation=moderation,
        # The sign-in forms' XSRF token (checked by their handlers only).
        xsrf_cookie_kwargs={"httponly": True, "samesite": "Lax"},
        static_path=str(STATIC),
        static_handler_class=StaticHandler,
        static_handler_args={"templates": templates},
        compress_response=True,
        default_handler_class=NotFoundHandler,
        default_handler_args={"templates": templates},
        # Never a traceback in a response, whatever else is switched on.
        serve_traceback=False,
        websocket_max_message_size=hard_limit(settings),
    )
