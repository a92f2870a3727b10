"""While the connection is down: "Who's online" says it is the last list
known; the page tries again every few seconds at most, at once on "Retry
now", and at once when the browser is back online or the tab is shown."""

from __future__ import annotations

import itertools
import time
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from .helpers import wait_until
from .relay import Relay

pytestmark = [
    pytest.mark.browser,
    # A heartbeat a second: a poll in flight when the browser goes offline
    # ends within a second (25 s by default), so the page notices at once.
    pytest.mark.server_flags("--heartbeat-delay", "1"),
]

#: connection.js: 0.5 s, 1 s, 2 s, then 3 s at most, each +-25%.
MOST_BETWEEN_ATTEMPTS = 3.0 * 1.25
#: Failed attempts after which the wait for the next is at its most.
TO_THE_MOST = 3


def into_the_longest_wait(page, failed) -> None:
    """Returns a second into the wait after the TO_THE_MOST-th failed attempt
    (``failed()`` counts them): the page's own next attempt is 1.25 s away
    or more (3 s less 25%, less that second), so connecting within a second
    is the page cutting the wait short. The second lets the attempt end:
    while one is under way, retrying now does nothing."""
    wait_until(page, lambda: failed() >= TO_THE_MOST, timeout=30)
    page.wait_for_timeout(1_000)


def attempts_since(person, since: int) -> int:
    """How many times the person's page tried to connect (asked for
    /chat/info, as sockjs-client does first) after its ``since``-th request."""
    return sum(1 for url in person.requests[since:] if urlsplit(url).path == "/chat/info")


def through_relay(people, email: str, **kw):
    people.allow_network_errors = True  # refused while cut
    person = people(transport="websocket", **kw)
    relay = Relay(person.page)
    person.page.reload()
    person.join(email)
    return person, relay


def test_offline_the_people_list_is_the_last_known_and_says_so(people, artifacts):
    alice, relay = through_relay(people, "alice@example.com")
    people("bob@example.com")
    panel = alice.page.locator("#people-panel")
    note = alice.page.locator("#people-stale")
    expect(alice.people_list).to_have_text(["alice@example.com", "bob@example.com"])
    expect(note).to_be_hidden()
    retry = alice.page.get_by_role("button", name="Retry now")
    expect(retry).to_be_hidden()

    relay.cut()
    expect(alice.status).to_have_text("Reconnecting…")
    expect(note).to_be_visible()
    expect(note).to_contain_text("Not connected")
    expect(panel).to_have_class("panel stale")
    # Still there, greyed: the names in the muted colour, not the usual one.
    expect(alice.people_list).to_have_text(["alice@example.com", "bob@example.com"])
    colour = alice.people_list.first.evaluate("el => getComputedStyle(el).color")
    muted = alice.page.evaluate("getComputedStyle(document.querySelector('.hint')).color")
    assert colour == muted
    expect(retry).to_be_visible()
    alice.page.screenshot(path=str(artifacts / "offline-people.png"))

    # Back: the page's own next attempt connects (Retry now is
    # test_retry_now_connects_at_once's; clicked here, it raced that attempt,
    # which hides it, on a loaded machine).
    relay.restore()
    expect(alice.status).to_have_text("Connected", timeout=30_000)
    expect(note).to_be_hidden()
    expect(panel).to_have_class("panel")
    expect(retry).to_be_hidden()


