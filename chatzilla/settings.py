"""The one table of Chatzilla's settings.

Every setting has a default, an environment variable and a command-line flag.
A flag beats the environment, which beats the default. ``PORT`` is read as
well as ``CHATZILLA_PORT`` so a Heroku-style dyno's port wins over the default.
A bad value raises :class:`SettingsError` naming the setting, never a
traceback at start-up.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .proxies import DEFAULT_TRUSTED, parse_networks
from .security import parse_hosts


class SettingsError(ValueError):
    """A setting has a value that cannot be used; the message names it."""


def _port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise ValueError("must be between 0 and 65535")
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise ValueError("must be at least 1")
    return value


def _seconds(text: str) -> float:
    value = float(text)
    if not 0 < value < math.inf:
        raise ValueError("must be a positive, finite number of seconds")
    return value


def _grace(text: str) -> float:
    value = float(text)
    if not 0 <= value < math.inf:
        raise ValueError("must be a finite number of seconds, at least 0 (0: at once)")
    return value


def _retention_days(text: str) -> float:
    value = float(text)
    if not 0 <= value < math.inf:
        raise ValueError("must be a finite number of days, at least 0 (0: keep forever)")
    return value


def _count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise ValueError("must be a whole number, at least 0 (0: keep all)")
    return value


def _rate(text: str) -> float:
    value = float(text)
    if not 0 <= value < math.inf:
        raise ValueError("must be a finite number of at least 0 (0 turns the limit off)")
    return value


def _origins(text: str) -> tuple[str, ...]:
    return tuple(o.strip() for o in text.split(",") if o.strip())


def _storage(text: str) -> str:
    kind = text.strip().lower()
    if kind not in {"sqlite", "memory"}:
        raise ValueError("must be sqlite or memory")
    return kind


def _path(text: str) -> str:
    if not text.strip():
        raise ValueError("must not be empty")
    return text


def _redis_url(text: str) -> str:
    url = text.strip()
    if url and not url.startswith(("redis://", "rediss://", "unix://")):
        raise ValueError("must start with redis://, rediss:// or unix://")
    return url


def _database_url(text: str) -> str:
    url = text.strip()
    if url and not url.startswith(("postgres://", "postgresql://")):
        raise ValueError("must start with postgres:// or postgresql://")
    return url


def _key_prefix(text: str) -> str:
    prefix = text.strip()
    if not prefix or any(c.isspace() for c in prefix):
        raise ValueError("must be a non-empty word without spaces")
    return prefix


def _optional_port(text: str) -> int:
    return _port(text) if text.strip() else 0


def _log_format(text: str) -> str:
    kind = text.strip().lower()
    if kind not in {"text", "json"}:
        raise ValueError("must be text or json")
    return kind


def _auth(text: str) -> str:
    kind = text.strip().lower()
    if kind not in {"link", "open"}:
        raise ValueError("must be link or open")
    return kind


def _smtp_url(text: str) -> str:
    url = text.strip()
    if url and not url.startswith(("smtp://", "smtps://")):
        raise ValueError("must start with smtp:// or smtps://")
    return url


def _public_url(text: str) -> str:
    url = text.strip().rstrip("/")
    if url and not url.startswith(("http://", "https://")):
        raise ValueError("must start with http:// or https://")
    return url


def _admins(text: str) -> tuple[str, ...]:
    # Imported here: the protocol module is the one place addresses are checked.
    from .protocol import ProtocolError, normalize_email

    admins = []
    for raw in text.split(","):
        if raw.strip():
            try:
                admins.append(normalize_email(raw))
            except ProtocolError as exc:
                raise ValueError(f"{raw.strip()!r}: {exc.reason}") from None
    return tuple(admins)


def _days(text: str) -> float:
    value = float(text)
    if not 0 < value <= 3650:
        raise ValueError("must be a number of days above 0, at most 3650")
    return value


def _log_level(text: str) -> str:
    level = text.strip().upper()
    if level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
        raise ValueError("must be one of DEBUG, INFO, WARNING, ERROR")
    return level


@dataclasses.dataclass(frozen=True)
class Spec:
    """One row of the settings table."""

    name: str
    default: Any
    parse: Callable[[str], Any]
    env: tuple[str, ...]
    help: str


# The table. Environment variables are tried left to right; the first one set
# wins. Order here is the order of `--help`.
SPECS: tuple[Spec, ...] = (
    Spec("host", "0.0.0.0", str, ("CHATZILLA_HOST",), "address to listen on"),
    Spec("port", 8000, _port, ("CHATZILLA_PORT", "PORT"), "TCP port for the page, static files and /chat"),
    Spec(
        "storage",
        "sqlite",
        _storage,
        ("CHATZILLA_STORAGE",),
        "where messages are kept: sqlite (durable) or memory (lost on restart)",
    ),
    Spec("db", "chatzilla.db", _path, ("CHATZILLA_DB",), "SQLite database file, created if missing"),
    Spec(
        "database_url",
        "",
        _database_url,
        ("DATABASE_URL", "CHATZILLA_DATABASE_URL"),
        "keep history in this Postgres (postgres://...), shared by every process using it; empty: --storage",
    ),
    Spec(
        "redis_url",
        "",
        _redis_url,
        ("REDIS_URL", "CHATZILLA_REDIS_URL"),
        "share rooms with other processes through this Redis (redis://...); with --database-url, Redis"
        " carries fan-out and presence and Postgres keeps history; empty: embedded",
    ),
    Spec(
        "redis_prefix",
        "chatzilla",
        _key_prefix,
        ("CHATZILLA_REDIS_PREFIX",),
        "prefix of every Redis key, to share one Redis between deployments",
    ),
    Spec(
        "retention_days",
        0.0,
        _retention_days,
        ("CHATZILLA_RETENTION_DAYS",),
        "remove messages older than this many days, on every backend; 0: keep every message for good",
    ),
    Spec(
        "retention_messages",
        0,
        _count,
        ("CHATZILLA_RETENTION_MESSAGES",),
        "keep only the newest this many messages of each room; 0: keep every message",
    ),
    Spec(
        "history_limit", 50, _positive_int, ("CHATZILLA_HISTORY_LIMIT",), "messages sent in `joined.history`"
    ),
    Spec(
        "max_content",
        2000,
        _positive_int,
        ("CHATZILLA_MAX_CONTENT",),
        "longest message accepted, in characters",
    ),
    Spec(
        "rate_limit",
        5.0,
        _rate,
        ("CHATZILLA_RATE_LIMIT",),
        "frames a second per connection and messages a second per e-mail, in bursts "
        "of twice as many; 0 turns flood control off",
    ),
    Spec(
        "max_frame",
        65536,
        _positive_int,
        ("CHATZILLA_MAX_FRAME",),
        "largest frame accepted, in bytes; a packet over 16 times this closes the session",
    ),
    Spec(
        "max_connections_per_address",
        50,
        _positive_int,
        ("CHATZILLA_MAX_CONNECTIONS_PER_ADDRESS",),
        "chat connections open at once from one client address",
    ),
    Spec(
        "max_rooms", 1000, _positive_int, ("CHATZILLA_MAX_ROOMS",), "rooms with someone in them, per process"
    ),
    Spec(
        "max_rooms_per_address",
        20,
        _positive_int,
        ("CHATZILLA_MAX_ROOMS_PER_ADDRESS",),
        "rooms one client address (an IPv6 client: its /64) may have people in at once; the lobby is "
        "never refused",
    ),
    Spec(
        "history_bytes",
        262144,
        _positive_int,
        ("CHATZILLA_HISTORY_BYTES",),
        "most bytes of messages (as sent, JSON-escaped) in one `joined` or `history` frame; "
        "the rest comes with scrollback",
    ),
    Spec(
        "max_queued",
        1048576,
        _positive_int,
        ("CHATZILLA_MAX_QUEUED",),
        "bytes waiting to go to a client, or to be handled from one, before its session is closed",
    ),
    Spec(
        "allowed_origins",
        (),
        _origins,
        ("CHATZILLA_ALLOWED_ORIGINS",),
        "comma-separated host[:port] list allowed besides the page's own origin",
    ),
    Spec(
        "allowed_hosts",
        (),
        parse_hosts,
        ("CHATZILLA_ALLOWED_HOSTS",),
        "comma-separated host names this server answers to (.example.com: and its subdomains), "
        "against DNS rebinding; others get 400 (empty: any)",
    ),
    Spec(
        "trusted_proxies",
        DEFAULT_TRUSTED,
        parse_networks,
        ("CHATZILLA_TRUSTED_PROXIES",),
        "comma-separated addresses or networks whose X-Forwarded-For names the client "
        "(* trusts every peer; empty, none)",
    ),
    Spec(
        "header_timeout",
        10.0,
        _seconds,
        ("CHATZILLA_HEADER_TIMEOUT",),
        "seconds a client has to send a request's head, and that a keep-alive connection may idle",
    ),
    Spec(
        "body_timeout",
        30.0,
        _seconds,
        ("CHATZILLA_BODY_TIMEOUT",),
        "seconds a client has to send a request's body",
    ),
    Spec(
        "heartbeat_delay", 25.0, _seconds, ("CHATZILLA_HEARTBEAT_DELAY",), "seconds between SockJS heartbeats"
    ),
    Spec(
        "disconnect_delay",
        5.0,
        _seconds,
        ("CHATZILLA_DISCONNECT_DELAY",),
        "seconds before an abandoned polling session expires",
    ),
    Spec(
        "presence_grace",
        8.0,
        _grace,
        ("CHATZILLA_PRESENCE_GRACE",),
        "seconds a person with no connection left stays present (a reload, a room switch, a "
        "restart) before the room hears they left; 0: at once",
    ),
    Spec(
        "shutdown_grace",
        3.0,
        _seconds,
        ("CHATZILLA_SHUTDOWN_GRACE",),
        "seconds SIGTERM waits for close frames to flush before exiting",
    ),
    Spec(
        "auth",
        "link",
        _auth,
        ("CHATZILLA_AUTH",),
        "link: people sign in by a link mailed to them and others see their name, never their "
        "address (protocol 2); open: anyone joins as any address, frames as protocol 1",
    ),
    Spec(
        "smtp_url",
        "",
        _smtp_url,
        ("CHATZILLA_SMTP_URL",),
        "mail server for sign-in links, smtp://[user:password@]host[:port] or smtps://...; "
        "empty: the link is written to the log (INFO); needs public_url or allowed_hosts, so that "
        "a link's host is never the asker's Host header",
    ),
    Spec(
        "mail_from",
        "Chatzilla <chatzilla@localhost>",
        str,
        ("CHATZILLA_MAIL_FROM",),
        "the From of sign-in mail",
    ),
    Spec(
        "public_url",
        "",
        _public_url,
        ("CHATZILLA_PUBLIC_URL",),
        "the chat's address for links in mail (https://chat.example.org); empty: the scheme and "
        "Host of the request that asked",
    ),
    Spec("session_days", 30.0, _days, ("CHATZILLA_SESSION_DAYS",), "days a sign-in lasts in a browser"),
    Spec(
        "admins",
        (),
        _admins,
        ("CHATZILLA_ADMINS",),
        "comma-separated addresses of the chat's administrators, who moderate every room once "
        "signed in (--auth link only: under open auth anyone could claim an address)",
    ),
    Spec(
        "metrics_port",
        0,
        _optional_port,
        ("CHATZILLA_METRICS_PORT",),
        "serve /metrics (Prometheus) on this port of --host, apart from the public one; 0: not",
    ),
    Spec(
        "metrics_token",
        "",
        str.strip,
        ("CHATZILLA_METRICS_TOKEN",),
        "serve /metrics on the public port too, to requests with 'Authorization: Bearer TOKEN'; empty: not",
    ),
    Spec("log_level", "INFO", _log_level, ("CHATZILLA_LOG_LEVEL",), "DEBUG, INFO, WARNING or ERROR"),
    Spec(
        "log_format",
        "text",
        _log_format,
        ("CHATZILLA_LOG_FORMAT",),
        "text (a line a person reads) or json (one JSON object an event, for a log collector)",
    ),
)

_BY_NAME = {spec.name: spec for spec in SPECS}


@dataclasses.dataclass(frozen=True)
class Settings:
    """Resolved settings. Build with :func:`load` or ``Settings(**overrides)``."""

    host: str = _BY_NAME["host"].default
    port: int = _BY_NAME["port"].default
    storage: str = _BY_NAME["storage"].default
    db: str = _BY_NAME["db"].default
    database_url: str = _BY_NAME["database_url"].default
    redis_url: str = _BY_NAME["redis_url"].default
    redis_prefix: str = _BY_NAME["redis_prefix"].default
    retention_days: float = _BY_NAME["retention_days"].default
    retention_messages: int = _BY_NAME["retention_messages"].default
    history_limit: int = _BY_NAME["history_limit"].default
    max_content: int = _BY_NAME["max_content"].default
    rate_limit: float = _BY_NAME["rate_limit"].default
    max_frame: int = _BY_NAME["max_frame"].default
    max_connections_per_address: int = _BY_NAME["max_connections_per_address"].default
    max_rooms: int = _BY_NAME["max_rooms"].default
    max_rooms_per_address: int = _BY_NAME["max_rooms_per_address"].default
    history_bytes: int = _BY_NAME["history_bytes"].default
    max_queued: int = _BY_NAME["max_queued"].default
    allowed_origins: tuple[str, ...] = _BY_NAME["allowed_origins"].default
    allowed_hosts: tuple[str, ...] = _BY_NAME["allowed_hosts"].default
    trusted_proxies: tuple[str, ...] = _BY_NAME["trusted_proxies"].default
    header_timeout: float = _BY_NAME["header_timeout"].default
    body_timeout: float = _BY_NAME["body_timeout"].default
    heartbeat_delay: float = _BY_NAME["heartbeat_delay"].default
    disconnect_delay: float = _BY_NAME["disconnect_delay"].default
    presence_grace: float = _BY_NAME["presence_grace"].default
    shutdown_grace: float = _BY_NAME["shutdown_grace"].default
    auth: str = _BY_NAME["auth"].default
    smtp_url: str = _BY_NAME["smtp_url"].default
    mail_from: str = _BY_NAME["mail_from"].default
    public_url: str = _BY_NAME["public_url"].default
    session_days: float = _BY_NAME["session_days"].default
    admins: tuple[str, ...] = _BY_NAME["admins"].default
    metrics_port: int = _BY_NAME["metrics_port"].default
    metrics_token: str = _BY_NAME["metrics_token"].default
    log_level: str = _BY_NAME["log_level"].default
    log_format: str = _BY_NAME["log_format"].default


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def build_parser() -> argparse.ArgumentParser:
    """The command-line parser; `--help` shows every setting with its default."""
    parser = argparse.ArgumentParser(
        prog="python -m chatzilla",
        description="Chatzilla: a realtime chat in the browser.",
        epilog="A flag beats its environment variable, which beats the default.",
    )
    for spec in SPECS:
        default = spec.default
        if isinstance(default, tuple):
            default = ",".join(default) or "(none)"
        parser.add_argument(
            _flag(spec.name),
            dest=spec.name,
            metavar="VALUE",
            default=None,
            help=f"{spec.help} (env {' or '.join(spec.env)}; default {default})",
        )
    return parser


def load(argv: Sequence[str] = (), environ: Mapping[str, str] | None = None) -> Settings:
    """Resolve the settings from flags, then the environment, then defaults.

    Raises :class:`SettingsError` with a one-line message naming the setting
    and where its bad value came from.
    """
    environ = {} if environ is None else environ
    args = build_parser().parse_args(list(argv))
    values: dict[str, Any] = {}
    for spec in SPECS:
        raw, source = getattr(args, spec.name), _flag(spec.name)
        if raw is None:
            found = [(environ[var], var) for var in spec.env if var in environ]
            if not found:
                continue
            raw, source = found[0]
        try:
            values[spec.name] = spec.parse(raw)
        except ValueError as exc:
            reason = str(exc) if not str(exc).startswith("invalid literal") else "is not a number"
            if "could not convert" in reason:
                reason = "is not a number"
            raise SettingsError(f"setting {spec.name} ({source}={raw!r}): {reason}") from None
    settings = Settings(**values)
    if settings.auth == "link" and settings.smtp_url and not (settings.public_url or settings.allowed_hosts):
        # Else a link mailed to anyone leads to whatever Host the asker sent:
        # a stranger asks for Alice's link with Host: evil.example, Alice
        # opens it and evil.example has her secret.
        raise SettingsError(
            "setting smtp_url: mail for sign-in links needs public_url (the chat's address "
            "in the links) or allowed_hosts (the Host names the links may use)"
        )
    return settings
