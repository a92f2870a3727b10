"""``python -m chatzilla``: serve the chat until SIGTERM or Ctrl-C;
``python -m chatzilla migrate``: bring the Postgres schema up to date;
``python -m chatzilla admin ...``: the operator's tools (:mod:`chatzilla.admin`).

Exit status 0 after a clean shutdown, 2 for a bad setting or a port that
cannot be bound (one line on stderr, no traceback).
"""

from __future__ import annotations

import asyncio
import gc
import ipaddress
import logging
import os
import signal
import sys
from collections.abc import Sequence

from . import logs
from .settings import Settings, SettingsError, load

log = logging.getLogger("chatzilla")

LISTEN_BACKLOG = 4096

#: The cyclic garbage collector's thresholds (gc.set_threshold): Python's
#: (700, 10, 10), but a full pass only after 100 passes over the middle
#: generation instead of 10. A full pass walks every object the process
#: holds, and a crowd's connections are hundreds of thousands of them
#: (streams, handlers, sessions) that live as long as their connection: in a
#: join storm of 3,000 the full passes took a fifth of the server's CPU
#: (6 of them, 1.2 s of 5.8 s). The young generations are collected as
#: often as before, so short-lived cycles go as soon as they did; a
#: closed connection's cycles (promoted by then) wait longer to be freed.
GC_THRESHOLDS = (700, 10, 100)

# A SockJS close code in the application range: browsers reconnect on it.
SHUTDOWN_CLOSE = (3001, "Server shutting down")


class StartupError(Exception):
    """Start-up cannot go on; the message is the one line the user sees."""


async def serve(settings: Settings) -> None:
    """Serve until SIGTERM or SIGINT, then close every session and return."""
    # Imported here, not at the top: `--help` and a bad setting answer
    # without them, at once even on a busy machine (the app and everything
    # it imports are most of a start-up's CPU).
    import tornado.httpserver
    import tornado.netutil

    from .app import SOCKJS_BUNDLE, make_app, make_metrics_app, make_server, open_backend
    from .backends.base import StorageError

    if not SOCKJS_BUNDLE.is_file():
        raise StartupError(
            f"the sockjs-client bundle is missing ({SOCKJS_BUNDLE}); "
            "run `npm ci` (or `make run`, which does it)"
        )
    try:
        # Tornado's default backlog of 128 makes the kernel drop connection
        # attempts when a crowd arrives at once (a restart, a join storm);
        # each dropped one waits a second or more for its retry.
        sockets = tornado.netutil.bind_sockets(settings.port, settings.host, backlog=LISTEN_BACKLOG)
    except OSError as exc:
        raise StartupError(
            f"cannot listen on {settings.host}:{settings.port}: {exc.strerror or exc}"
        ) from None
    except (UnicodeError, ValueError) as exc:
        raise StartupError(f"setting host ({settings.host!r}) is not an address: {exc}") from None
    try:
        app = make_app(settings, backend=await open_backend(settings))
    except StorageError as exc:
        for sock in sockets:
            sock.close()
        raise StartupError(str(exc)) from None
    server = make_server(app, settings)
    server.add_sockets(sockets)
    if settings.metrics_port:
        try:
            metrics_sockets = tornado.netutil.bind_sockets(settings.metrics_port, settings.host)
        except OSError as exc:
            raise StartupError(
                f"cannot listen on {settings.host}:{settings.metrics_port} for metrics: {exc.strerror or exc}"
            ) from None
        tornado.httpserver.HTTPServer(make_metrics_app(app)).add_sockets(metrics_sockets)
        log.info("metrics on http://%s:%d/metrics", settings.host, settings.metrics_port)
    # Before the banner: whoever starts the server on seeing it may stop it
    # at once, and SIGTERM must then be a clean stop, not the default death.
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    gc.set_threshold(*GC_THRESHOLDS)
    print(f"Chatzilla is serving {listening(sockets)} (Ctrl-C to stop)", flush=True)
    if settings.auth == "link" and not settings.smtp_url:
        log.info("no --smtp-url: sign-in links are written to this log, for you to open")
    await stop.wait()

    log.info("shutting down: closing %d connections", app.hub.stats()["connections"])
    server.stop()
    app.hub.close_all(*SHUTDOWN_CLOSE)
    await asyncio.sleep(0.1)  # close frames are written; give them a moment on the wire
    try:
        # Let the close frames reach the clients before the sockets go.
        await asyncio.wait_for(server.close_all_connections(), settings.shutdown_grace)
    except TimeoutError:
        log.warning("connections still open after %.1fs; exiting anyway", settings.shutdown_grace)
    await app.shutdown()


def listening(sockets: Sequence) -> str:
    """The start-up line's address: the one really listened on (the first
    socket's), and when that is every interface (0.0.0.0, ::) a warning
    that the network reaches it and how to keep it on this machine."""
    host, port = sockets[0].getsockname()[:2]
    url = f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"
    if ipaddress.ip_address(host).is_unspecified:
        url += (
            " on every interface, reachable from the network"
            f" (--host 127.0.0.1: this machine only; open http://127.0.0.1:{port}/)"
        )
    return url


def migrate(settings: Settings) -> int:
    """``python -m chatzilla migrate``: bring the Postgres schema at
    ``DATABASE_URL`` up to date (a platform's release phase runs it before
    the new version serves), and say which version it is at."""
    if not settings.database_url:
        # A release phase runs this whatever the storage: not an error.
        print("no DATABASE_URL: nothing to migrate (a SQLite file is upgraded when the server opens it)")
        return 0
    from .backends.base import StorageError
    from .backends.postgres import migrate_url

    try:
        before, after = asyncio.run(migrate_url(settings.database_url))
    except StorageError as exc:
        print(f"chatzilla: {exc}", file=sys.stderr)
        return 2
    print(f"database schema at version {after}" + (f" (was {before})" if before != after else ""))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] == "admin":
        from . import admin

        return admin.main(args[1:], dict(os.environ))
    command = args.pop(0) if args and args[0] == "migrate" else None
    try:
        settings = load(args, os.environ)
    except SettingsError as exc:
        print(f"chatzilla: {exc}", file=sys.stderr)
        return 2
    logs.configure(settings.log_level, settings.log_format)
    if command == "migrate":
        return migrate(settings)
    try:
        asyncio.run(serve(settings))
    except StartupError as exc:
        print(f"chatzilla: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
