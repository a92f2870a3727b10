"""Security headers on every response, plain error pages, nothing internal
reaching a client, and no message content in the logs at INFO."""

from __future__ import annotations

import json
import logging
import re

import pytest

from chatzilla.security import SecureHeaders, content_security_policy

from .conftest import make_settings
from .helpers import assert_error, joined_pair, say_and_check

#: One of each kind of response the server gives.
PATHS = {
    "page": ("/", 200),
    "script": ("/static/js/main.js", 200),
    "sockjs-bundle": ("/vendor/sockjs/sockjs.min.js", 200),
    "sockjs-iframe": ("/chat/iframe.html", 200),
    "sockjs-info": ("/chat/info", 200),
    "healthz": ("/healthz", 200),
    "not-found": ("/no/such/page", 404),
    "static-not-found": ("/static/nothing.js", 404),
    "no-such-session": ("/chat/000/nosession/xhr_send", 404),
}


def directives(policy: str) -> dict[str, list[str]]:
    parsed = {}
    for part in policy.split(";"):
        name, *values = part.split()
        assert name not in parsed, f"{name} twice in {policy}"
        parsed[name] = values
    return parsed


def test_every_handler_of_the_app_sends_the_headers(app):
    handlers = [rule.target for rule in app.wildcard_router.rules]
    handlers += [app.settings["default_handler_class"], app.settings["static_handler_class"]]
    unguarded = [h.__name__ for h in handlers if not issubclass(h, SecureHeaders)]
    assert not unguarded


@pytest.mark.parametrize("name", PATHS)
@pytest.mark.gen_test
async def test_headers_on_every_kind_of_response(fetch, http_port, name):
    path, status = PATHS[name]
    method = "POST" if path.endswith("xhr_send") else "GET"
    response = await fetch(path, method=method, body=b"[]" if method == "POST" else None)
    assert response.code == status
    headers = response.headers
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "same-origin"
    assert headers["X-Frame-Options"] == "SAMEORIGIN"
    assert "Server" not in headers  # no version to look up
    policy = directives(headers["Content-Security-Policy"])
    # No 'unsafe-inline', no 'unsafe-eval'; the page allows its import map by its hash.
    if name == "page":
        assert policy["script-src"][0] == "'self'" and len(policy["script-src"]) == 2
        assert re.fullmatch(r"'sha256-[A-Za-z0-9+/]{43}='", policy["script-src"][1])
    else:
        assert policy["script-src"] == ["'self'"]
    assert policy["style-src"] == ["'self'"]
    assert policy["frame-ancestors"] == ["'self'"]
    assert policy["frame-src"] == ["'self'"]  # the SockJS iframe transports
    assert policy["connect-src"] == ["'self'", f"ws://127.0.0.1:{http_port}", f"wss://127.0.0.1:{http_port}"]
    assert policy["img-src"] == ["'self'", "data:", "https://www.gravatar.com"]
    assert policy["object-src"] == ["'none'"]
    assert not any("unsafe" in value for values in policy.values() for value in values)


def test_a_host_header_cannot_write_into_the_policy():
    for host in ["evil.example; script-src *", "a b", "x'y", "host:99999999", ""]:
        policy = directives(content_security_policy(host))
        assert policy["connect-src"] == ["'self'"], host
        assert policy["script-src"] == ["'self'"], host
    assert directives(content_security_policy("[::1]:8000"))["connect-src"][1] == "ws://[::1]:8000"


@pytest.mark.parametrize(
    "path",
    [
        "/no/such/page",
        "/chat/nothing/here/at/all",
        "/.env",
        "/static/../chatzilla/settings.py",
        "/vendor/sockjs/../../package.json",
    ],
)
@pytest.mark.gen_test
async def test_a_plain_404(fetch, path):
    response = await fetch(path)
    assert response.code in (403, 404)
    assert response.headers["Content-Type"] == "text/plain; charset=UTF-8"
    phrase = "Not Found" if response.code == 404 else "Forbidden"
    assert response.body.decode() == f"{response.code} {phrase}\n"


@pytest.mark.gen_test
async def test_a_method_not_allowed_is_plain_too(fetch):
    response = await fetch("/", method="PUT", body=b"x")
    assert response.code == 405
    assert response.body == b"405 Method Not Allowed\n"


@pytest.mark.gen_test
async def test_a_crash_in_a_handler_shows_no_detail(app, fetch, monkeypatch, caplog):
    def broken():
        raise RuntimeError("secret internal detail /etc/passwd")

    monkeypatch.setattr(app.hub, "stats", broken)
    with caplog.at_level(logging.ERROR):
        response = await fetch("/healthz")
    assert response.code == 500
    assert response.body == b"500 Internal Server Error\n"
    assert "Content-Security-Policy" in response.headers
    assert any("secret internal detail" in r.getMessage() or r.exc_info for r in caplog.records)


@pytest.mark.gen_test
async def test_a_crash_while_handling_a_frame_is_an_error_frame_without_detail(
    app, connect, monkeypatch, caplog
):
    a, b = await joined_pair(lambda kind: connect(kind or "websocket"))

    async def broken(*args):
        raise RuntimeError("secret internal detail")

    with monkeypatch.context() as patch:
        patch.setattr(app.hub, "say", broken)
        with caplog.at_level(logging.ERROR, logger="chatzilla"):
            await a.send({"type": "message", "content": "boom", "ref": "r1"})
            frame = await a.expect("error")
    assert_error(frame, "internal", ref="r1")
    assert "secret" not in json.dumps(frame)
    assert [r.levelname for r in caplog.records if r.name.startswith("chatzilla")] == ["ERROR"]
    await say_and_check(a, [b], "still here")  # the connection goes on


@pytest.mark.gen_test
async def test_the_logs_hold_no_message_content_at_info(connect, caplog):
    """Addresses and counts are logged, what people say is not: not when it
    is sent, refused or rate limited."""
    secret = "the-secret-words-7f3a"
    with caplog.at_level(logging.INFO):
        a, b = await joined_pair(lambda kind: connect(kind or "websocket"))
        p = await connect("xhr-polling")
        await p.join("polly@example.com")
        await a.expect("presence")
        await b.expect("presence")
        await say_and_check(a, [b, p], f"{secret} said plainly")
        await a.send({"type": "message", "content": secret * 500})
        assert_error(await a.expect("error"), "too_long")
        await say_and_check(p, [a, b], f"{secret} over polling", ref="p1")
        await a.send(f'{{"type": "{secret}"')
        assert_error(await a.expect("error"), "bad_frame")
        for _ in range(12):
            await b.send({"type": "message", "content": f"{secret} flood"})
        await a.close()
        await b.close()
        await p.close()
    assert caplog.records, "nothing was logged at all"
    for record in caplog.records:
        text = record.getMessage() + (
            logging.Formatter().formatException(record.exc_info) if record.exc_info else ""
        )
        assert secret not in text, record


@pytest.mark.parametrize(
    "settings", [make_settings(allowed_origins=("chat.example.com:8443",))], ids=["allowed"]
)
@pytest.mark.gen_test
async def test_the_sockjs_iframe_may_be_framed_by_allowed_origins_only(fetch, settings):
    iframe = await fetch("/chat/iframe.html")
    assert directives(iframe.headers["Content-Security-Policy"])["frame-ancestors"] == [
        "'self'",
        "chat.example.com:8443",
    ]
    assert "X-Frame-Options" not in iframe.headers
    page = await fetch("/")
    assert directives(page.headers["Content-Security-Policy"])["frame-ancestors"] == ["'self'"]
    assert page.headers["X-Frame-Options"] == "SAMEORIGIN"
