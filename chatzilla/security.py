"""What every HTTP response and every chat connection must respect.

* :func:`origin_allowed`: which pages may talk to the chat. A browser names
  the page in the ``Origin`` header; the page's own origin (the request's
  ``Host``) and the hosts of the ``allowed_origins`` setting may connect.
  A request without ``Origin`` does not come from a page in a browser (a
  bot, a load generator, a test) and is let in: the header is what stops one
  site from using a visitor's browser against another.
* :class:`SecureHeaders`: mixed into every handler of the app, ours and
  sockjs-tornado's: a Content-Security-Policy that allows only our own
  scripts (and, on the page, its import map by its hash), styles and frames,
  ``nosniff``, a Referrer-Policy, no ``Server`` version, and error pages
  that say the status and nothing else (the page's handlers in
  :mod:`chatzilla.web` make those pages for browsers).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from http import HTTPStatus
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import tornado.web

if TYPE_CHECKING:
    # The mixins below go before a RequestHandler among a handler's bases:
    # checked as RequestHandlers, built on object (their place in the MRO).
    HandlerMixin = tornado.web.RequestHandler
else:
    HandlerMixin = object

#: A Host header we are willing to repeat in the policy (host[:port]).
_HOST = re.compile(r"(?:[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?")

#: Avatars come from Gravatar (see :func:`chatzilla.identity.avatar_url`).
IMAGE_HOSTS = ("https://www.gravatar.com",)


def origin_allowed(
    origin: str | None, host: str | None, allowed: Iterable[str], scheme: str | None = None
) -> bool:
    """May a request with this ``Origin`` header use the chat?

    True without an ``Origin``; True when its host[:port] is ``host`` (the
    request's ``Host``) and, when ``scheme`` is given (the request's own,
    ``http`` or ``https`` as the client used it), its scheme is that one:
    the page's own origin; True when its host[:port] is one of ``allowed``;
    False for anything else, including ``null`` (sandboxed frames, files)
    and schemes other than http and https. Compared case-insensitively.
    """
    if origin is None:
        return True
    parts = urlsplit(origin.strip())
    netloc = parts.netloc.lower()
    origin_scheme = parts.scheme.lower()
    if origin_scheme not in ("http", "https") or not netloc or "@" in netloc:
        return False
    if (
        host is not None
        and netloc == host.strip().lower()
        and (scheme is None or origin_scheme == scheme.lower())
    ):
        return True
    return netloc in {entry.lower() for entry in allowed}


#: A host name or address as the ``allowed_hosts`` setting takes it.
_HOST_NAME = re.compile(r"\.?[a-z0-9-]+(?:\.[a-z0-9-]+)*|\[[0-9a-f:.]+\]")


def parse_hosts(text: str) -> tuple[str, ...]:
    """The ``allowed_hosts`` setting: comma-separated host names, addresses
    (``[::1]`` for IPv6) or ``.domain`` for a domain and all its
    subdomains; a port is ignored. Raises ValueError naming a bad entry."""
    hosts = []
    for entry in (e.strip().lower() for e in text.split(",")):
        if not entry:
            continue
        name = _strip_port(entry)
        if not _HOST_NAME.fullmatch(name):
            raise ValueError(f"{entry!r} is not a host name such as localhost or .example.com")
        hosts.append(name)
    return tuple(hosts)


def _strip_port(host: str) -> str:
    if host.startswith("["):
        return host.split("]", 1)[0] + "]"
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def host_allowed(host: str | None, allowed: Iterable[str]) -> bool:
    """May a request with this ``Host`` header be answered? Always, when
    ``allowed`` is empty; else when its name (without the port) is one of
    them, or under one written ``.domain``. Against DNS rebinding: a page
    of evil.example whose name now points at us sends ``Host: evil.example``."""
    allowed = tuple(allowed)
    if not allowed:
        return True
    name = _strip_port((host or "").strip().lower()).rstrip(".")
    for entry in allowed:
        if name == entry or (entry.startswith(".") and (name == entry[1:] or name.endswith(entry))):
            return True
    return False


def content_security_policy(
    host: str | None, framed_by: Iterable[str] = (), script_hashes: Iterable[str] = ()
) -> str:
    """The policy for a response to a request with this ``Host``.

    Scripts, styles and frames only from our own origin (the SockJS iframe
    transports load /chat/iframe.html and our copy of sockjs-client from it),
    and the inline scripts whose hashes (``'sha256-...'``) are in
    ``script_hashes`` (the page's import map);
    connections to our own origin, over WebSocket too (``'self'`` does not
    cover ws: in every browser, so the host is named); images also from
    ``data:`` and the avatar host; nobody else may frame our pages, except
    the hosts in ``framed_by`` (the SockJS iframe page of an allowed origin).
    """
    connect = "'self'"
    if host and _HOST.fullmatch(host):
        connect += f" ws://{host} wss://{host}"
    return "; ".join(
        [
            "default-src 'self'",
            " ".join(["script-src 'self'", *script_hashes]),
            "style-src 'self'",
            f"img-src 'self' data: {' '.join(IMAGE_HOSTS)}",
            f"connect-src {connect}",
            "frame-src 'self'",
            " ".join(["frame-ancestors 'self'", *(h for h in framed_by if _HOST.fullmatch(h))]),
            "form-action 'self'",
            "base-uri 'none'",
            "object-src 'none'",
        ]
    )


class SecureHeaders(HandlerMixin):
    """Mixin for a :class:`tornado.web.RequestHandler`: security headers on
    every response (errors included), and plain error pages.

    Put it first among the bases, so its methods win over a handler's own.
    """

    def set_default_headers(self) -> None:
        super().set_default_headers()
        self.clear_header("Server")  # no version for anyone to look up
        self.set_header("Content-Security-Policy", content_security_policy(self.request.headers.get("Host")))
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("Referrer-Policy", "same-origin")
        self.set_header("X-Frame-Options", "SAMEORIGIN")  # frame-ancestors for old browsers

    def write_error(self, status_code: int, **kwargs) -> None:
        """The status and its phrase, as plain text: never a traceback or an
        exception's message, whatever the app's settings say."""
        self.set_header("Content-Type", "text/plain; charset=UTF-8")
        try:
            phrase = HTTPStatus(status_code).phrase
        except ValueError:
            phrase = "Error"
        self.finish(f"{status_code} {phrase}\n")
