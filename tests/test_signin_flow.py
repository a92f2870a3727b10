"""Signing in by e-mail link over a real server (``--auth link``): the
pages, the cookie, joining over every transport, bot tokens, and no frame
or page that shows anyone another person's address."""

from __future__ import annotations

import json
import logging
import re
import urllib.parse

import pytest
from tornado.httpclient import AsyncHTTPClient

from .conftest import make_settings
from .sockjs_client import KINDS

ALICE = "alice@example.com"
BOB = "bob@example.com"


@pytest.fixture
def settings():
    return make_settings(auth="link", storage="memory")


class Browser:
    """An HTTP client that keeps cookies, like one browser."""

    def __init__(self, base_url: str) -> None:
        self.base = base_url
        self.cookies: dict[str, str] = {}
        self.pages: list[str] = []

    def cookie_header(self) -> str:
        return "; ".join(f"{k}={v}" for k, v in self.cookies.items())

    async def fetch(self, path: str, form: dict | None = None, headers: dict | None = None):
        headers = {"Accept": "text/html", **(headers or {})}
        if self.cookies:
            headers["Cookie"] = self.cookie_header()
        body = None
        if form is not None:
            form = {"_xsrf": self.cookies.get("_xsrf", ""), **form}
            body = urllib.parse.urlencode(form)
        response = await AsyncHTTPClient().fetch(
            self.base + path,
            method="POST" if form is not None else "GET",
            body=body,
            headers=headers,
            follow_redirects=False,
            raise_error=False,
        )
        for header in response.headers.get_list("Set-Cookie"):
            name, _, rest = header.partition("=")
            value = rest.split(";", 1)[0].strip('"')
            if value:
                self.cookies[name] = value
            else:
                self.cookies.pop(name, None)
        self.pages.append(response.body.decode("utf-8", "replace"))
        return response


def mailed_link(caplog, email: str) -> str:
    """The path of the last sign-in link written to the log for ``email``."""
    lines = [
        r.getMessage() for r in caplog.records if r.getMessage().startswith(f"sign-in link for {email}: ")
    ]
    assert lines, "no sign-in link in the log"
    url = lines[-1].rsplit(" ", 1)[1]
    return url[url.index("/signin/link") :]


async def sign_in(base_url: str, caplog, email: str, name: str, room: str = "lobby") -> Browser:
    browser = Browser(base_url)
    await browser.fetch(f"/signin?room={room}")  # the XSRF cookie
    response = await browser.fetch("/signin", {"email": email, "room": room})
    assert response.code == 200 and "Check your mail" in browser.pages[-1]
    link = mailed_link(caplog, email)
    landing = await browser.fetch(link)
    assert landing.code == 200 and 'name="name"' in browser.pages[-1]
    secret = urllib.parse.parse_qs(urllib.parse.urlsplit(link).query)["t"][0]
    done = await browser.fetch("/signin/link", {"t": secret, "name": name})
    assert done.code == 303, done
    assert "chatzilla_session" in browser.cookies
    return browser


@pytest.fixture
def signed_in(base_url, caplog):
    caplog.set_level(logging.INFO, "chatzilla.mail")

    async def make(email: str, name: str, room: str = "lobby") -> Browser:
        return await sign_in(base_url, caplog, email, name, room)

    return make


@pytest.fixture
def opened(connect):
    """``await opened(browser, kind)``: a SockJS client carrying the browser's cookies."""

    async def open_(browser: Browser | None, kind: str = "websocket"):
        headers = {"Cookie": browser.cookie_header()} if browser else {}
        return await connect(kind, headers=headers)

    return open_


@pytest.mark.gen_test
async def test_the_link_signs_in_and_the_cookie_is_httponly_lax(base_url, caplog):
    caplog.set_level(logging.INFO, "chatzilla.mail")
    browser = Browser(base_url)
    page = await browser.fetch("/r/dev")
    assert 'action="/signin"' in browser.pages[-1] and 'data-me=""' in browser.pages[-1]
    await browser.fetch("/signin", {"email": " Alice@Example.com ", "room": "dev"})
    link = mailed_link(caplog, "Alice@example.com")
    await browser.fetch(link)
    assert 'value="Alice"' in browser.pages[-1]  # the local part, to start with
    secret = urllib.parse.parse_qs(urllib.parse.urlsplit(link).query)["t"][0]
    done = await browser.fetch("/signin/link", {"t": secret, "name": "Alice L."})
    assert done.code == 303 and done.headers["Location"] == "/r/dev"
    [cookie] = [c for c in done.headers.get_list("Set-Cookie") if c.startswith("chatzilla_session=")]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie  # plain http here
    assert re.search(r"expires=", cookie, re.I)
    page = await browser.fetch("/r/dev")
    me = json.loads(re.search(r'data-me="([^"]*)"', browser.pages[-1]).group(1).replace("&#34;", '"'))
    assert me["name"] == "Alice L." and set(me) == {"id", "name", "avatar"}
    assert page.headers["Cache-Control"] == "no-store"
    # The link worked once.
    again = await browser.fetch(link)
    assert again.code == 410 and "does not work any more" in browser.pages[-1]