def test_attempts_are_never_more_than_a_few_seconds_apart_and_retry_now_connects_at_once(people):
    """After 20 s without a server, the next attempt is still at most about
    3 s away (not 8 or 16 s): a page is back soon after its server. Retry
    now does not wait for it."""
    alice, relay = through_relay(people, "alice@example.com")
    relay.cut()
    # 15 s on time: 0.5, 1, 2, 3, 3... s apart (20 s passes for 0.5, 1, 2, 4, 8 s).
    wait_until(alice.page, lambda: len(relay.attempts) >= 8, timeout=60)
    attempts = list(relay.attempts[1:])  # after the first connection
    gaps = [later - earlier for earlier, later in itertools.pairwise(attempts)]
    assert len(attempts) >= 7, attempts
    assert max(gaps) < MOST_BETWEEN_ATTEMPTS + 1.0, gaps
    # Back (test_offline_the_people_list_is_the_last_known_and_says_so waits
    # for the page's own next attempt): Retry now connects at once, a
    # second into a wait of 3 s (+-25%).
    refused = relay.refused
    wait_until(alice.page, lambda: relay.refused > refused, timeout=10)
    alice.page.wait_for_timeout(1_000)
    relay.restore()
    before = len(relay.attempts)
    clicked = time.monotonic()
    alice.page.get_by_role("button", name="Retry now").click()
    expect(alice.status).to_have_text("Connected", timeout=2_000)
    assert relay.attempts[before] - clicked < 1.0


@pytest.mark.parametrize("how", ["online", "visible"])
def test_back_online_or_back_to_the_tab_connects_at_once(people, how):
    if how == "online":
        # Chromium's offline mode: the polls fail, and coming back fires `online`.
        people.allow_network_errors = True
        alice = people("alice@example.com", transport="xhr-polling")
        since = len(alice.requests)
        alice.context.set_offline(True)
        expect(alice.status).to_have_text("Reconnecting…")
        # Waits of 0.5, 1, 2, 4, 8 s would have the next attempt 1.6 s or more away.
        into_the_longest_wait(alice.page, lambda: attempts_since(alice, since))
        started = time.monotonic()
        alice.context.set_offline(False)
    else:
        alice, relay = through_relay(people, "alice@example.com")
        alice.hide()
        relay.cut()
        expect(alice.status).to_have_text("Reconnecting…")
        into_the_longest_wait(alice.page, lambda: relay.refused)
        relay.restore()
        started = time.monotonic()
        alice.show()
    expect(alice.status).to_have_text("Connected", timeout=10_000)
    assert time.monotonic() - started < 1.0


#: In a page, a JSONP-polling socket of its own (sockjs-client's, as the
#: page's is on that transport) joins the room as another tab would, then is
#: closed while its next poll is out: sockjs-client gives the poll up (takes
#: its script out and forgets its callback) but cannot stop the script, which
#: the server answers later (here the next heartbeat, within a second).
#: Resolves with the number of JSONP answers received until then.
JSONP_POLL_GIVEN_UP = """
([url, room]) => new Promise((resolve) => {
  const answers = () => performance.getEntriesByType('resource')
    .filter((e) => e.name.includes('/jsonp?')).length;
  const sock = new window.SockJS(url, null, { transports: ['jsonp-polling'] });
  sock.onopen = () => sock.send(JSON.stringify({ type: 'join', email: 'tab@example.com', room: room }));
  sock.onmessage = (e) => {
    // Its next poll goes out once this answer is read.
    if (JSON.parse(e.data).type === 'joined') {
      setTimeout(() => { sock.close(); resolve(answers()); }, 100);
    }
  };
})
"""

JSONP_ANSWERS = "performance.getEntriesByType('resource').filter((e) => e.name.includes('/jsonp?')).length"


def test_a_poll_answered_after_it_was_given_up_is_ignored(people, server):
    # Seen under load across a server restart (test_reconnect, jsonp-polling):
    # "TypeError: _jp.a1b2c3d4 is not a function", a page error.
    alice = people("alice@example.com")
    before = alice.page.evaluate(JSONP_POLL_GIVEN_UP, [server.url + "chat", people.room])
    wait_until(alice.page, lambda: alice.page.evaluate(JSONP_ANSWERS) > before)
    alice.page.evaluate("() => new Promise((r) => setTimeout(r, 50))")  # its script has run by then
    assert alice.page_errors == []
