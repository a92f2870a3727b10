"""The Content-Security-Policy and the origin check, in a real Chromium.

* The page chats over every transport without a single CSP violation, and
  the policy is really enforced (an inline script does not run).
* A page on another origin (served by a second little server on another
  port, and opened as ``localhost`` rather than ``127.0.0.1``) cannot chat
  through the server over any transport; once the server allows that origin,
  it can.
"""

from __future__ import annotations

import contextlib
import http.server
import threading
import time

import pytest
from playwright.sync_api import expect

from chatzilla.privacy import email_hash

from .transports import RECEIVE

pytestmark = pytest.mark.browser

TRANSPORTS = list(RECEIVE)

#: The longest wait for a page on another origin to be let in or turned
#: away (2 s when quiet): 8 s ran out for iframe-eventsource under
#: parallel load, which loads an iframe and two scripts before connecting.
WAIT = 30

# Every frame reports its CSP violations to the console, so none goes unseen.
REPORT_VIOLATIONS = """
document.addEventListener('securitypolicyviolation', function (e) {
  console.error('CSP violation: ' + e.violatedDirective + ' blocked ' + e.blockedURI);
});
"""


def _csp_messages(messages: list[str]) -> list[str]:
    return [m for m in messages if "Content Security Policy" in m or "CSP violation" in m]


@contextlib.contextmanager
def watched_page(browser):
    """A page in a fresh context, and every console message of its frames."""
    context = browser.new_context()
    try:
        context.add_init_script(REPORT_VIOLATIONS)
        messages: list[str] = []
        context.on("console", lambda message: messages.append(message.text))
        yield context.new_page(), messages
    finally:
        context.close()


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_the_page_chats_without_a_csp_violation(browser, room_url, transport):
    with watched_page(browser) as (page, messages):
        response = page.goto(f"{room_url}?transports={transport}")
        assert "script-src 'self'" in response.headers["content-security-policy"]
        page.locator("#email").fill("alice@example.com")
        page.locator("#join-form button[type=submit]").click()
        expect(page.locator("#chat")).to_be_visible()
        page.locator("#message").fill(f"no violations over {transport}")
        page.locator("#message").press("Enter")
        expect(page.locator("#messages li.message.mine")).to_have_count(1)
        assert page.evaluate("window.chatzilla.transport()") == transport
        assert _csp_messages(messages) == []


def test_the_policy_is_enforced(browser, room_url):
    with watched_page(browser) as (page, messages):
        page.goto(room_url)
        ran = page.evaluate("""() => {
          const script = document.createElement('script');
          script.textContent = 'window.injected = true;';
          document.body.appendChild(script);
          return window.injected === true;
        }""")
        assert ran is False
        deadline = time.monotonic() + 5
        while not _csp_messages(messages) and time.monotonic() < deadline:
            page.wait_for_timeout(50)
        assert any("script-src" in m for m in _csp_messages(messages)), messages


# -- another origin ---------------------------------------------------------------

ATTACKER_PAGE = """<!DOCTYPE html>
<html><head><meta charset="utf-8">
<script src="{server}vendor/sockjs/sockjs.min.js"></script>
</head><body><script>
window.outcome = [];
var sock = new SockJS('{server}chat', null, {{ transports: ['{transport}'] }});
sock.onopen = function () {{
  outcome.push('open');
  sock.send(JSON.stringify({{ type: 'join', email: '{email}' }}));
}};
sock.onmessage = function (e) {{
  var frame = JSON.parse(e.data);
  outcome.push(frame.type);
  if (frame.type === 'joined') {{
    sock.send(JSON.stringify({{ type: 'message', content: 'from another origin', ref: 'x' }}));
  }}
}};
sock.onclose = function (e) {{ outcome.push('close'); }};
</script></body></html>
"""


class Elsewhere:
    """A web server for one page on another origin: http://localhost:PORT/."""

    def __init__(self) -> None:
        self.html = ""
        elsewhere = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                body = elsewhere.html.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.origin = f"localhost:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()


@pytest.fixture
def elsewhere():
    site = Elsewhere()
    yield site
    site.close()


def mallory(transport: str) -> str:
    """The address the page of another origin joins with over ``transport``
    (one each, so that the server's log tells the attempts apart)."""
    return f"mallory-{transport}@example.com"


def _visit_from_elsewhere(browser, elsewhere, server, transport: str, wait_for: str) -> list[str]:
    """Open a page of another origin that tries to join and chat over
    ``transport``; return what happened to its socket once ``wait_for`` or a
    close is seen (or WAIT seconds have passed)."""
    elsewhere.html = ATTACKER_PAGE.format(server=server.url, transport=transport, email=mallory(transport))
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(f"http://{elsewhere.origin}/")
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            outcome = page.evaluate("window.outcome")
            if wait_for in outcome or "close" in outcome:
                break
            page.wait_for_timeout(50)
        return page.evaluate("window.outcome")
    finally:
        context.close()


def test_a_page_on_another_origin_cannot_chat(browser, people, server, elsewhere, subtests):
    # One person watching while the page of another origin tries every
    # transport, a subtest each.
    alice = people("alice@example.com")
    for transport in TRANSPORTS:
        with subtests.test(transport=transport):
            outcome = _visit_from_elsewhere(browser, elsewhere, server, transport, wait_for="joined")
            assert "joined" not in outcome and "sent" not in outcome, outcome
            alice.say(f"still only me here ({transport})")
            expect(alice.count).to_have_text("1")
            expect(alice.notices).to_have_count(0)  # nobody joined
            assert f"join {email_hash(mallory(transport))}" not in server.log()


def test_a_page_on_an_allowed_origin_chats(browser, start_server, elsewhere, subtests):
    # One server allowing that origin for every transport, a subtest each.
    server = start_server(0, "--allowed-origins", elsewhere.origin)
    for transport in TRANSPORTS:
        with subtests.test(transport=transport):
            outcome = _visit_from_elsewhere(browser, elsewhere, server, transport, wait_for="sent")
            # The earlier subtests' visitors leave the lobby once their grace
            # period is out: their presence frames may come at any point.
            own = [frame for frame in outcome if frame != "presence"]
            assert own[:3] == ["open", "joined", "sent"], f"{outcome}; log:\n{server.log()}"
            assert f"join {email_hash(mallory(transport))}" in server.log()