@pytest.mark.gen_test
async def test_the_cookie_is_secure_behind_https(base_url, caplog):
    caplog.set_level(logging.INFO, "chatzilla.mail")
    https = {"X-Forwarded-Proto": "https"}  # from loopback: a trusted proxy
    browser = Browser(base_url)
    await browser.fetch("/signin", headers=https)
    await browser.fetch("/signin", {"email": ALICE}, headers=https)
    link = mailed_link(caplog, ALICE)
    assert "https://" in [r.getMessage() for r in caplog.records][-1]
    secret = urllib.parse.parse_qs(urllib.parse.urlsplit(link).query)["t"][0]
    done = await browser.fetch("/signin/link", {"t": secret, "name": "Alice"}, headers=https)
    [cookie] = [c for c in done.headers.get_list("Set-Cookie") if c.startswith("chatzilla_session=")]
    assert "Secure" in cookie


@pytest.mark.gen_test
async def test_forms_without_the_xsrf_token_are_refused(base_url, caplog):
    caplog.set_level(logging.INFO, "chatzilla.mail")
    response = await AsyncHTTPClient().fetch(
        base_url + "/signin", method="POST", body="email=alice%40example.com", raise_error=False
    )
    assert response.code == 403
    assert not [r for r in caplog.records if r.getMessage().startswith("sign-in link")]


@pytest.mark.gen_test
async def test_bad_addresses_and_too_many_asks_are_said_on_the_page(base_url, caplog):
    caplog.set_level(logging.INFO, "chatzilla.mail")
    browser = Browser(base_url)
    await browser.fetch("/signin")
    bad = await browser.fetch("/signin", {"email": "\u0430lice@example.com"})
    assert bad.code == 400 and "mixes scripts" in browser.pages[-1]
    for _ in range(3):
        assert (await browser.fetch("/signin", {"email": ALICE})).code == 200
    limited = await browser.fetch("/signin", {"email": ALICE})
    assert limited.code == 429 and "try again in about" in browser.pages[-1]
    assert int(limited.headers["Retry-After"]) > 0


@pytest.mark.parametrize("kind", sorted(KINDS))
@pytest.mark.gen_test(timeout=20)
async def test_the_cookie_signs_in_over_every_transport_and_nothing_else_does(signed_in, opened, kind):
    alice = await signed_in(ALICE, "Alice")
    a = await opened(alice, kind)
    await a.send({"type": "join", "ref": "j"})
    joined = await a.expect("joined")
    assert joined["protocol"] == 2 and joined["you"]["name"] == "Alice"
    assert [p["name"] for p in joined["participants"]] == ["Alice"]
    # No cookie: an address in the frame proves nothing.
    impostor = await opened(None, kind)
    await impostor.send({"type": "join", "email": ALICE, "ref": "j"})
    error = await impostor.expect("error")
    assert error["code"] == "sign_in_required" and error["ref"] == "j"
    await impostor.send({"type": "message", "content": "I am Alice", "ref": "m"})
    assert (await impostor.expect("error"))["code"] == "not_joined"
    # A made-up cookie is no better.
    forged = await opened(_browser_with(alice.base, "chatzilla_session", "x" * 43), kind)
    await forged.send({"type": "join"})
    assert (await forged.expect("error"))["code"] == "sign_in_required"
    await a.say("still just me", "m1")


def _browser_with(base: str, name: str, value: str) -> Browser:
    browser = Browser(base)
    browser.cookies[name] = value
    return browser


@pytest.mark.gen_test
async def test_leave_signs_out_this_browser_only(signed_in, opened):
    first = await signed_in(ALICE, "Alice")
    second = await signed_in(ALICE, "Alice")
    await first.fetch("/")
    out = await first.fetch("/signout", {"room": "dev"})
    assert out.code == 303 and out.headers["Location"] == "/r/dev"
    assert "chatzilla_session" not in first.cookies
    gone = await opened(_browser_with(first.base, "chatzilla_session", "x"), "websocket")
    await gone.send({"type": "join"})
    assert (await gone.expect("error"))["code"] == "sign_in_required"
    still = await opened(second)
    await still.send({"type": "join"})
    await still.expect("joined")


@pytest.mark.gen_test
async def test_a_bot_token_joins_as_its_person_and_is_shown_once(signed_in, opened, connect):
    alice = await signed_in(ALICE, "Alice")
    await alice.fetch("/")
    minted = await alice.fetch("/tokens", {"label": "weather"})
    assert minted.code == 200
    token = re.search(r'<code id="bot-token" class="token">(czb_[^<]+)</code>', alice.pages[-1]).group(1)
    bot = await connect("raw-websocket")  # no cookie at all
    await bot.send({"type": "join", "token": token, "room": "dev"})
    joined = await bot.expect("joined")
    assert joined["you"]["name"] == "Alice" and joined["room"] == "dev"
    wrong = await connect("websocket")
    await wrong.send({"type": "join", "token": token[:-2] + "xx", "ref": "j"})
    error = await wrong.expect("error")
    assert error["code"] == "invalid_token" and error["ref"] == "j"
    # Nobody signed in mints nothing.
    stranger = Browser(alice.base)
    await stranger.fetch("/")
    assert (await stranger.fetch("/tokens", {"label": "x"})).code == 403


