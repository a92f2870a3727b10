"""Origins, over every transport: the page's own origin and the allowed ones
chat; a page anywhere else is refused before a session opens.

A browser names the page that makes a request in its ``Origin`` header, on
WebSocket handshakes and on the HTTP transports' requests alike. Requests
without one (bots, load generators, these tests elsewhere) are let in.
"""

from __future__ import annotations

import json

import pytest
from tornado.httpclient import HTTPClientError

from chatzilla.security import origin_allowed

from .conftest import make_settings
from .helpers import say_and_check
from .sockjs_client import KINDS, Refused, _LongRequest, _session_path

ALICE, BOB = "alice@example.com", "bob@example.com"
ALLOWED = "https://chat.example.com:8443"


@pytest.fixture
def settings():
    return make_settings(allowed_origins=("chat.example.com:8443", "partner.example.org"))


# -- the rule ------------------------------------------------------------------


@pytest.mark.parametrize(
    "origin, expected",
    [
        (None, True),
        ("http://127.0.0.1:8000", True),
        ("https://127.0.0.1:8000", True),  # behind a TLS proxy the Host is the same
        ("HTTP://127.0.0.1:8000", True),
        ("https://chat.example.com:8443", True),
        ("https://Chat.Example.COM:8443", True),
        ("http://partner.example.org", True),
        ("http://127.0.0.1:8001", False),  # same host, another port: another origin
        ("http://localhost:8000", False),
        ("https://chat.example.com", False),
        ("https://chat.example.com:8443.evil.example", False),
        ("https://evil.example/?chat.example.com:8443", False),
        ("https://chat.example.com:8443@evil.example", False),
        ("null", False),
        ("", False),
        ("file://", False),
        ("chrome-extension://abcdef", False),
        ("ws://127.0.0.1:8000", False),
    ],
)
def test_origin_allowed(origin, expected):
    allowed = ("chat.example.com:8443", "partner.example.org")
    assert origin_allowed(origin, "127.0.0.1:8000", allowed) is expected


def test_without_a_host_only_the_allowed_list_counts():
    assert origin_allowed("http://127.0.0.1:8000", None, ()) is False
    assert origin_allowed("http://a.example", None, ("a.example",)) is True


# -- handshakes on each transport kind -----------------------------------------


def _origin(base_url: str, which: str) -> str | None:
    return {"own": base_url, "allowed": ALLOWED, "none": None}[which]


@pytest.mark.parametrize("which", ["own", "allowed", "none"])
@pytest.mark.parametrize("kind", sorted(KINDS))
@pytest.mark.gen_test
async def test_a_page_that_may_connect_chats(connect, base_url, kind, which):
    a = await connect(kind, origin=_origin(base_url, which))
    await a.join(ALICE)
    b = await connect()
    await b.join(BOB)
    await a.expect("presence")
    await say_and_check(a, [b], f"from {kind}, origin {which}", sender_email=ALICE)
    await say_and_check(b, [a], "and back", sender_email=BOB)


REFUSED = [
    "http://evil.example",
    "null",
    "http://127.0.0.1:1",
    "https://chat.example.com",
    "https://chat.example.com:8443.evil.example",
]


@pytest.mark.parametrize("origin", REFUSED)
@pytest.mark.parametrize("kind", sorted(KINDS))
@pytest.mark.gen_test
async def test_a_page_of_another_origin_is_refused(connect, health, kind, origin):
    with pytest.raises((Refused, HTTPClientError)) as refused:
        await connect(kind, origin=origin)
    status = refused.value.status if isinstance(refused.value, Refused) else refused.value.code
    assert status == 403
    assert await health() == {"status": "ok", "connections": 0, "participants": 0}


#: The HTTP transports a browser may use, with how each is requested.
HTTP_TRANSPORTS = {
    "xhr": ("POST", ""),
    "xhr_streaming": ("POST", ""),
    "eventsource": ("GET", ""),
    "jsonp": ("GET", "?c=callback"),
}


@pytest.mark.parametrize("name", HTTP_TRANSPORTS)
@pytest.mark.gen_test
async def test_cors_headers_only_for_origins_that_may_connect(base_url, name):
    method, query = HTTP_TRANSPORTS[name]
    for origin, status in ((ALLOWED, 200), (base_url, 200), ("http://evil.example", 403)):
        request = _LongRequest(
            f"{_session_path(base_url)}/{name}{query}", method=method, headers={"Origin": origin}
        )
        try:
            await request.open()
        finally:
            request.abort()
        assert request.code == status, (origin, request.code)
        if status == 200 and name != "jsonp":  # JSONP is a script, not CORS
            assert request.head["access-control-allow-origin"] == origin
            assert request.head["access-control-allow-credentials"] == "true"
        else:
            assert "access-control-allow-origin" not in request.head
            assert "access-control-allow-credentials" not in request.head


@pytest.mark.parametrize(
    "path",
    ["/chat/info", "/chat/000/abcdef/xhr", "/chat/000/abcdef/xhr_send", "/chat/000/abcdef/xhr_streaming"],
)
@pytest.mark.gen_test
async def test_preflight(fetch, path):
    refused = await fetch(
        path,
        method="OPTIONS",
        headers={"Origin": "http://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert refused.code == 403
    assert "Access-Control-Allow-Origin" not in refused.headers
    assert "Access-Control-Allow-Credentials" not in refused.headers
    allowed = await fetch(
        path,
        method="OPTIONS",
        headers={
            "Origin": ALLOWED,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    assert allowed.code == 204
    assert allowed.headers["Access-Control-Allow-Origin"] == ALLOWED
    assert allowed.headers["Access-Control-Allow-Credentials"] == "true"
    assert "OPTIONS" in allowed.headers["Access-Control-Allow-Methods"]


@pytest.mark.parametrize("send", ["xhr_send", "jsonp_send"])
@pytest.mark.gen_test
async def test_another_page_cannot_send_into_a_session_it_knows(connect, fetch, base_url, send):
    """Even with the session's id, a request from another origin is refused
    and nothing of it reaches anyone."""
    a = await connect("xhr-polling", origin=base_url)
    await a.join(ALICE)
    b = await connect()
    await b.join(BOB)
    await a.expect("presence")
    frame = json.dumps([json.dumps({"type": "message", "content": "forged"})])
    body = frame if send == "xhr_send" else "d=" + frame
    response = await fetch(
        a.base.removeprefix(base_url) + "/" + send,
        method="POST",
        body=body,
        headers={"Origin": "http://evil.example", "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.code == 403
    await say_and_check(a, [b], "the real one", sender_email=ALICE)  # b's next frame
