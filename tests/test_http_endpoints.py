"""Plain HTTP: /healthz, the page, SockJS's /chat/info and iframe page, the
sockjs-client bundle, and every SockJS transport the contract keeps enabled."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser

import pytest

from .sockjs_client import _LongRequest, _session_path


@pytest.mark.gen_test
async def test_healthz(fetch, clients, health):
    response = await fetch("/healthz")
    assert response.code == 200
    assert response.headers["Content-Type"].split(";")[0] == "application/json"
    assert json.loads(response.body) == {"status": "ok", "connections": 0, "participants": 0}
    a = await clients()
    await a.join("alice@example.com")
    assert await health() == {"status": "ok", "connections": 1, "participants": 1}


class _Forms(HTMLParser):
    """Collects each form's inputs (as attribute dicts)."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict] = []
        self._form: dict | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self._form = {"attrs": attrs, "inputs": []}
            self.forms.append(self._form)
        elif tag == "input" and self._form is not None:
            self._form["inputs"].append(attrs)

    def handle_endtag(self, tag):
        if tag == "form":
            self._form = None


@pytest.mark.gen_test
async def test_the_page_has_the_join_form(fetch):
    response = await fetch("/")
    assert response.code == 200
    assert response.headers["Content-Type"].split(";")[0] == "text/html"
    parser = _Forms()
    parser.feed(response.body.decode("utf-8"))
    email_inputs = [i for form in parser.forms for i in form["inputs"] if i.get("type") == "email"]
    assert email_inputs, f"no <input type=email> inside a <form>: {parser.forms}"
    assert all("required" in i for i in email_inputs)


@pytest.mark.gen_test
async def test_sockjs_info(fetch):
    response = await fetch("/chat/info")
    assert response.code == 200
    assert response.headers["Content-Type"].split(";")[0] == "application/json"
    info = json.loads(response.body)
    assert info["cookie_needed"] is False
    assert info["websocket"] is True


@pytest.mark.gen_test
async def test_the_iframe_page_loads_our_sockjs_bundle(fetch):
    """Our bundle, then our script that starts it; no inline script, which
    the Content-Security-Policy would block."""
    response = await fetch("/chat/iframe.html")
    assert response.code == 200
    page = response.body.decode("utf-8")
    sources = re.findall(r"<script[^>]*\bsrc=[\"']([^\"']+)[\"']", page)
    assert sources[0] == "/vendor/sockjs/sockjs.min.js"
    assert re.fullmatch(r"/static/sockjs-iframe\.js\?v=\w+", sources[1]), sources
    assert len(sources) == len(re.findall(r"<script", page)) == 2
    bootstrap = await fetch(sources[1])
    assert bootstrap.code == 200
    assert b"SockJS.bootstrap_iframe()" in bootstrap.body
    again = await fetch("/chat/iframe.html", headers={"If-None-Match": response.headers["Etag"]})
    assert again.code == 304
    bundle = await fetch(sources[0])
    assert bundle.code == 200
    assert bundle.headers["Content-Type"].split(";")[0] in ("application/javascript", "text/javascript")
    assert b"sockjs-client" in bundle.body[:200]


#: (transport, HTTP method, query, how its response opens the session)
HTTP_TRANSPORTS = {
    "xhr": ("POST", "", re.compile(r"^o\n")),
    "xhr_streaming": ("POST", "", re.compile(r"^h{2048}\no\n")),
    "eventsource": ("GET", "", re.compile(r"^\r\ndata: o\r\n\r\n")),
    "jsonp": ("GET", "?c=callback", re.compile(r"^/\*\*/callback\(\"o\"\);|^callback\(\"o\"\);")),
}


@pytest.mark.parametrize("name", HTTP_TRANSPORTS)
@pytest.mark.gen_test
async def test_every_sockjs_transport_is_enabled(base_url, name):
    """Every HTTP transport we offer opens a session (websocket is covered by
    /chat/info and the websocket clients; htmlfile is off, see below)."""
    method, query, opened = HTTP_TRANSPORTS[name]
    request = _LongRequest(f"{_session_path(base_url)}/{name}{query}", method=method)
    try:
        await request.open()
        assert request.code == 200, f"{name}: HTTP {request.code}"
        body = ""
        while not opened.search(body):
            chunk = await request.read()
            assert chunk is not None, f"{name} ended without opening the session: {body!r}"
            body += chunk.decode("utf-8")
    finally:
        request.abort()


@pytest.mark.gen_test
async def test_htmlfile_is_switched_off_on_purpose(fetch):
    """sockjs-tornado 1.0.7's htmlfile strips '_' and '.' from the callback
    name, which sockjs-client 1.x always uses, so it is disabled; the iframe
    transports serve the browsers that would have used it."""
    response = await fetch(f"{_session_path('')}/htmlfile?c=_jp.a1b2c3")
    assert response.code == 404


@pytest.mark.parametrize("path", ["{session}/websocket", "/websocket"], ids=["sockjs", "raw"])
@pytest.mark.gen_test
async def test_the_websocket_endpoints_refuse_plain_http(fetch, path):
    """Not a WebSocket handshake: a plain GET, a Connection header without
    Upgrade (a proxy that drops it), or another method."""
    url = "/chat" + path.format(session=_session_path("")[len("/chat") :])
    plain = await fetch(url)
    assert (plain.code, plain.body) == (400, b'Can "Upgrade" only to "WebSocket".')
    no_upgrade = await fetch(url, headers={"Upgrade": "websocket", "Connection": "keep-alive"})
    assert (no_upgrade.code, no_upgrade.body) == (400, b'"Connection" must be "Upgrade".')
    post = await fetch(url, method="POST", body="x")
    assert post.code == 405
    assert post.headers["Allow"] == "GET"