@pytest.mark.gen_test(timeout=20)
async def test_no_frame_or_page_shows_another_persons_address(signed_in, opened, base_url):
    alice = await signed_in(ALICE, "Alice L.", room="dev")
    bob = await signed_in(BOB, "Bob")
    a = await opened(alice)
    await a.send({"type": "join", "room": "dev"})
    await a.expect("joined")
    await a.say("before bob came", "a0")
    b = await opened(bob, "xhr-streaming")
    await b.send({"type": "join", "room": "dev"})
    seen = [await b.expect("joined")]
    await a.expect("presence")
    await a.send({"type": "typing"})
    seen.append(await b.expect("typing"))
    await a.say("hello bob", "a1")
    seen.append(await b.expect("message"))
    await b.send({"type": "history", "limit": 10})
    seen.append(await b.expect("history"))
    await a.send({"type": "leave"})
    seen.append(await b.expect("presence"))
    assert {f["type"] for f in seen} == {"joined", "typing", "message", "history", "presence"}
    for path in ["/", "/r/dev", "/signin?room=dev", "/healthz", "/no/such/page"]:
        await bob.fetch(path)
    await bob.fetch("/me/name", {"name": "Bobby", "room": "dev"})
    await bob.fetch("/tokens", {"label": "x"})
    text = json.dumps(seen) + "".join(bob.pages)
    for needle in (ALICE, "alice%40example.com", "alice&#64;example.com"):
        assert needle not in text
    # What Bob sees of Alice: her name, her id, her avatar.
    sender = seen[2]["sender"]
    assert sender["name"] == "Alice L." and sender["id"].startswith("p")
    assert sender["avatar"].startswith("https://www.gravatar.com/avatar/")
    assert seen[1] == {"type": "typing", "person": sender}
    assert seen[4] == {"type": "presence", "event": "leave", "person": sender, "count": 1}


@pytest.mark.gen_test
async def test_a_name_can_be_changed_and_look_alike_names_are_refused(signed_in, opened):
    alice = await signed_in(ALICE, "Alice")
    await alice.fetch("/")
    assert (await alice.fetch("/me/name", {"name": "Al\u202eice"})).code == 400
    assert (await alice.fetch("/me/name", {"name": "Alice Liddell", "room": "dev"})).code == 303
    a = await opened(alice)
    await a.send({"type": "join"})
    assert (await a.expect("joined"))["you"]["name"] == "Alice Liddell"


@pytest.mark.gen_test
@pytest.mark.parametrize("name", ["", "\u202eevil"])
async def test_a_bad_name_with_an_unknown_link_says_the_link_is_gone(base_url, name):
    browser = Browser(base_url)
    await browser.fetch("/signin")  # the XSRF cookie
    response = await browser.fetch("/signin/link", {"t": "not-a-link", "name": name})
    assert response.code == 410 and "expired or has been used" in browser.pages[-1]
    assert "chatzilla_session" not in browser.cookies


@pytest.mark.gen_test(timeout=30)
@pytest.mark.parametrize("kind", ["websocket", "xhr-polling"])
async def test_signing_out_closes_the_sessions_connections(signed_in, opened, kind):
    """Another tab of the browser (or a stolen cookie's connection), joined
    before Leave, chatted on as its person after it."""
    alice = await signed_in(ALICE, "Alice")
    other = await signed_in(ALICE, "Alice")
    tab = await opened(alice, kind)
    await tab.send({"type": "join"})
    await tab.expect("joined")
    elsewhere = await opened(other, kind)
    await elsewhere.send({"type": "join"})
    await elsewhere.expect("joined")
    await alice.fetch("/")
    assert (await alice.fetch("/signout", {"room": "lobby"})).code == 303
    closed = await tab.expect("_close")
    assert (closed["code"], closed["reason"]) == (4401, "Signed out")
    await elsewhere.send({"type": "message", "content": "still here", "ref": "r1"})
    assert (await elsewhere.expect("sent"))["ref"] == "r1"


@pytest.mark.gen_test(timeout=30)
async def test_a_links_secret_is_not_in_the_access_log(base_url, caplog):
    caplog.set_level(logging.INFO)
    browser = Browser(base_url)
    await browser.fetch("/signin")
    await browser.fetch("/signin", {"email": ALICE})
    link = mailed_link(caplog, ALICE)
    secret = urllib.parse.parse_qs(urllib.parse.urlsplit(link).query)["t"][0]
    assert (await browser.fetch(link)).code == 200  # a mail scanner, say
    assert (await Browser(base_url).fetch(link.replace(secret, "guess"))).code == 410
    leaks = [
        r.getMessage() for r in caplog.records if secret in r.getMessage() and r.name != "chatzilla.mail"
    ]
    assert leaks == []
    assert any("GET /signin/link" in r.getMessage() for r in caplog.records if r.name == "tornado.access")
